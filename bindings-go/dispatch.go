package heartbeater

import (
	"bytes"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
)

// fanout is one handle's Go-side event consumers: OnEvent callbacks and the Events()
// channel. It lives as long as the handle.
type fanout struct {
	logger *slog.Logger

	mu        sync.Mutex
	callbacks []func(Event)
	// out exists from the start, so events that come before the first Events() call wait
	// there instead of being lost (a program may start its monitor, then subscribe).
	out        chan Event
	subscribed bool // Events() was called: from then on a full channel counts as a drop
	closed     bool

	dropped atomic.Uint64
	panics  atomic.Uint64
}

func newFanout(s *settings) *fanout {
	l := s.logger
	if l == nil {
		l = slog.Default()
	}
	return &fanout{logger: l, out: make(chan Event, s.eventBuffer)}
}

func (f *fanout) events() <-chan Event {
	f.mu.Lock()
	f.subscribed = true
	f.mu.Unlock()
	return f.out
}

func (f *fanout) onEvent(fn func(Event)) {
	if fn == nil {
		return
	}
	f.mu.Lock()
	f.callbacks = append(f.callbacks, fn)
	f.mu.Unlock()
}

// closeOut ends the Events() channel. Called once no pump can deliver any more.
func (f *fanout) closeOut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	close(f.out)
}

func (f *fanout) deliver(ev Event) {
	f.mu.Lock()
	callbacks, subscribed := f.callbacks, f.subscribed
	f.mu.Unlock()
	for _, fn := range callbacks {
		f.call(fn, ev)
	}
	select {
	case f.out <- ev:
	default:
		// Full: drop for the channel, never block the pump. Before any Events() call the
		// channel is only a waiting room (a callback-only program never reads it), so
		// that is not counted as a loss.
		if subscribed {
			f.dropped.Add(1)
		}
	}
}

// call runs one user callback; a panic in it is recovered, logged and counted.
func (f *fanout) call(fn func(Event), ev Event) {
	defer func() {
		if r := recover(); r != nil {
			f.panics.Add(1)
			f.logger.Error("heartbeater: OnEvent callback panicked (recovered)",
				"panic", r, "event", ev.String(), "stack", string(debug.Stack()))
		}
	}()
	fn(ev)
}

func (f *fanout) stats() Stats {
	return Stats{EventsDropped: f.dropped.Load(), CallbackPanics: f.panics.Load()}
}

// handoffCapacity bounds the queue between the engine's delivery thread and the pump
// goroutine; the engine itself already coalesces behind its own bounded queue.
const handoffCapacity = 1024

// pump carries events from the engine's delivery thread (through the exported
// trampoline) to the fanout, on one goroutine per started handle. Its cgo.Handle is the
// callback's user data; the engine's drop function closes `in`, which ends the goroutine.
type pump struct {
	f     *fanout
	in    chan Event
	done  chan struct{}
	gid   atomic.Uint64
	final atomic.Bool // the handle is stopped for good: close the Events() channel at exit
	owner any         // keeps the Go wrapper reachable while the engine may call back

	closeOnce sync.Once
}

func newPump(f *fanout, owner any) *pump {
	p := &pump{f: f, in: make(chan Event, handoffCapacity), done: make(chan struct{}), owner: owner}
	started := make(chan struct{})
	go p.run(started)
	<-started
	return p
}

func (p *pump) run(started chan struct{}) {
	p.gid.Store(goroutineID())
	close(started)
	defer close(p.done)
	for ev := range p.in {
		p.f.deliver(ev)
	}
	if p.final.Load() {
		p.f.closeOut()
	}
}

// offer is called on the engine's delivery thread: it must never block.
func (p *pump) offer(ev Event) {
	select {
	case p.in <- ev:
	default:
		p.f.dropped.Add(1)
	}
}

// closeIn is the user-data destructor: after it, the engine calls the trampoline no more.
func (p *pump) closeIn() {
	p.closeOnce.Do(func() { close(p.in) })
}

// onPumpGoroutine is true inside an OnEvent callback of this handle, where waiting for
// the pump to finish would wait for ourselves.
func (p *pump) onPumpGoroutine() bool {
	return p.gid.Load() == goroutineID()
}

// goroutineID parses "goroutine N [" from the current stack header. Only used to detect
// Stop called from inside a callback.
func goroutineID() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	b := bytes.TrimPrefix(buf[:n], []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}

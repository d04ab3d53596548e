package heartbeater

import (
	"log/slog"
	"runtime/debug"
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
	callbacks := f.callbacks
	f.mu.Unlock()
	for _, fn := range callbacks {
		f.call(fn, ev)
	}
	f.offer(ev)
}

// offer puts ev on the Events() channel without blocking.
func (f *fanout) offer(ev Event) {
	f.mu.Lock()
	subscribed := f.subscribed
	f.mu.Unlock()
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
// trampoline) to the fanout, on one goroutine per engine handle. Its cgo.Handle is the
// callback's user data; the engine's drop function closes `in` (at stop or free), which
// ends the goroutine and then the Events() channel: the end of the stream.
type pump struct {
	f    *fanout
	in   chan Event
	done chan struct{}
	// delivering is owned by the pump goroutine: true while it runs the user's OnEvent
	// functions. Stop reads it to know that waiting for the pump could wait for the very
	// callback it is called from.
	delivering atomic.Bool
	// halted: a Stop returned without waiting for the pump; no OnEvent function is called
	// after the one running then (events still reach the Events() channel).
	halted atomic.Bool
	// owner keeps the Go wrapper reachable once the engine runs it, so that a started
	// handle keeps running when the program drops its last reference (set by a Start that
	// succeeded; a handle that never ran stays collectable and its finalizer frees it).
	owner    atomic.Pointer[pinned]
	released atomic.Bool // the engine ran the destructor

	closeOnce sync.Once
}

type pinned struct{ v any }

func newPump(f *fanout) *pump {
	p := &pump{f: f, in: make(chan Event, handoffCapacity), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *pump) run() {
	defer close(p.done)
	for ev := range p.in {
		if p.halted.Load() {
			p.f.offer(ev)
			continue
		}
		p.delivering.Store(true)
		p.f.deliver(ev)
		p.delivering.Store(false)
	}
	p.f.closeOut()
}

// offer is called on the engine's delivery thread: it must never block.
func (p *pump) offer(ev Event) {
	select {
	case p.in <- ev:
	default:
		p.f.dropped.Add(1)
	}
}

// closeIn is the user-data destructor: after it, the engine calls the trampoline no more,
// so the wrapper need not be kept reachable (the pin would otherwise form a cycle with
// the wrapper's finalizer, which Go then never runs).
func (p *pump) closeIn() {
	p.closeOnce.Do(func() {
		p.released.Store(true)
		p.owner.Store(nil)
		close(p.in)
	})
}

// pin keeps owner reachable until the engine releases the callback; a release that came
// first (a stop won over the start) leaves nothing pinned.
func (p *pump) pin(owner any) {
	p.owner.Store(&pinned{owner})
	if p.released.Load() {
		p.owner.Store(nil)
	}
}

package heartbeater

import (
	"context"
	"errors"
	"fmt"
	"runtime/cgo"
	"sync"
	"time"
)

// native is one engine handle (hb_client, hb_monitor, hb_watcher or hb_election).
// Implementations call runtime.KeepAlive after each C call.
type native interface {
	// setCallback registers the trampoline with h as user data.
	setCallback(h cgo.Handle) error
	stop(timeout time.Duration) error
	// free releases the handle; the engine runs the user-data destructor by then.
	free()
}

// starter is a native handle with a Start (all but hb_election, which campaigns instead).
type starter interface {
	native
	start() error
}

// handle ties a Go wrapper (Client, Monitor, Watcher) to its engine handle. It keeps no
// lifecycle rule of its own: Start, Stop and every other call go to the engine, whose one
// lifecycle (hb-core/src/lifecycle.rs) answers for the phase — a second Start is
// ErrInvalidState, Start after Stop is ErrStopped, Stop is idempotent, and so on.
//
// What is left here is Go's object lifetime: the engine handle is made on first use (so
// an option the engine rejects surfaces there, usually from Start), the pump that carries
// events to Go, the finalizer, and an idempotent Close that frees.
type handle struct {
	kind   string // "client", "monitor", "watcher": for the few messages of our own
	s      *settings
	f      *fanout
	create func(cfg *config) (native, error)

	mu     sync.RWMutex // RLock: a C call on n; Lock: making or freeing n
	made   bool         // the attempt to make n was done (err says how it went)
	n      native
	p      *pump
	err    error // why n could not be made; the options do not change, so it stays
	closed bool
}

func newHandle(kind string, s *settings, create func(cfg *config) (native, error)) *handle {
	return &handle{kind: kind, s: s, f: newFanout(s), create: create}
}

// ensure makes the engine handle and its pump, once.
func (h *handle) ensure() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.made || h.closed {
		return
	}
	h.made = true
	cfg, err := buildConfig(h.s)
	if err != nil {
		h.err = err
		return
	}
	defer cfg.free()
	n, err := h.create(cfg)
	if err != nil {
		h.err = err
		return
	}
	p := newPump(h.f)
	if err := n.setCallback(cgo.NewHandle(p)); err != nil {
		n.free() // the engine ran the destructor before returning the error: the pump ends
		<-p.done
		h.err = err
		return
	}
	h.n, h.p = n, p
}

// use runs fn with the engine handle (made if need be) under the read lock, or says why
// there is none: the engine's own error from making it, or Close.
func (h *handle) use(fn func(n native, p *pump) error) error {
	h.mu.RLock()
	if !h.made {
		h.mu.RUnlock()
		h.ensure()
		h.mu.RLock()
	}
	defer h.mu.RUnlock()
	switch {
	case h.closed:
		return newError(ErrStopped, h.kind+" is closed")
	case h.err != nil:
		return h.err
	}
	return fn(h.n, h.p)
}

func (h *handle) start(owner any) error {
	return h.use(func(n native, p *pump) error {
		err := n.(starter).start()
		if err == nil {
			p.pin(owner)
		}
		return err
	})
}

// stop asks the engine to stop within timeout (0: the handle's stop_timeout), then waits for the pump to hand over
// what is queued and close the Events() channel. It does not wait when the pump is
// inside an OnEvent function (that may be the caller itself): then no later OnEvent
// call is made and the channel closes once that function returns.
func (h *handle) stop(timeout time.Duration) error {
	var p *pump
	err := h.use(func(n native, pp *pump) error {
		p = pp
		return n.stop(timeout)
	})
	if p == nil {
		// No engine handle: its options were rejected (nothing was made to stop), or
		// Close already stopped and freed it.
		h.f.closeOut()
		return nil
	}
	if err != nil && !errors.Is(err, ErrTimeout) {
		return err // not stopped (e.g. ErrForked): the engine still holds the callback
	}
	if p.delivering.Load() {
		p.halted.Store(true)
		return err
	}
	// The engine has dropped the callback by the time stop returns; the bound only
	// guards against a broken engine, never the normal path.
	guard := time.NewTimer(timeout + 30*time.Second)
	defer guard.Stop() // or the timer stays reachable for its 30 s after every stop
	select {
	case <-p.done:
	case <-guard.C:
		if err == nil {
			err = newError(ErrInternal, fmt.Sprintf("%s stopped but its event callback was not released", h.kind))
		}
	}
	return err
}

// shutdown is stop bounded by ctx: its deadline replaces the stop timeout, and a ctx that
// is done (before or during the bounded stop) is reported, wrapping ctx.Err().
func (h *handle) shutdown(ctx context.Context) error {
	return h.bounded(ctx, "shutdown", "stop", h.stop)
}

// bounded runs op (stop, an election's resign) with ctx's deadline as its timeout (0, the
// handle's stop_timeout, without one; the shortest real bound when ctx is already done),
// and reports a ctx that is done by the time op returns, wrapping ctx.Err().
func (h *handle) bounded(ctx context.Context, what, opName string, op func(timeout time.Duration) error) error {
	var timeout time.Duration // the handle's stop_timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	if ctx.Err() != nil {
		timeout = time.Millisecond // already done: the shortest real bound
	}
	err := op(timeout)
	if cerr := ctx.Err(); cerr != nil {
		if err != nil {
			return fmt.Errorf("heartbeater: %s %s: %w (%s: %w)", h.kind, what, cerr, opName, err)
		}
		return fmt.Errorf("heartbeater: %s %s: %w", h.kind, what, cerr)
	}
	return err
}

// startContext runs start, and gives up on it when ctx is done first: the handle is
// then stopped (the engine lets a stop win over a start under way, which ends stopped)
// and ctx.Err() is returned, wrapped.
func (h *handle) startContext(ctx context.Context, owner any) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("heartbeater: %s start: %w", h.kind, err)
	}
	done := make(chan error, 1)
	go func() { done <- h.start(owner) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// The shortest bound: the stop does not wait for the start, which says the
		// goodbye itself once it finishes (within connect_timeout).
		_ = h.stop(time.Millisecond)
		return fmt.Errorf("heartbeater: %s start: %w", h.kind, ctx.Err())
	}
}

// close stops (as Stop) and frees the engine handle; idempotent.
func (h *handle) close() error {
	err := h.stop(0)
	h.release()
	return err
}

// finalize is the safety net for a wrapper that became unreachable while holding an
// engine handle. A started handle is reachable from its pump until it stops, so in
// practice this frees handles that never ran or were stopped without Close.
func (h *handle) finalize() { h.release() }

// release frees the engine handle once; later calls find it closed.
func (h *handle) release() {
	h.mu.Lock()
	n := h.n
	h.n, h.closed = nil, true
	h.mu.Unlock()
	if n != nil {
		n.free()
	}
}

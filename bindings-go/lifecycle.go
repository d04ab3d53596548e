package heartbeater

import (
	"fmt"
	"runtime/cgo"
	"sync"
	"time"
)

// native is one engine handle (hb_client, hb_monitor or hb_watcher) as the lifecycle
// sees it. Implementations call runtime.KeepAlive after each C call.
type native interface {
	// setCallback registers the trampoline with h as user data.
	setCallback(h cgo.Handle) error
	start() error
	stop(timeout time.Duration) error
	// free releases the handle; the engine runs the user-data destructor by then.
	free()
}

type phase int

const (
	phaseNew phase = iota
	phaseRunning
	phaseStopped
)

// lifecycle is the state machine shared by Client, Monitor and Watcher: Start and Stop
// are idempotent, a stopped handle stays stopped, and Stop returns only once no
// goroutine of ours is left for the handle.
type lifecycle struct {
	kind   string // "client", "monitor", "watcher": for messages
	s      *settings
	f      *fanout
	create func(cfg *config) (native, error)

	mu    sync.RWMutex
	phase phase
	n     native
	p     *pump
}

func newLifecycle(kind string, s *settings, create func(cfg *config) (native, error)) *lifecycle {
	return &lifecycle{kind: kind, s: s, f: newFanout(s), create: create}
}

func (l *lifecycle) start(owner any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.phase {
	case phaseRunning:
		return nil
	case phaseStopped:
		return newError(ErrStopped, fmt.Sprintf("%s is stopped; create a new one", l.kind))
	}
	cfg, err := buildConfig(l.s)
	if err != nil {
		return err
	}
	defer cfg.free()
	n, err := l.create(cfg)
	if err != nil {
		return err
	}
	p := newPump(l.f, owner)
	h := cgo.NewHandle(p)
	if err := n.setCallback(h); err != nil {
		// The engine ran the destructor before returning the error: the pump ends.
		n.free()
		<-p.done
		return err
	}
	if err := n.start(); err != nil {
		n.free() // runs the destructor: the pump ends
		<-p.done
		return err
	}
	l.n, l.p, l.phase = n, p, phaseRunning
	return nil
}

// stop stops the handle within timeout, frees it, and waits for the pump goroutine
// (unless called from one of this handle's own callbacks, which run on that goroutine:
// then the pump finishes right after the callback returns).
func (l *lifecycle) stop(timeout time.Duration) error {
	l.mu.Lock()
	if l.phase != phaseRunning {
		l.phase = phaseStopped
		l.mu.Unlock()
		l.f.closeOut()
		return nil
	}
	n, p := l.n, l.p
	p.final.Store(true)
	err := n.stop(timeout)
	n.free()
	l.n, l.p, l.phase = nil, nil, phaseStopped
	l.mu.Unlock()

	if p.onPumpGoroutine() {
		return err
	}
	// The engine has run the destructor by the time free returns; the bound only guards
	// against a broken engine, never the normal path.
	select {
	case <-p.done:
	case <-time.After(timeout + 5*time.Second):
		if err == nil {
			err = newError(ErrInternal, fmt.Sprintf("%s stopped but its event callback was not released", l.kind))
		}
	}
	return err
}

// withNative runs fn with the running handle under a read lock, or reports why not.
func (l *lifecycle) withNative(fn func(n native) error) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	switch l.phase {
	case phaseNew:
		return newError(ErrStopped, fmt.Sprintf("%s is not started", l.kind))
	case phaseStopped:
		return newError(ErrStopped, fmt.Sprintf("%s is stopped", l.kind))
	}
	return fn(l.n)
}

func (l *lifecycle) currentPhase() phase {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.phase
}

// finalize is the safety net for a wrapper that became unreachable while holding a
// handle. A running handle is reachable from its cgo.Handle, so in practice this only
// frees what a failed path left behind.
func (l *lifecycle) finalize() {
	l.mu.Lock()
	n := l.n
	l.n = nil
	l.mu.Unlock()
	if n != nil {
		n.free()
	}
}

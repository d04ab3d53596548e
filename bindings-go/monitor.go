package heartbeater

/*
#include "heartbeater.h"
*/
import "C"

import (
	"context"
	"runtime"
	"runtime/cgo"
	"time"
)

// Monitor is the watching side: it listens for beats (WithListen("udp://127.0.0.1:7946"))
// and reports each peer's transitions (alive, suspect, dead, left) on Events() and to
// OnEvent callbacks. A started Monitor runs until Stop. Its lifecycle is the engine's,
// as for Client (Peers after Stop is ErrStopped). Safe for concurrent use.
type Monitor struct {
	l *handle
}

// NewMonitor records the options (WithListen, WithAuthKey, WithDetector, WithOption ...);
// the engine checks them when the monitor is made, on the first call that needs it
// (normally Start).
func NewMonitor(opts ...Option) *Monitor {
	m := &Monitor{}
	m.l = newHandle("monitor", newSettings(opts), func(cfg *config) (native, error) {
		var out *C.hb_monitor
		var cerr *C.hb_error
		st := C.hb_monitor_new(cfg.ptr, &out, &cerr)
		runtime.KeepAlive(cfg)
		if err := takeError(st, cerr); err != nil {
			return nil, err
		}
		return &nativeMonitor{ptr: out}, nil
	})
	runtime.SetFinalizer(m, func(m *Monitor) { m.l.finalize() })
	return m
}

// Start binds the listen addresses and starts tracking peers. ErrInvalidState when
// started already, ErrStopped after Stop, ErrConfig for a rejected option.
func (m *Monitor) Start() error {
	defer runtime.KeepAlive(m)
	return m.l.start(m)
}

// StartContext is Start that gives up when ctx is done first (see Client.StartContext).
func (m *Monitor) StartContext(ctx context.Context) error {
	defer runtime.KeepAlive(m)
	return m.l.startContext(ctx, m)
}

// Stop closes the sockets and stops; idempotent. After it returns no OnEvent function of
// this monitor is called any more and the Events() channel is closed (unless called while
// an OnEvent function runs: see Client.Stop).
func (m *Monitor) Stop() error { return m.l.stop(0) }

// Shutdown is Stop for http.Server.RegisterOnShutdown-style code; see Client.Shutdown.
func (m *Monitor) Shutdown(ctx context.Context) error { return m.l.shutdown(ctx) }

// Close stops the monitor and frees the engine handle; idempotent.
func (m *Monitor) Close() error { return m.l.close() }

// Events returns the channel of peer transitions; closed after Stop. Transitions from
// before the first call wait in it (up to WithEventBuffer).
func (m *Monitor) Events() <-chan Event { return m.l.f.events() }

// OnEvent registers fn for every later event (one goroutine per monitor, in order;
// panics are recovered, logged and counted).
func (m *Monitor) OnEvent(fn func(Event)) { m.l.f.onEvent(fn) }

// Stats reports dropped events and recovered callback panics.
func (m *Monitor) Stats() Stats { return m.l.f.stats() }

// Peers is a snapshot of every peer the monitor knows.
func (m *Monitor) Peers() ([]Peer, error) {
	var peers []Peer
	err := m.l.use(func(n native, _ *pump) error {
		nm := n.(*nativeMonitor)
		var ps *C.hb_peers
		var cerr *C.hb_error
		st := C.hb_monitor_peers(nm.ptr, &ps, &cerr)
		runtime.KeepAlive(nm)
		if err := takeError(st, cerr); err != nil {
			return err
		}
		peers = takePeers(ps)
		return nil
	})
	return peers, err
}

// HTTPAddr is where the HTTP API listens ("127.0.0.1:40123", the bound port when the
// http_addr option asked for port 0); "" when the monitor serves none (no http_addr, not
// started, or stopped).
func (m *Monitor) HTTPAddr() (string, error) {
	var addr string
	err := m.l.use(func(n native, _ *pump) error {
		nm := n.(*nativeMonitor)
		defer runtime.KeepAlive(nm)
		var s *C.char
		var cerr *C.hb_error
		if err := takeError(C.hb_monitor_http_addr(nm.ptr, &s, &cerr), cerr); err != nil {
			return err
		}
		addr = goStringFree(s)
		return nil
	})
	return addr, err
}

// LocalAddrs are the bound addresses ("udp://127.0.0.1:40123"), in the order of the
// listen list: the way to learn the port after listening on port 0.
func (m *Monitor) LocalAddrs() ([]string, error) {
	var addrs []string
	err := m.l.use(func(n native, _ *pump) error {
		nm := n.(*nativeMonitor)
		defer runtime.KeepAlive(nm)
		var count C.size_t
		var cerr *C.hb_error
		if err := takeError(C.hb_monitor_local_addr_count(nm.ptr, &count, &cerr), cerr); err != nil {
			return err
		}
		for i := 0; i < int(count); i++ {
			var s *C.char
			var cerr *C.hb_error
			if err := takeError(C.hb_monitor_local_addr(nm.ptr, C.size_t(i), &s, &cerr), cerr); err != nil {
				return err
			}
			addrs = append(addrs, goStringFree(s))
		}
		return nil
	})
	return addrs, err
}

type nativeMonitor struct {
	ptr *C.hb_monitor
}

func (n *nativeMonitor) setCallback(h cgo.Handle) error {
	err := monitorSetCallback(n.ptr, h)
	runtime.KeepAlive(n)
	return err
}

func (n *nativeMonitor) start() error {
	var cerr *C.hb_error
	st := C.hb_monitor_start(n.ptr, &cerr)
	runtime.KeepAlive(n)
	return takeError(st, cerr)
}

// stop: the monitor sends nothing on stop, so there is nothing to bound.
func (n *nativeMonitor) stop(time.Duration) error {
	var cerr *C.hb_error
	st := C.hb_monitor_stop(n.ptr, &cerr)
	runtime.KeepAlive(n)
	return takeError(st, cerr)
}

func (n *nativeMonitor) free() {
	C.hb_monitor_free(n.ptr)
	n.ptr = nil
}

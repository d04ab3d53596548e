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

// Watcher builds the node view from an etcd prefix ("etcd://127.0.0.1:2379/services"):
// registrations joining, updating, leaving and expiring arrive as events, resynchronised
// after disconnects and compactions. Same shape and lifecycle as Monitor. Safe for
// concurrent use.
type Watcher struct {
	l *handle
}

// NewWatcher watches endpoint (etcd://host:port[,host:port]/prefix). opts add the etcd
// connection options — WithEtcdTLS, WithEtcdAuth, or WithOption("connect_timeout", "3s")
// and the other keys — and Go-side ones (WithEventBuffer, WithLogger). The engine checks
// them when the watcher is made, on the first call that needs it (normally Start).
func NewWatcher(endpoint string, opts ...Option) *Watcher {
	w := &Watcher{}
	all := append([]Option{WithEndpoint(endpoint)}, opts...)
	w.l = newHandle("watcher", newSettings(all), func(cfg *config) (native, error) {
		var out *C.hb_watcher
		var cerr *C.hb_error
		st := C.hb_watcher_new(cfg.ptr, &out, &cerr)
		runtime.KeepAlive(cfg)
		if err := takeError(st, cerr); err != nil {
			return nil, err
		}
		return &nativeWatcher{ptr: out}, nil
	})
	runtime.SetFinalizer(w, func(w *Watcher) { w.l.finalize() })
	return w
}

// Start connects and loads the current registrations. ErrInvalidState when started
// already, ErrStopped after Stop, ErrConnect when etcd cannot be reached.
func (w *Watcher) Start() error {
	defer runtime.KeepAlive(w)
	return w.l.start(w)
}

// StartContext is Start that gives up when ctx is done first (see Client.StartContext).
func (w *Watcher) StartContext(ctx context.Context) error {
	defer runtime.KeepAlive(w)
	return w.l.startContext(ctx, w)
}

// Stop stops watching; idempotent. After it returns no OnEvent function of this watcher
// is called any more and the Events() channel is closed (unless called while an OnEvent
// function runs: see Client.Stop).
func (w *Watcher) Stop() error { return w.l.stop(0) }

// Shutdown is Stop for http.Server.RegisterOnShutdown-style code; see Client.Shutdown.
func (w *Watcher) Shutdown(ctx context.Context) error { return w.l.shutdown(ctx) }

// Close stops the watcher and frees the engine handle; idempotent.
func (w *Watcher) Close() error { return w.l.close() }

// Events returns the channel of registration transitions; closed after Stop. Transitions
// from before the first call wait in it (up to WithEventBuffer).
func (w *Watcher) Events() <-chan Event { return w.l.f.events() }

// OnEvent registers fn for every later event.
func (w *Watcher) OnEvent(fn func(Event)) { w.l.f.onEvent(fn) }

// Stats reports dropped events and recovered callback panics.
func (w *Watcher) Stats() Stats { return w.l.f.stats() }

// HTTPAddr is where the HTTP API listens ("127.0.0.1:40123", the bound port when the
// http_addr option asked for port 0); "" when the watcher serves none (no http_addr, not
// started, or stopped).
func (w *Watcher) HTTPAddr() (string, error) {
	var addr string
	err := w.l.use(func(n native, _ *pump) error {
		nw := n.(*nativeWatcher)
		defer runtime.KeepAlive(nw)
		var s *C.char
		var cerr *C.hb_error
		if err := takeError(C.hb_watcher_http_addr(nw.ptr, &s, &cerr), cerr); err != nil {
			return err
		}
		addr = goStringFree(s)
		return nil
	})
	return addr, err
}

// Peers is a snapshot of every registration under the prefix.
func (w *Watcher) Peers() ([]Peer, error) {
	var peers []Peer
	err := w.l.use(func(n native, _ *pump) error {
		nw := n.(*nativeWatcher)
		var ps *C.hb_peers
		var cerr *C.hb_error
		st := C.hb_watcher_peers(nw.ptr, &ps, &cerr)
		runtime.KeepAlive(nw)
		if err := takeError(st, cerr); err != nil {
			return err
		}
		peers = takePeers(ps)
		return nil
	})
	return peers, err
}

type nativeWatcher struct {
	ptr *C.hb_watcher
}

func (n *nativeWatcher) setCallback(h cgo.Handle) error {
	err := watcherSetCallback(n.ptr, h)
	runtime.KeepAlive(n)
	return err
}

func (n *nativeWatcher) start() error {
	var cerr *C.hb_error
	st := C.hb_watcher_start(n.ptr, &cerr)
	runtime.KeepAlive(n)
	return takeError(st, cerr)
}

func (n *nativeWatcher) stop(time.Duration) error {
	var cerr *C.hb_error
	st := C.hb_watcher_stop(n.ptr, &cerr)
	runtime.KeepAlive(n)
	return takeError(st, cerr)
}

func (n *nativeWatcher) free() {
	C.hb_watcher_free(n.ptr)
	n.ptr = nil
}

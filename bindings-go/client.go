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

// Client keeps this process registered as alive: direct beats to a Monitor (udp://,
// tcp://) or an etcd lease (etcd://). Create it with NewClient, then Start; Stop says
// goodbye (the offline signal) so watchers see the instance leave at once.
//
// A started Client keeps beating until Stop, even if the program drops every reference
// to it. All methods are safe for concurrent use.
type Client struct {
	l *lifecycle
}

// NewClient records the options; nothing is checked or started until Start, which
// returns any configuration error.
func NewClient(opts ...Option) *Client {
	c := &Client{}
	c.l = newLifecycle("client", newSettings(opts), func(cfg *config) (native, error) {
		var out *C.hb_client
		var cerr *C.hb_error
		st := C.hb_client_new(cfg.ptr, &out, &cerr)
		runtime.KeepAlive(cfg)
		if err := takeError(st, cerr); err != nil {
			return nil, err
		}
		return &nativeClient{ptr: out}, nil
	})
	runtime.SetFinalizer(c, func(c *Client) { c.l.finalize() })
	return c
}

// Start checks the options and starts beating. With etcd it returns once the first
// registration is written (bounded by the connect_timeout option, default 5s), so an
// unreachable etcd is reported here (ErrConnect). Calling Start on a started client does
// nothing; on a stopped one it returns ErrStopped.
func (c *Client) Start() error { return c.l.start(c) }

// Stop says goodbye and stops, waiting at most the stop timeout (default 2s, see
// WithStopTimeout). It is idempotent, and after it returns no goroutine or callback of
// this client runs any more. Meant for `defer hb.Stop()`.
func (c *Client) Stop() error { return c.l.stop(c.l.s.stopTimeout) }

// Shutdown is Stop bounded by ctx's deadline instead of the stop timeout; it fits
// http.Server.RegisterOnShutdown. A ctx without deadline uses the stop timeout.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.l.stop(timeoutFrom(ctx, c.l.s.stopTimeout))
}

// State is the client's own health: StateUnknown before Start, then StateHealthy,
// StateDegraded or StateLost, and StateStopped after Stop.
func (c *Client) State() State {
	state := StateUnknown
	err := c.l.withNative(func(n native) error {
		nc := n.(*nativeClient)
		var s C.hb_state
		var cerr *C.hb_error
		st := C.hb_client_state(nc.ptr, &s, &cerr)
		runtime.KeepAlive(nc)
		if err := takeError(st, cerr); err != nil {
			return err
		}
		state = stateName(uint32(s))
		return nil
	})
	if err != nil && c.l.currentPhase() == phaseStopped {
		return StateStopped
	}
	return state
}

// Events returns the channel of the client's own health events (healthy, degraded,
// lost, reregistered ...). It is closed after Stop. A full channel drops new events
// (counted in Stats); OnEvent callbacks still see them. Events from before the first call
// wait in it (up to WithEventBuffer).
func (c *Client) Events() <-chan Event { return c.l.f.events() }

// OnEvent registers fn for every later event, called on one goroutine per client, in
// order. A panic in fn is recovered, logged and counted. fn may call Stop.
func (c *Client) OnEvent(fn func(Event)) { c.l.f.onEvent(fn) }

// Stats reports dropped events and recovered callback panics.
func (c *Client) Stats() Stats { return c.l.f.stats() }

// FencingToken returns (lease id, epoch) for downstream compare-and-set writes; it fails
// with ErrNotHolder when this process can no longer be sure it holds its registration.
func (c *Client) FencingToken() (FencingToken, error) {
	var tok FencingToken
	err := c.l.withNative(func(n native) error {
		nc := n.(*nativeClient)
		var lease C.int64_t
		var epoch C.uint64_t
		var cerr *C.hb_error
		st := C.hb_client_fencing_token(nc.ptr, &lease, &epoch, &cerr)
		runtime.KeepAlive(nc)
		if err := takeError(st, cerr); err != nil {
			return err
		}
		tok = FencingToken{LeaseID: int64(lease), Epoch: uint64(epoch)}
		return nil
	})
	return tok, err
}

// Check returns nil while this process may still act as the holder of its registration,
// and ErrNotHolder once the conservative remaining time is zero (even if the process was
// frozen and has heard nothing since). It asks nobody: cheap enough before every write.
func (c *Client) Check() error {
	return c.l.withNative(func(n native) error {
		nc := n.(*nativeClient)
		var cerr *C.hb_error
		st := C.hb_client_check(nc.ptr, &cerr)
		runtime.KeepAlive(nc)
		return takeError(st, cerr)
	})
}

// Remaining is the conservative time this process may still act as the holder (0: not,
// or not started).
func (c *Client) Remaining() time.Duration {
	var d time.Duration
	_ = c.l.withNative(func(n native) error {
		nc := n.(*nativeClient)
		var ms C.uint64_t
		var cerr *C.hb_error
		st := C.hb_client_remaining_ms(nc.ptr, &ms, &cerr)
		runtime.KeepAlive(nc)
		if err := takeError(st, cerr); err != nil {
			return err
		}
		d = time.Duration(ms) * time.Millisecond
		return nil
	})
	return d
}

type nativeClient struct {
	ptr *C.hb_client
}

func (n *nativeClient) setCallback(h cgo.Handle) error {
	err := clientSetCallback(n.ptr, h)
	runtime.KeepAlive(n)
	return err
}

func (n *nativeClient) start() error {
	var cerr *C.hb_error
	st := C.hb_client_start(n.ptr, &cerr)
	runtime.KeepAlive(n)
	return takeError(st, cerr)
}

func (n *nativeClient) stop(timeout time.Duration) error {
	var cerr *C.hb_error
	st := C.hb_client_stop(n.ptr, C.uint32_t(timeoutMillis(timeout)), &cerr)
	runtime.KeepAlive(n)
	return takeError(st, cerr)
}

func (n *nativeClient) free() {
	C.hb_client_free(n.ptr)
	n.ptr = nil
}

// timeoutMillis converts for the C ABI, where 0 means "the configured default": a zero
// or negative timeout becomes the shortest real one.
func timeoutMillis(d time.Duration) uint32 {
	ms := d.Milliseconds()
	switch {
	case ms < 1:
		return 1
	case ms > int64(^uint32(0)-1):
		return ^uint32(0) - 1
	}
	return uint32(ms)
}

// timeoutFrom is the time left until ctx's deadline, or def without a deadline.
func timeoutFrom(ctx context.Context, def time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return def
}

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
// The lifecycle is the engine's, the same in every language: a second Start is
// ErrInvalidState, Start after Stop is ErrStopped (create a new Client), Stop is
// idempotent, Check and FencingToken after Stop are ErrStopped. A started Client keeps
// beating until Stop, even if the program drops every reference to it; Close (or, as a
// safety net, the garbage collector) frees it. All methods are safe for concurrent use.
type Client struct {
	h *handle
}

// NewClient records the options; the engine checks them when the client is made, on the
// first call that needs it (normally Start), which returns any configuration error.
func NewClient(opts ...Option) *Client {
	c := &Client{}
	c.h = newHandle("client", newSettings(opts), func(cfg *config) (native, error) {
		var out *C.hb_client
		var cerr *C.hb_error
		st := C.hb_client_new(cfg.ptr, &out, &cerr)
		runtime.KeepAlive(cfg)
		if err := takeError(st, cerr); err != nil {
			return nil, err
		}
		return &nativeClient{ptr: out}, nil
	})
	runtime.SetFinalizer(c, func(c *Client) { c.h.finalize() })
	return c
}

// Start starts beating. With etcd it returns once the first registration is written
// (bounded by the connect_timeout option, default 5s), so an unreachable etcd is reported
// here (ErrConnect). A rejected option is reported here too (ErrConfig). Starting a
// started client is ErrInvalidState; a stopped one, ErrStopped.
func (c *Client) Start() error {
	defer runtime.KeepAlive(c)
	return c.h.start(c)
}

// StartContext is Start that gives up when ctx is done first: the client is then stopped
// (it cannot be started again) and the error wraps ctx.Err(). The engine's own wait is
// still bounded by connect_timeout; an abandoned start finishes in the background within
// it and says goodbye.
func (c *Client) StartContext(ctx context.Context) error {
	defer runtime.KeepAlive(c)
	return c.h.startContext(ctx, c)
}

// Stop says goodbye and stops, waiting at most the stop_timeout option (default 2s, see
// WithStopTimeout). It is idempotent. After it returns no OnEvent function of this
// client is called any more and the Events() channel is closed — except when Stop is
// called while an OnEvent function runs (from inside it, typically): then Stop does not
// wait for that function to return. Meant for `defer hb.Stop()`.
func (c *Client) Stop() error { return c.h.stop(0) }

// Shutdown is Stop bounded by ctx: its deadline replaces the stop timeout; a ctx already
// done gets the shortest bound. When ctx is done by the time the bounded stop returns,
// the error wraps ctx.Err() (errors.Is(err, context.Canceled) or DeadlineExceeded),
// even though the client did stop. It fits http.Server.RegisterOnShutdown.
func (c *Client) Shutdown(ctx context.Context) error { return c.h.shutdown(ctx) }

// Close stops the client (as Stop) and frees the engine handle. Idempotent; after it
// every call returns ErrStopped ("client is closed").
func (c *Client) Close() error { return c.h.close() }

// State is the client's own health, as the engine reports it: StateUnknown before Start,
// then StateHealthy, StateDegraded or StateLost, and StateStopped after Stop. StateUnknown
// also when there is no state to read (options rejected, closed, forked child).
func (c *Client) State() State {
	state := StateUnknown
	_ = c.h.use(func(n native, _ *pump) error {
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
	return state
}

// Events returns the channel of the client's own health events (healthy, degraded,
// lost, reregistered ..., and stopped at the end). It is closed after Stop, once the
// events queued before it are in. A full channel drops new events (counted in Stats);
// OnEvent callbacks still see them. Events from before the first call wait in it (up to
// WithEventBuffer).
func (c *Client) Events() <-chan Event { return c.h.f.events() }

// OnEvent registers fn for every later event, called on one goroutine per client, in
// order. A panic in fn is recovered, logged and counted. fn may call Stop or Close (they
// do not wait for fn); see docs/go.md for what a callback may do.
func (c *Client) OnEvent(fn func(Event)) { c.h.f.onEvent(fn) }

// Stats reports dropped events and recovered callback panics.
func (c *Client) Stats() Stats { return c.h.f.stats() }

// FencingToken returns (lease id, epoch) for downstream compare-and-set writes; it fails
// with ErrNotHolder when this process can no longer be sure it holds its registration
// (also before the first acknowledgement), and with ErrStopped after Stop.
func (c *Client) FencingToken() (FencingToken, error) {
	var tok FencingToken
	err := c.h.use(func(n native, _ *pump) error {
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
// frozen and has heard nothing since); ErrStopped after Stop. It asks nobody: cheap
// enough before every write.
func (c *Client) Check() error {
	return c.h.use(func(n native, _ *pump) error {
		nc := n.(*nativeClient)
		var cerr *C.hb_error
		st := C.hb_client_check(nc.ptr, &cerr)
		runtime.KeepAlive(nc)
		return takeError(st, cerr)
	})
}

// Remaining is the conservative time this process may still act as the holder (0: not,
// not started, or stopped).
func (c *Client) Remaining() time.Duration {
	var d time.Duration
	_ = c.h.use(func(n native, _ *pump) error {
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

// Incarnation is this process start's incarnation, sent in every beat.
func (c *Client) Incarnation() (uint32, error) {
	var inc uint32
	err := c.h.use(func(n native, _ *pump) error {
		nc := n.(*nativeClient)
		var out C.uint32_t
		var cerr *C.hb_error
		st := C.hb_client_incarnation(nc.ptr, &out, &cerr)
		runtime.KeepAlive(nc)
		if err := takeError(st, cerr); err != nil {
			return err
		}
		inc = uint32(out)
		return nil
	})
	return inc, err
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

// timeoutMillis converts for the C ABI: 0 (or less) is the handle's stop_timeout, as
// in C; anything shorter than a millisecond becomes the shortest real bound.
func timeoutMillis(d time.Duration) uint32 {
	ms := d.Milliseconds()
	switch {
	case d <= 0:
		return 0
	case ms < 1:
		return 1
	case ms > int64(^uint32(0)-1):
		return ^uint32(0) - 1
	}
	return uint32(ms)
}

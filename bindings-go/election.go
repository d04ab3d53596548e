package heartbeater

/*
#include "heartbeater.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/cgo"
	"time"
	"unsafe"
)

// Election is one candidate in a leader election over etcd (docs/election.md), fenced by
// the same lease engine as a Client: Check passes only while this candidate leads and its
// lease is valid by the conservative arithmetic, and fails at once on lease loss, Resign or
// Stop. Every rule is the engine's; this type converts. All methods are safe for
// concurrent use.
//
// A campaigning Election keeps campaigning (and leading) until Resign, Stop or Close,
// even if the program drops every reference to it.
type Election struct {
	h *handle
}

// Token is a term's fencing token: the leader key's creation revision, then its lease. A
// later term always has a larger Revision, so downstream stores compare Revision alone.
type Token struct {
	Revision int64
	LeaseID  int64
}

// Leader is the leader as this candidate's watch observed it.
type Leader struct {
	Token Token
	Value []byte
}

// campaignSlice bounds each engine wait of a Campaign whose ctx can be cancelled but has
// no deadline: a cancelled campaign's background wait ends within it.
const campaignSlice = time.Second

// NewElection makes a candidate in election name on endpoint
// (etcd://host:port[,host:port]/prefix) that campaigns with value. opts are the Client's
// (WithTTL, WithEtcdTLS, WithEtcdAuth, WithOption("connect_timeout", "3s"), WithEventBuffer,
// WithLogger, ...). It does not campaign yet. A rejected option or name is ErrConfig with
// the engine's message (`name "a/b": ...`).
func NewElection(endpoint, name string, value []byte, opts ...Option) (*Election, error) {
	e := &Election{}
	all := append([]Option{WithEndpoint(endpoint)}, opts...)
	e.h = newHandle("election", newSettings(all), func(cfg *config) (native, error) {
		cname, err := cString("name", name)
		if err != nil {
			return nil, err
		}
		defer freeC(cname)
		var ptr *C.uint8_t
		if len(value) > 0 {
			ptr = (*C.uint8_t)(unsafe.Pointer(&value[0])) // copied by the engine
		}
		var out *C.hb_election
		var cerr *C.hb_error
		st := C.hb_election_new(cfg.ptr, cname, ptr, C.size_t(len(value)), &out, &cerr)
		runtime.KeepAlive(cfg)
		runtime.KeepAlive(value)
		if err := takeError(st, cerr); err != nil {
			return nil, err
		}
		return &nativeElection{ptr: out}, nil
	})
	e.h.ensure()
	if e.h.err != nil {
		return nil, e.h.err
	}
	runtime.SetFinalizer(e, func(e *Election) { e.h.finalize() })
	return e, nil
}

// Campaign becomes a candidate (if not one yet) and waits to lead; it returns the term's
// token. Registering is bounded by connect_timeout and fails as a Client's Start does
// (ErrConnect, ErrPermissionDenied). When ctx's deadline passes first the error matches
// both ErrTimeout and context.DeadlineExceeded; when ctx is cancelled, context.Canceled.
// Either way the candidacy goes on (an elected event comes later); Resign withdraws it.
// ErrNotHolder when the candidacy ended meanwhile (a loss with SetRecampaign(false)),
// ErrStopped after Stop.
func (e *Election) Campaign(ctx context.Context) (Token, error) {
	defer runtime.KeepAlive(e)
	if err := ctx.Err(); err != nil {
		return Token{}, fmt.Errorf("heartbeater: election campaign: %w", err)
	}
	if ctx.Done() == nil { // never cancelled: one wait without limit
		return e.campaign(uint32(C.HB_WAIT_FOREVER))
	}
	type result struct {
		tok Token
		err error
	}
	done := make(chan result, 1)
	_, hasDeadline := ctx.Deadline()
	go func() {
		for {
			timeout := campaignSlice
			if dl, ok := ctx.Deadline(); ok {
				timeout = time.Until(dl)
			}
			tok, err := e.campaign(campaignMillis(timeout))
			if !errors.Is(err, ErrTimeout) || hasDeadline || ctx.Err() != nil {
				done <- result{tok, err}
				return
			}
		}
	}()
	select {
	case r := <-done:
		return r.tok, campaignError(ctx, r.err, hasDeadline)
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// The engine's wait ends at the same deadline: take its answer (it may be a
			// token won at the last moment).
			r := <-done
			return r.tok, campaignError(ctx, r.err, hasDeadline)
		}
		return Token{}, campaignCancelled(ctx)
	}
}

// campaignError says why the engine's wait ran out: with a deadline, the wait was ctx's
// (the engine may see it a fraction of a millisecond before ctx does); without, ctx was
// cancelled during the last slice.
func campaignError(ctx context.Context, err error, hasDeadline bool) error {
	switch {
	case !errors.Is(err, ErrTimeout):
		return err
	case hasDeadline:
		return fmt.Errorf("heartbeater: election campaign: %w (%w)", context.DeadlineExceeded, err)
	default:
		return campaignCancelled(ctx)
	}
}

func campaignCancelled(ctx context.Context) error {
	return fmt.Errorf("heartbeater: election campaign: %w (still a candidate)", ctx.Err())
}

// campaignMillis converts a wait for hb_election_campaign, where 0 means no wait (not
// the stop_timeout as for stops).
func campaignMillis(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	return timeoutMillis(d)
}

func (e *Election) campaign(timeoutMs uint32) (Token, error) {
	var tok Token
	err := e.h.use(func(n native, p *pump) error {
		p.pin(e) // a candidacy runs from here: keep the wrapper (and its events) alive
		ne := n.(*nativeElection)
		var rev, lease C.int64_t
		var cerr *C.hb_error
		st := C.hb_election_campaign(ne.ptr, C.uint32_t(timeoutMs), &rev, &lease, &cerr)
		runtime.KeepAlive(ne)
		var err error
		tok, err = takeToken(st, rev, lease, cerr)
		return err
	})
	return tok, err
}

// takeToken is takeError for the calls that write a token.
func takeToken(st C.hb_status, rev, lease C.int64_t, cerr *C.hb_error) (Token, error) {
	if err := takeError(st, cerr); err != nil {
		return Token{}, err
	}
	return Token{Revision: int64(rev), LeaseID: int64(lease)}, nil
}

// Resign steps down and withdraws the candidacy: a lost event (reason resigned) if this
// candidate led, Check fails from here, then the lease is revoked so that the next
// candidate leads without waiting for the TTL. Bounded by ctx's deadline (without one, the
// stop_timeout option); a ctx done by then is reported wrapping ctx.Err(). Idempotent;
// Campaign starts a new candidacy.
func (e *Election) Resign(ctx context.Context) error {
	defer runtime.KeepAlive(e)
	return e.h.bounded(ctx, "resign", "resign", func(timeout time.Duration) error {
		return e.h.use(func(n native, _ *pump) error {
			ne := n.(*nativeElection)
			var cerr *C.hb_error
			st := C.hb_election_resign(ne.ptr, C.uint32_t(timeoutMillis(timeout)), &cerr)
			runtime.KeepAlive(ne)
			return takeError(st, cerr)
		})
	})
}

// Stop resigns, then stops, within the stop_timeout option. Idempotent. After it returns
// no OnEvent function is called any more and the Events() channel is closed (unless
// called from inside an OnEvent function: see Client.Stop); Campaign, Token and Leader are
// ErrStopped, Check is ErrNotHolder.
func (e *Election) Stop() error { return e.h.stop(0) }

// Shutdown is Stop bounded by ctx; see Client.Shutdown.
func (e *Election) Shutdown(ctx context.Context) error { return e.h.shutdown(ctx) }

// Close stops the election (as Stop) and frees the engine handle. Idempotent; after it
// every call returns ErrStopped ("election is closed").
func (e *Election) Close() error { return e.h.close() }

// SetRecampaign says whether a lost term is followed by a new campaign (true, the
// default) or withdraws the candidacy, as Resign does.
func (e *Election) SetRecampaign(on bool) error {
	return e.h.use(func(n native, _ *pump) error {
		ne := n.(*nativeElection)
		var flag C.int32_t
		if on {
			flag = 1
		}
		var cerr *C.hb_error
		st := C.hb_election_set_recampaign(ne.ptr, flag, &cerr)
		runtime.KeepAlive(ne)
		return takeError(st, cerr)
	})
}

// Check returns nil only while this candidate leads and its lease is valid; ErrNotHolder
// otherwise (also after Stop). It asks nobody: cheap enough before every write.
func (e *Election) Check() error {
	return e.h.use(func(n native, _ *pump) error {
		ne := n.(*nativeElection)
		var cerr *C.hb_error
		st := C.hb_election_check(ne.ptr, &cerr)
		runtime.KeepAlive(ne)
		return takeError(st, cerr)
	})
}

// Remaining is how long this candidate may still act as the leader (0: not the leader).
func (e *Election) Remaining() time.Duration {
	var d time.Duration
	_ = e.h.use(func(n native, _ *pump) error {
		ne := n.(*nativeElection)
		var ms C.uint64_t
		var cerr *C.hb_error
		st := C.hb_election_remaining_ms(ne.ptr, &ms, &cerr)
		runtime.KeepAlive(ne)
		if err := takeError(st, cerr); err != nil {
			return err
		}
		d = time.Duration(ms) * time.Millisecond
		return nil
	})
	return d
}

// Token is this term's fencing token; ErrNotHolder unless this candidate leads. Call
// Check before acting on it, and send it with every downstream write.
func (e *Election) Token() (Token, error) {
	var tok Token
	err := e.h.use(func(n native, _ *pump) error {
		ne := n.(*nativeElection)
		var rev, lease C.int64_t
		var cerr *C.hb_error
		st := C.hb_election_token(ne.ptr, &rev, &lease, &cerr)
		runtime.KeepAlive(ne)
		var err error
		tok, err = takeToken(st, rev, lease, cerr)
		return err
	})
	return tok, err
}

// Leader is the leader as observed while campaigning; false when nobody leads (or this
// candidate is not campaigning).
func (e *Election) Leader() (Leader, bool, error) {
	var l Leader
	var found bool
	err := e.h.use(func(n native, _ *pump) error {
		ne := n.(*nativeElection)
		var rev, lease C.int64_t
		var value *C.uint8_t
		var valueLen C.size_t
		var cerr *C.hb_error
		st := C.hb_election_leader_value(ne.ptr, &rev, &lease, &value, &valueLen, &cerr)
		runtime.KeepAlive(ne)
		if err := takeError(st, cerr); err != nil {
			return err
		}
		defer C.hb_bytes_free(value, valueLen)
		if rev == 0 {
			return nil
		}
		found = true
		l = Leader{Token: Token{Revision: int64(rev), LeaseID: int64(lease)}, Value: []byte{}}
		if valueLen > 0 {
			l.Value = C.GoBytes(unsafe.Pointer(value), C.int(valueLen))
		}
		return nil
	})
	return l, found, err
}

// Events returns the channel of election events: elected (we lead), lost (reason
// lease_deadline, lease_not_found, key_deleted, resigned, stopped) and leader_changed
// (another leader observed). Service is the election name, Peer the term's lease in hex,
// Epoch the token's Revision. Closed after Stop; as Client.Events otherwise.
func (e *Election) Events() <-chan Event { return e.h.f.events() }

// OnEvent registers fn for every later event; as Client.OnEvent.
func (e *Election) OnEvent(fn func(Event)) { e.h.f.onEvent(fn) }

// Stats reports dropped events and recovered callback panics.
func (e *Election) Stats() Stats { return e.h.f.stats() }

type nativeElection struct {
	ptr *C.hb_election
}

func (n *nativeElection) setCallback(h cgo.Handle) error {
	err := electionSetCallback(n.ptr, h)
	runtime.KeepAlive(n)
	return err
}

func (n *nativeElection) stop(timeout time.Duration) error {
	var cerr *C.hb_error
	st := C.hb_election_stop(n.ptr, C.uint32_t(timeoutMillis(timeout)), &cerr)
	runtime.KeepAlive(n)
	return takeError(st, cerr)
}

func (n *nativeElection) free() {
	C.hb_election_free(n.ptr)
	n.ptr = nil
}

package heartbeater

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// message is the engine's text of err, or fails the test.
func message(t *testing.T, err error) string {
	t.Helper()
	var he *Error
	if !errors.As(err, &he) {
		t.Fatalf("%v (%T) is not a *heartbeater.Error", err, err)
	}
	return he.Message
}

// Values given as Go types reach the engine as text: its parser and messages are the
// only ones, so Go reports exactly what every other language reports.
func TestTypedOptionsAreJudgedByTheEngine(t *testing.T) {
	udp := WithEndpoint("udp://127.0.0.1:7946")
	cases := []struct {
		name string
		opts []Option
		want string
	}{
		{"negative ttl", []Option{udp, WithTTL(-time.Second)}, `ttl "-1s": expected a duration like 200ms, 15s, 1.5s, 2m or 1h`},
		{"short ttl", []Option{udp, WithTTL(100 * time.Millisecond)}, `ttl "100ms": expected a duration from 300ms to 24h`},
		{"long ttl", []Option{udp, WithTTL(25 * time.Hour)}, `ttl "25h": expected a duration from 300ms to 24h`},
		{"fixed interval", []Option{udp, WithInterval(5*time.Millisecond, 5*time.Millisecond)},
			`interval "5ms": expected an interval like 200ms (fixed) or 1s..30s (adaptive between bounds), with 10ms <= min <= max`},
		{"interval range", []Option{udp, WithInterval(2*time.Second, time.Second)},
			`interval "2s..1s": expected an interval like 200ms (fixed) or 1s..30s (adaptive between bounds), with 10ms <= min <= max`},
		{"short auth key", []Option{udp, WithAuthKey([]byte("short"))}, `auth_key "5 bytes": expected at least 16 bytes`},
		{"empty auth key", []Option{udp, WithAuthKey([]byte{})}, `auth_key "0 bytes": expected at least 16 bytes`},
		{"nil auth key", []Option{udp, WithAuthKey(nil)}, `auth_key "0 bytes": expected at least 16 bytes`},
		{"service", []Option{udp, WithService("a/b")}, `service "a/b": expected 1..=64 bytes of letters, marks, digits, punctuation or symbols (no spaces, control, format or separator characters, unassigned code points or fullwidth forms), without '/'`},
		{"stop timeout", []Option{udp, WithStopTimeout(-time.Second)}, `stop_timeout "-1s": expected a duration like 200ms, 15s, 1.5s, 2m or 1h`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClient(tc.opts...)
			defer c.Close()
			err := c.Start()
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Start = %v, want ErrConfig", err)
			}
			if got := message(t, err); got != tc.want {
				t.Fatalf("message\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestDurationText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "-1s", 0: "0s", 1500 * time.Millisecond: "1.5s", 200 * time.Millisecond: "200ms",
		2 * time.Minute: "2m", time.Hour: "1h", 90 * time.Second: "90s", 25 * time.Hour: "25h",
		90*time.Second + 500*time.Millisecond: "90.5s", time.Microsecond: "1µs",
	} {
		if got := durationText(d); got != want {
			t.Errorf("durationText(%s) = %q, want %q", d, got, want)
		}
	}
}

// The lifecycle is the engine's: Go adds no rule and changes no answer.
func TestLifecycleIsTheEngines(t *testing.T) {
	m := NewMonitor(WithListen("udp://127.0.0.1:0"))
	defer m.Close()
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	err := m.Start()
	if !errors.Is(err, ErrInvalidState) || message(t, err) != "monitor is already started" {
		t.Fatalf("second monitor Start = %v, want ErrInvalidState \"monitor is already started\"", err)
	}
	addrs, err := m.LocalAddrs()
	if err != nil {
		t.Fatal(err)
	}

	c := fastClient(addrs[0], "life")
	defer c.Close()
	if s := c.State(); s != StateUnknown {
		t.Fatalf("State before Start = %q", s)
	}
	if r := c.fencingToken(); !errors.Is(r.err(), ErrNotHolder) {
		t.Fatalf("FencingToken before Start = %v, want ErrNotHolder", r.err())
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	err = c.Start()
	if !errors.Is(err, ErrInvalidState) || message(t, err) != "client is already started" {
		t.Fatalf("second client Start = %v, want ErrInvalidState \"client is already started\"", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	for name, err := range map[string]error{"Start": c.Start(), "Check": c.Check(), "FencingToken": c.fencingToken().err()} {
		if !errors.Is(err, ErrStopped) || message(t, err) != "client is stopped; create a new one" {
			t.Errorf("%s after Stop = %v, want the engine's ErrStopped", name, err)
		}
	}
	if s := c.State(); s != StateStopped {
		t.Errorf("State after Stop = %q", s)
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Peers(); !errors.Is(err, ErrStopped) || message(t, err) != "monitor is stopped; create a new one" {
		t.Errorf("Peers after Stop = %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.Peers(); !errors.Is(err, ErrStopped) {
		t.Errorf("Peers after Close = %v, want ErrStopped", err)
	}
}

// tokenResult lets a table hold FencingToken's error.
type tokenResult struct {
	tok FencingToken
	e   error
}

func (r tokenResult) err() error { return r.e }

func (c *Client) fencingToken() tokenResult {
	tok, err := c.FencingToken()
	return tokenResult{tok, err}
}

// Shutdown honours a context that is already done: it still stops (bounded), and says so.
func TestShutdownReportsADoneContext(t *testing.T) {
	_, addr := startMonitor(t)
	c := fastClient(addr, "cancelled-ctx")
	defer c.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	t0 := time.Now()
	err := c.Shutdown(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown(cancelled ctx) = %v, want an error wrapping context.Canceled", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("Shutdown with a cancelled context took %s", d)
	}
	if s := c.State(); s != StateStopped {
		t.Fatalf("State after Shutdown = %q", s)
	}
	// A live context with a deadline: a clean stop is nil.
	c2 := fastClient(addr, "deadline-ctx")
	defer c2.Close()
	if err := c2.Start(); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := c2.Shutdown(ctx2); err != nil {
		t.Fatalf("Shutdown within the deadline = %v", err)
	}
}

// StartContext gives up on an etcd that never answers when ctx is done, long before
// connect_timeout, and leaves the client stopped.
func TestStartContextGivesUpWithTheContext(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never speaks
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := NewClient(WithEndpoint("etcd://"+l.Addr().String()+"/ctx"), WithService("ctx"),
		WithOption("connect_timeout", "2s"))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err = c.StartContext(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("StartContext = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("StartContext took %s with a 200ms context", d)
	}
	if err := c.Start(); !errors.Is(err, ErrStopped) {
		t.Errorf("Start after an abandoned StartContext = %v, want ErrStopped", err)
	}
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if err := NewClient().StartContext(done); !errors.Is(err, context.Canceled) {
		t.Errorf("StartContext(done ctx) = %v", err)
	}
	// Close waits for the abandoned start to finish (within connect_timeout), so no
	// goroutine of ours outlives the test.
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// Stop from inside an OnEvent function returns at once, and no OnEvent call is made
// after it (the C ABI's rule for a stop from a callback), while the Events() channel
// still gets what was queued and then closes.
func TestStopFromCallbackEndsTheCallbacks(t *testing.T) {
	_, addr := startMonitor(t)
	c := fastClient(addr, "self-stop")
	var calls atomic.Int32
	stopped := make(chan error, 1)
	c.OnEvent(func(ev Event) {
		if calls.Add(1) == 1 {
			stopped <- c.Stop()
			time.Sleep(50 * time.Millisecond) // the stop's own event is queued meanwhile
		}
	})
	events := c.Events()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop from callback: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop from inside a callback did not return")
	}
	var got []State
	for ev := range events { // closes once the callback returned and the pump ended
		got = append(got, ev.To)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("OnEvent called %d times, want 1 (none after Stop)", n)
	}
	if len(got) == 0 || got[len(got)-1] != StateStopped {
		t.Errorf("Events() = %v, want ... stopped", got)
	}
}

// Close from inside an OnEvent function stops and frees the client without deadlock.
func TestCloseFromCallback(t *testing.T) {
	_, addr := startMonitor(t)
	c := fastClient(addr, "self-close")
	closed := make(chan error, 1)
	c.OnEvent(func(ev Event) {
		select {
		case closed <- c.Close():
		default:
		}
	})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close from callback: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close from inside a callback did not return")
	}
	for range c.Events() {
	}
	if err := c.Check(); !errors.Is(err, ErrStopped) {
		t.Errorf("Check after Close = %v", err)
	}
}

// The status codes are the header's: every name hb_status_str gives maps to the
// sentinel of that kind, and no code is left unnamed (drift with the C ABI fails here).
func TestStatusCodesFromTheHeader(t *testing.T) {
	want := map[string]error{
		"null_argument": ErrInternal, "invalid_utf8": ErrConfig, "config": ErrConfig, "connect": ErrConnect,
		"permission_denied": ErrPermissionDenied, "not_holder": ErrNotHolder, "stopped": ErrStopped,
		"forked": ErrForked, "invalid_state": ErrInvalidState, "timeout": ErrTimeout, "io": ErrIO,
		"internal": ErrInternal, "panic": ErrInternal, "bad_handle": ErrInternal, "out_of_range": ErrInternal,
	}
	if statusName(0) != "ok" {
		t.Fatalf("hb_status_str(0) = %q, want ok", statusName(0))
	}
	code := uint32(1)
	for ; ; code++ {
		name := statusName(code)
		if name == "unknown" {
			break
		}
		sentinel, ok := want[name]
		if !ok {
			t.Errorf("status %d %q: the Go package has no mapping for it", code, name)
			continue
		}
		if got := sentinelForCode(code); got != sentinel {
			t.Errorf("status %d %q maps to %v, want %v", code, name, got, sentinel)
		}
		delete(want, name)
	}
	for name := range want {
		t.Errorf("status %q is mapped in Go but the engine has no such code", name)
	}
	if code < 16 {
		t.Errorf("only %d status codes named", code)
	}
}

// Go's State and Reason constants are the engine's names, in the engine's order.
func TestStateAndReasonConstantsMatchTheEngine(t *testing.T) {
	for i, s := range goStates {
		if got := stateName(uint32(i)); got != s {
			t.Errorf("hb_state_str(%d) = %q, Go has %q", i, got, s)
		}
	}
	if got := stateName(uint32(len(goStates))); got != StateUnknown {
		t.Errorf("the engine has a state %q that Go lacks", got)
	}
	for i, r := range goReasons {
		if got := reasonName(uint32(i)); got != r {
			t.Errorf("hb_reason_str(%d) = %q, Go has %q", i, got, r)
		}
	}
	if got := reasonName(uint32(len(goReasons))); got != "unknown" {
		t.Errorf("the engine has a reason %q that Go lacks", got)
	}
}

// Go's constants in the engine's order (hb_state / hb_reason values).
var goStates = []State{StateUnknown, StateAlive, StateSuspect, StateDead, StateLeft, StateHealthy,
	StateDegraded, StateLost, StateJoined, StateUpdated, StateExpired, StateReregistered, StateStopped,
	StateInvalid, StateElected, StateLeaderChanged}

var goReasons = []Reason{ReasonRegistered, ReasonRecovered, ReasonTimeout, ReasonLeft, ReasonRestarted,
	ReasonLeaseExpired, ReasonLeaseNotFound, ReasonLeaseDeadline, ReasonDeregistered, ReasonUpdated,
	ReasonAckTimeout, ReasonAcked, ReasonConnectFailed, ReasonKeepaliveFailed, ReasonRejected,
	ReasonFlapping, ReasonStopped, ReasonConflict, ReasonEvicted, ReasonLeaveFailed, ReasonKeyDeleted,
	ReasonMalformedValue, ReasonResigned}

package heartbeater

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The Election against a real etcd (tests/harness/etcd.py): the rules are hb-core's
// (hb-core/tests/etcd_election.rs); these check that Go converts them, errors included.

const electionWait = 15 * time.Second

func newCandidate(t *testing.T, etcd etcdServer, name, value string) *Election {
	t.Helper()
	e, err := NewElection("etcd://"+etcd.Endpoint+"/goelect", name, []byte(value), WithTTL(10*time.Second))
	if err != nil {
		t.Fatalf("NewElection(%q): %v", value, err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func campaignWithin(t *testing.T, e *Election, d time.Duration) (Token, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return e.Campaign(ctx)
}

func becomes(to State, epoch uint64) func(Event) bool {
	return func(ev Event) bool { return ev.To == to && ev.Epoch == epoch }
}

func TestElectionOneLeadsAndResignHandsOver(t *testing.T) {
	etcd := startEtcd(t)
	a, b := newCandidate(t, etcd, "db", "a"), newCandidate(t, etcd, "db", "b")
	aEvents, bEvents := a.Events(), b.Events()

	ta, err := campaignWithin(t, a, electionWait)
	if err != nil {
		t.Fatalf("a.Campaign: %v", err)
	}
	if ta.Revision <= 0 || ta.LeaseID == 0 {
		t.Fatalf("a's token %+v", ta)
	}
	if err := a.Check(); err != nil {
		t.Fatalf("a.Check while leading: %v", err)
	}
	if got, err := a.Token(); err != nil || got != ta {
		t.Fatalf("a.Token() = %+v, %v; want %+v", got, err, ta)
	}
	if r := a.Remaining(); r <= 0 || r > 10*time.Second {
		t.Fatalf("a.Remaining() = %s", r)
	}
	ev := waitEvent(t, aEvents, electionWait, "a elected", becomes(StateElected, uint64(ta.Revision)))
	if ev.Service != "db" || ev.Peer != fmt.Sprintf("%x", ta.LeaseID) {
		t.Fatalf("elected event %v: want service db, peer %x", ev, ta.LeaseID)
	}

	// b times out as a candidate (both kinds of timeout match), and stays one.
	_, err = campaignWithin(t, b, 300*time.Millisecond)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still a candidate") {
		t.Fatalf("b.Campaign(300ms) = %v; want ErrTimeout and DeadlineExceeded, still a candidate", err)
	}
	if err := b.Check(); !errors.Is(err, ErrNotHolder) || !strings.Contains(err.Error(), "not the leader of election db") {
		t.Fatalf("b.Check = %v; want ErrNotHolder", err)
	}
	if _, err := b.Token(); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("b.Token = %v; want ErrNotHolder", err)
	}
	if r := b.Remaining(); r != 0 {
		t.Fatalf("b.Remaining() = %s; want 0", r)
	}
	// b's watch observes a, value included.
	waitEvent(t, bEvents, electionWait, "b sees a lead", becomes(StateLeaderChanged, uint64(ta.Revision)))
	l, ok, err := b.Leader()
	if err != nil || !ok || l.Token != ta || string(l.Value) != "a" {
		t.Fatalf("b.Leader() = %+v (value %q), %v, %v; want a's token and value", l, l.Value, ok, err)
	}

	// a cancelled campaign is context.Canceled, not a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Campaign(ctx); !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("b.Campaign(cancelled) = %v; want context.Canceled", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel) // cancels a wait under way, not a sleep in the test
	if _, err := b.Campaign(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("b.Campaign(cancelled while waiting) = %v; want context.Canceled", err)
	}

	if err := a.Resign(context.Background()); err != nil {
		t.Fatalf("a.Resign: %v", err)
	}
	if err := a.Check(); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("a.Check after resign = %v; want ErrNotHolder", err)
	}
	lost := waitEvent(t, aEvents, electionWait, "a lost", becomes(StateLost, uint64(ta.Revision)))
	if lost.Reason != ReasonResigned {
		t.Fatalf("a's lost event %v: want reason resigned", lost)
	}
	tb, err := campaignWithin(t, b, electionWait)
	if err != nil {
		t.Fatalf("b.Campaign after a resigned: %v", err)
	}
	if tb.Revision <= ta.Revision {
		t.Fatalf("b's token %+v is not larger than a's %+v", tb, ta)
	}
	if err := b.Check(); err != nil {
		t.Fatalf("b.Check while leading: %v", err)
	}
	if err := a.Resign(context.Background()); err != nil {
		t.Fatalf("a second Resign: %v (idempotent)", err)
	}
}

func TestElectionStopHandsOverAndEndsTheHandle(t *testing.T) {
	etcd := startEtcd(t)
	a, b := newCandidate(t, etcd, "jobs", "a"), newCandidate(t, etcd, "jobs", "")
	bEvents := b.Events()
	ta, err := campaignWithin(t, a, electionWait)
	if err != nil {
		t.Fatalf("a.Campaign: %v", err)
	}
	// b waits for the lead in the background; a's Stop hands it over.
	won := make(chan error, 1)
	var tb Token
	go func() {
		var err error
		tb, err = campaignWithin(t, b, electionWait)
		won <- err
	}()
	waitEvent(t, bEvents, electionWait, "b sees a lead", becomes(StateLeaderChanged, uint64(ta.Revision)))
	aEvents := a.Events()
	if err := a.Stop(); err != nil {
		t.Fatalf("a.Stop: %v", err)
	}
	if err := <-won; err != nil {
		t.Fatalf("b.Campaign while a stopped: %v", err)
	}
	if tb.Revision <= ta.Revision {
		t.Fatalf("b's token %+v is not larger than a's %+v", tb, ta)
	}
	waitEvent(t, bEvents, electionWait, "b elected", becomes(StateElected, uint64(tb.Revision)))
	if l, ok, err := b.Leader(); err != nil || !ok || l.Token != tb || len(l.Value) != 0 || l.Value == nil {
		t.Fatalf("b.Leader() = %+v, %v, %v; want b's token and an empty value", l, ok, err)
	}

	// a's events end after the lost event (reason stopped).
	lost := waitEvent(t, aEvents, electionWait, "a lost", becomes(StateLost, uint64(ta.Revision)))
	if lost.Reason != ReasonStopped {
		t.Fatalf("a's lost event %v: want reason stopped", lost)
	}
	for ev := range aEvents {
		t.Fatalf("event after stop: %v", ev)
	}

	// The documented lifecycle after Stop.
	stopped := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrStopped) || !strings.Contains(err.Error(), "election is stopped") {
			t.Fatalf("%s after Stop = %v; want ErrStopped (election is stopped)", what, err)
		}
	}
	_, err = campaignWithin(t, a, time.Second)
	stopped("Campaign", err)
	_, err = a.Token()
	stopped("Token", err)
	_, _, err = a.Leader()
	stopped("Leader", err)
	stopped("Check", a.Check())
	if r := a.Remaining(); r != 0 {
		t.Fatalf("Remaining after Stop = %s", r)
	}
	if err := a.Resign(context.Background()); err != nil {
		t.Fatalf("Resign after Stop = %v; want nil", err)
	}
	if err := a.Stop(); err != nil {
		t.Fatalf("a second Stop = %v; want nil (idempotent)", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := a.Check(); !errors.Is(err, ErrStopped) || !strings.Contains(err.Error(), "election is closed") {
		t.Fatalf("Check after Close = %v; want ErrStopped (election is closed)", err)
	}
}

func TestElectionBadInputIsNamed(t *testing.T) {
	cases := []struct {
		endpoint, name, want string
	}{
		{"etcd://127.0.0.1:2379/p", "a/b", `name "a/b"`},
		{"etcd://127.0.0.1:2379/p", "", `name ""`},
		{"etcd://127.0.0.1:2379/p", "a\x00b", "NUL byte"},
		{"udp://127.0.0.1:7946", "db", "endpoint"},
	}
	for _, c := range cases {
		e, err := NewElection(c.endpoint, c.name, nil)
		if e != nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewElection(%q, %q) = %v, %v; want ErrConfig naming %s", c.endpoint, c.name, e, err, c.want)
		}
	}
}

func TestElectionUnreachableEtcdIsConnectError(t *testing.T) {
	e, err := NewElection("etcd://127.0.0.1:1/p", "db", nil, WithOption("connect_timeout", "300ms"))
	if err != nil {
		t.Fatalf("NewElection: %v", err)
	}
	defer e.Close()
	if _, err := campaignWithin(t, e, 10*time.Second); !errors.Is(err, ErrConnect) {
		t.Fatalf("Campaign against a closed port = %v; want ErrConnect", err)
	}
}

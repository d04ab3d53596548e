package heartbeater

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Fast beats so that detection happens in about a second.
func fastClient(addr, id string) *Client {
	return NewClient(
		WithEndpoint(addr),
		WithService("gotest"),
		WithInstanceID(id),
		WithTTL(time.Second),
		WithInterval(100*time.Millisecond, 100*time.Millisecond),
		WithLabels(map[string]string{"lang": "go"}),
	)
}

// A program may start its monitor and subscribe a moment later: the transitions in
// between wait in the channel instead of being lost.
func TestEventsBeforeFirstEventsCallAreKept(t *testing.T) {
	m, addr := startMonitor(t)
	c := fastClient(addr, "early")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for !peerIs(t, m, "early", StateAlive) {
		if time.Now().After(deadline) {
			t.Fatal("early client not alive in Peers() within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the event's hop to Go is asynchronous
	ev := waitEvent(t, m.Events(), 5*time.Second, "early alive, emitted before Events()", peerBecomes("early", StateAlive))
	if ev.Reason != ReasonRegistered {
		t.Errorf("reason = %q, want %q", ev.Reason, ReasonRegistered)
	}
	if s := m.Stats(); s.EventsDropped != 0 {
		t.Errorf("Stats() = %+v, want nothing dropped", s)
	}
}

func peerIs(t *testing.T, m *Monitor, id string, state State) bool {
	t.Helper()
	peers, err := m.Peers()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		if p.ID == id && p.State == state {
			return true
		}
	}
	return false
}

func TestMonitorSeesGoClientsAliveThenLeft(t *testing.T) {
	m, addr := startMonitor(t)
	events := m.Events()

	clients := map[string]*Client{"go-1": fastClient(addr, "go-1"), "go-2": fastClient(addr, "go-2")}
	for id, c := range clients {
		err := c.Start()
		if err != nil {
			t.Fatalf("client %s start: %v", id, err)
		}
		defer c.Stop()
	}
	// The two alive events come in either order: wait for both at once, so that waiting
	// for one never swallows the other.
	pending := map[string]bool{"go-1": true, "go-2": true}
	for len(pending) > 0 {
		ev := waitEvent(t, events, 5*time.Second, "go-1 and go-2 alive", func(ev Event) bool {
			return pending[ev.Peer] && ev.To == StateAlive
		})
		delete(pending, ev.Peer)
		if ev.Service != "gotest" || ev.Labels["lang"] != "go" {
			t.Errorf("alive event %+v: want service gotest and label lang=go", ev)
		}
	}

	peers, err := m.Peers()
	if err != nil {
		t.Fatal(err)
	}
	alive := 0
	for _, p := range peers {
		if p.State == StateAlive && p.Service == "gotest" {
			alive++
		}
	}
	if alive != 2 {
		t.Fatalf("Peers() = %+v, want 2 alive gotest peers", peers)
	}

	if err := clients["go-1"].Stop(); err != nil {
		t.Fatalf("client stop: %v", err)
	}
	ev := waitEvent(t, events, 5*time.Second, "go-1 left", peerBecomes("go-1", StateLeft))
	if ev.Reason != ReasonLeft {
		t.Errorf("left event reason = %q, want %q", ev.Reason, ReasonLeft)
	}

	if err := m.Stop(); err != nil {
		t.Fatalf("monitor stop: %v", err)
	}
	for range events { // drains, then must end: closed after Stop
	}
	if _, err := m.Peers(); !errors.Is(err, ErrStopped) {
		t.Fatalf("Peers after Stop = %v, want ErrStopped", err)
	}
}

func TestMonitorSeesCLIClientAndDeadOnSIGKILL(t *testing.T) {
	bin := heartbeaterBin(t)
	m, addr := startMonitor(t)
	events := m.Events()

	cmd := exec.Command(bin, "beat", "--endpoint", addr, "--service", "clitest", "--id", "cli-1",
		"--ttl", "1s", "--interval", "100ms")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s beat: %v", bin, err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	waitEvent(t, events, 10*time.Second, "cli-1 alive", peerBecomes("cli-1", StateAlive))
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, events, 10*time.Second, "cli-1 dead", peerBecomes("cli-1", StateDead))
	if ev.Reason != ReasonTimeout {
		t.Errorf("dead event reason = %q, want %q", ev.Reason, ReasonTimeout)
	}
}

// A Go client in another process (this test binary, re-executed) is seen alive, and
// SIGKILL gives dead: no goodbye was sent.
func TestMonitorSeesKilledGoClientProcessDead(t *testing.T) {
	m, addr := startMonitor(t)
	events := m.Events()

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperClientProcess$")
	cmd.Env = append(os.Environ(), "HB_HELPER_ENDPOINT="+addr, "HB_HELPER_ID=go-proc")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	waitEvent(t, events, 10*time.Second, "go-proc alive", peerBecomes("go-proc", StateAlive))
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, 10*time.Second, "go-proc dead", peerBecomes("go-proc", StateDead))
}

// TestHelperClientProcess is the child of the test above; it beats until killed.
func TestHelperClientProcess(t *testing.T) {
	addr := os.Getenv("HB_HELPER_ENDPOINT")
	if addr == "" {
		t.Skip("helper process only")
	}
	c := fastClient(addr, os.Getenv("HB_HELPER_ID"))
	if err := c.Start(); err != nil {
		t.Fatalf("helper client start: %v", err)
	}
	time.Sleep(time.Minute) // killed by the parent long before
}

func TestOnEventPanicIsRecoveredAndCounted(t *testing.T) {
	m, addr := startMonitor(t)
	got := make(chan Event, 16)
	m.OnEvent(func(ev Event) { panic("user bug in callback") })
	m.OnEvent(func(ev Event) { got <- ev }) // later callbacks still run

	c := fastClient(addr, "panicky")
	err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	waitEvent(t, got, 5*time.Second, "panicky alive", peerBecomes("panicky", StateAlive))
	if n := m.Stats().CallbackPanics; n < 1 {
		t.Fatalf("CallbackPanics = %d, want >= 1", n)
	}
}

func TestStopFromInsideCallbackDoesNotDeadlock(t *testing.T) {
	m, addr := startMonitor(t)
	stopped := make(chan error, 1)
	m.OnEvent(func(ev Event) {
		if ev.To == StateAlive {
			stopped <- m.Stop()
		}
	})
	c := fastClient(addr, "stopper")
	err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop from callback: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop from inside a callback did not return")
	}
	for range m.Events() { // closed once the callback returned and the pump ended
	}
}

package heartbeater

import (
	"context"
	"testing"
	"time"
)

// A Watcher on the etcd prefix sees a Go client join, then leave when it stops.
func TestWatcherSeesClientJoinAndLeave(t *testing.T) {
	etcd := startEtcd(t)
	endpoint := "etcd://" + etcd.Endpoint + "/services"
	w := NewWatcher(endpoint)
	err := w.Start()
	if err != nil {
		t.Fatalf("watcher start: %v", err)
	}
	defer w.Stop()
	events := w.Events()

	c := NewClient(WithEndpoint(endpoint), WithService("wtest"), WithInstanceID("w-1"),
		WithTTL(5*time.Second), WithLabels(map[string]string{"zone": "a"}))
	if err := c.Start(); err != nil {
		t.Fatalf("client start: %v", err)
	}
	defer c.Stop()
	ev := waitEvent(t, events, 10*time.Second, "w-1 joined", peerBecomes("w-1", StateJoined))
	if ev.Service != "wtest" || ev.Labels["zone"] != "a" || ev.Epoch == 0 {
		t.Errorf("joined event %+v: want service wtest, label zone=a, an epoch", ev)
	}
	peers, err := w.Peers()
	if err != nil || len(peers) != 1 || peers[0].ID != "w-1" {
		t.Fatalf("Peers = %+v, %v; want w-1", peers, err)
	}

	// Shutdown bounded by a context deadline, as from http.Server.RegisterOnShutdown.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	t0 := time.Now()
	if err := c.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(t0); d > 1500*time.Millisecond {
		t.Errorf("Shutdown took %s with a 1s deadline", d)
	}
	waitEvent(t, events, 10*time.Second, "w-1 gone", func(e Event) bool {
		return e.Peer == "w-1" && (e.To == StateLeft || e.To == StateExpired)
	})
}

// Shutdown with an already expired context still stops (with the shortest bound).
func TestShutdownWithExpiredContextStops(t *testing.T) {
	_, addr := startMonitor(t)
	c := fastClient(addr, "expired-ctx")
	err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	t0 := time.Now()
	_ = c.Shutdown(ctx) // may report ErrTimeout; it must stop either way
	if d := time.Since(t0); d > time.Second {
		t.Errorf("Shutdown with an expired context took %s", d)
	}
	if s := c.State(); s != StateStopped {
		t.Fatalf("State after Shutdown = %q", s)
	}
}

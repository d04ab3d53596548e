package heartbeater_test

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"heartbeater"
)

// The quick start, exactly as in the README (only the import path is ours).
func Example() {
	hb := heartbeater.NewClient(
		heartbeater.WithEndpoint("etcd://127.0.0.1:2379/services"),
		heartbeater.WithTTL(15*time.Second),
		heartbeater.WithLabels(map[string]string{"region": "cn-east-1", "env": "prod"}),
	)
	if err := hb.Start(); err != nil {
		log.Fatal("failed to start heartbeat:", err)
	}
	defer hb.Stop() // graceful: sends the offline signal
}

// Stopping the heartbeat as part of http.Server's graceful shutdown: the goodbye is
// bounded by the same deadline as the server's.
func ExampleClient_Shutdown() {
	hb := heartbeater.NewClient(heartbeater.WithEndpoint("etcd://127.0.0.1:2379/services"))
	if err := hb.Start(); err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: "127.0.0.1:8080"}
	srv.RegisterOnShutdown(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := hb.Shutdown(ctx); err != nil {
			log.Print("heartbeat shutdown:", err)
		}
	})
	go func() { _ = srv.ListenAndServe() }()
	// ... on SIGTERM:
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// Watching a monitor's events on the channel.
func ExampleMonitor() {
	m := heartbeater.NewMonitor(heartbeater.WithListen("udp://127.0.0.1:7946"))
	if err := m.Start(); err != nil {
		log.Fatal(err)
	}
	defer m.Stop()
	for ev := range m.Events() {
		log.Printf("%s/%s: %s -> %s (%s)", ev.Service, ev.Peer, ev.From, ev.To, ev.Reason)
	}
}

// The quick-start code path against a real etcd from the shared harness: the key is
// there after Start, and gone at once after Stop.
func TestQuickStartRegistersInEtcd(t *testing.T) {
	etcd := heartbeater.StartEtcd(t)
	hb := heartbeater.NewClient(
		heartbeater.WithEndpoint("etcd://"+etcd.Endpoint+"/services"),
		heartbeater.WithTTL(15*time.Second),
		heartbeater.WithLabels(map[string]string{"region": "cn-east-1", "env": "prod"}),
	)
	err := hb.Start()
	if err != nil {
		t.Fatal("failed to start heartbeat:", err)
	}
	defer hb.Stop()

	keys := heartbeater.EtcdKeys(t, etcd, "/services")
	suffix := "-" + strconv.Itoa(os.Getpid())
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "/services/") || !strings.HasSuffix(keys[0], suffix) {
		t.Fatalf("keys under /services = %q, want one /services/<service>/<host>%s", keys, suffix)
	}
	if tok, err := hb.FencingToken(); err != nil || tok.LeaseID == 0 {
		t.Errorf("FencingToken = %+v, %v; want a lease id", tok, err)
	}
	if err := hb.Check(); err != nil {
		t.Errorf("Check = %v", err)
	}
	if r := hb.Remaining(); r <= 0 || r > 15*time.Second {
		t.Errorf("Remaining = %s, want in (0, 15s]", r)
	}

	if err := hb.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if keys := heartbeater.EtcdKeys(t, etcd, "/services"); len(keys) != 0 {
		t.Fatalf("keys still there right after Stop: %q", keys)
	}
	if err := hb.Check(); !errors.Is(err, heartbeater.ErrStopped) {
		t.Fatalf("Check after Stop = %v, want ErrStopped", err)
	}
}

func TestStartWithUnreachableEtcdIsErrConnect(t *testing.T) {
	port := heartbeater.FreeTCPPort(t) // nothing listens there
	hb := heartbeater.NewClient(
		heartbeater.WithEndpoint("etcd://127.0.0.1:"+strconv.Itoa(port)+"/services"),
		heartbeater.WithOption("connect_timeout", "1s"),
	)
	defer hb.Stop()
	err := hb.Start()
	if !errors.Is(err, heartbeater.ErrConnect) {
		t.Fatalf("Start = %v, want ErrConnect", err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Errorf("error %q does not name the address", err)
	}
}

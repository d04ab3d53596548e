package heartbeater

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitEvent reads ch until an event satisfies match, or fails the test at the deadline.
func waitEvent(t testing.TB, ch <-chan Event, timeout time.Duration, what string, match func(Event) bool) Event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var seen []string
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event channel closed while waiting for %s; saw %v", what, seen)
			}
			if match(ev) {
				return ev
			}
			seen = append(seen, ev.String())
		case <-deadline.C:
			t.Fatalf("no %s within %s; saw %v", what, timeout, seen)
		}
	}
}

func peerBecomes(peer string, to State) func(Event) bool {
	return func(ev Event) bool { return ev.Peer == peer && ev.To == to }
}

// requireOrSkip skips a test whose prerequisite (etcd, the CLI) is missing on a developer's
// partial machine, but fails it when HEARTBEATER_REQUIRE_ALL=1 (scripts/test-all sets it):
// there everything is installed and built, so a skip would hide an untested feature.
func requireOrSkip(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("HEARTBEATER_REQUIRE_ALL") == "1" {
		t.Fatalf("%s (a failure, not a skip, because HEARTBEATER_REQUIRE_ALL=1)", why)
	}
	t.Skip(why)
}

// startMonitor starts a UDP monitor on a free loopback port and returns it with its address.
func startMonitor(t testing.TB, opts ...Option) (*Monitor, string) {
	t.Helper()
	m := NewMonitor(append([]Option{WithListen("udp://127.0.0.1:0")}, opts...)...)
	err := m.Start()
	if err != nil {
		t.Fatalf("monitor start: %v", err)
	}
	t.Cleanup(func() { _ = m.Stop() })
	addrs, err := m.LocalAddrs()
	if err != nil || len(addrs) != 1 {
		t.Fatalf("LocalAddrs = %v, %v", addrs, err)
	}
	return m, addrs[0]
}

// repoRoot is the checkout root (bindings-go's parent).
func repoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// heartbeaterBin finds the CLI: $HEARTBEATER_BIN, else ../target/{debug,release}/heartbeater.
func heartbeaterBin(t testing.TB) string {
	t.Helper()
	candidates := []string{os.Getenv("HEARTBEATER_BIN")}
	root := repoRoot(t)
	for _, dir := range []string{"debug", "release"} {
		candidates = append(candidates, filepath.Join(root, "target", dir, "heartbeater"))
	}
	for _, p := range candidates {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			continue
		}
		// A CLI without the `beat` command (an old build) cannot take part.
		if out, err := exec.Command(p, "beat", "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "--endpoint") {
			t.Logf("%s has no working `beat` command (%v)", p, err)
			continue
		}
		return p
	}
	requireOrSkip(t, "heartbeater CLI with `beat` not built: set HEARTBEATER_BIN or run `cargo build -p hb-cli` (make test does)")
	return ""
}

type etcdServer struct {
	PID      int    `json:"pid"`
	Endpoint string `json:"endpoint"` // host:port
	DataDir  string `json:"data_dir"`
}

// startEtcd runs the shared harness (tests/harness/etcd.py) and stops etcd at cleanup.
func startEtcd(t testing.TB) etcdServer {
	t.Helper()
	harness := filepath.Join(repoRoot(t), "tests", "harness", "etcd.py")
	for _, bin := range []string{"etcd", "etcdctl", "python3"} {
		if _, err := exec.LookPath(bin); err != nil {
			requireOrSkip(t, bin+" not installed (apt-get install etcd-server etcd-client)")
		}
	}
	out, err := exec.Command("python3", harness, "start", "--data-dir", t.TempDir()).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("etcd harness start: %v\n%s", err, stderr)
	}
	var e etcdServer
	line := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if err := json.Unmarshal([]byte(line), &e); err != nil || e.PID == 0 || e.Endpoint == "" {
		t.Fatalf("etcd harness printed %q: %v", out, err)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("python3", harness, "stop", itoa(e.PID)).CombinedOutput(); err != nil {
			t.Errorf("etcd harness stop: %v\n%s", err, out)
		}
	})
	return e
}

// etcdKeys lists the keys under prefix with etcdctl.
func etcdKeys(t testing.TB, e etcdServer, prefix string) []string {
	t.Helper()
	cmd := exec.Command("etcdctl", "--endpoints", e.Endpoint, "get", "--prefix", "--keys-only", prefix)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("etcdctl get: %v\n%s", err, out)
	}
	var keys []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

func itoa(n int) string { return strconv.Itoa(n) }

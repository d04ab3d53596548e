package heartbeater_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"heartbeater"
)

// buildExample compiles ./examples/<name> into a temp dir.
func buildExample(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "./examples/"+name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/%s: %v\n%s", name, err, out)
	}
	return bin
}

// lines delivers a reader's lines on a channel (closed at EOF).
func lines(r io.Reader) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

func waitLine(t *testing.T, ch <-chan string, timeout time.Duration, what string, match func(string) bool) string {
	t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("program output ended before %s; saw %q", what, seen)
			}
			if match(l) {
				return l
			}
			seen = append(seen, l)
		case <-deadline:
			t.Fatalf("no %s within %s; saw %q", what, timeout, seen)
		}
	}
}

// Acceptance 2: the quick-start program registers in a real etcd; SIGTERM runs its
// `defer hb.Stop()` and the key is gone at once.
func TestQuickstartProgramRegistersAndDeregistersOnSIGTERM(t *testing.T) {
	etcd := heartbeater.StartEtcd(t)
	bin := buildExample(t, "quickstart")
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "HEARTBEATER_ENDPOINT=etcd://"+etcd.Endpoint+"/services")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	out := lines(stdout)
	deadline := time.After(15 * time.Second)
	select {
	case l, ok := <-out:
		if !ok || !strings.HasPrefix(l, "registered") {
			_ = cmd.Wait()
			t.Fatalf("quickstart printed %q; stderr: %s", l, stderr.String())
		}
	case <-deadline:
		t.Fatalf("quickstart did not register within 15s; stderr: %s", stderr.String())
	}

	keys := heartbeater.EtcdKeys(t, etcd, "/services")
	want := "/services/quickstart/"
	suffix := "-" + strconv.Itoa(cmd.Process.Pid)
	if len(keys) != 1 || !strings.HasPrefix(keys[0], want) || !strings.HasSuffix(keys[0], suffix) {
		t.Fatalf("keys = %q, want one %s<host>%s", keys, want, suffix)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLine(t, out, 10*time.Second, "deregistering line", func(l string) bool { return l == "deregistering" })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("quickstart exit: %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("quickstart did not exit within 10s of SIGTERM")
	}
	if keys := heartbeater.EtcdKeys(t, etcd, "/services"); len(keys) != 0 {
		t.Fatalf("keys still there right after the program stopped: %q", keys)
	}
}

// Acceptance 3: the monitor example sees a Go client and a CLI client; SIGKILL on the
// CLI client prints its dead transition.
func TestMonitorProgramSeesGoAndCLIClients(t *testing.T) {
	cli := heartbeater.HeartbeaterBin(t)
	bin := buildExample(t, "monitor")
	mon := exec.Command(bin, "-listen", "udp://127.0.0.1:0")
	stdout, err := mon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	mon.Stderr = os.Stderr
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mon.Process.Kill(); _ = mon.Wait() }()
	out := lines(stdout)
	first := waitLine(t, out, 10*time.Second, "listening line", func(l string) bool { return strings.HasPrefix(l, "listening on ") })
	addr := strings.TrimPrefix(first, "listening on ")

	goClient := heartbeater.NewClient(heartbeater.WithEndpoint(addr), heartbeater.WithService("ex"),
		heartbeater.WithInstanceID("go-ex"), heartbeater.WithTTL(time.Second),
		heartbeater.WithInterval(100*time.Millisecond, 100*time.Millisecond))
	if err := goClient.Start(); err != nil {
		t.Fatal(err)
	}
	defer goClient.Stop()

	beat := exec.Command(cli, "beat", "--endpoint", addr, "--service", "ex", "--id", "cli-ex", "--ttl", "1s", "--interval", "100ms")
	beat.Stderr = os.Stderr
	if err := beat.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = beat.Process.Kill(); _ = beat.Wait() }()

	seen := map[string]bool{}
	waitLine(t, out, 10*time.Second, "both clients alive", func(l string) bool {
		for _, id := range []string{"go-ex", "cli-ex"} {
			if strings.Contains(l, "ex/"+id+" ") && strings.Contains(l, "-> alive") {
				seen[id] = true
			}
		}
		return seen["go-ex"] && seen["cli-ex"]
	})
	if err := beat.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitLine(t, out, 10*time.Second, "cli-ex dead", func(l string) bool {
		return strings.Contains(l, "ex/cli-ex ") && strings.Contains(l, "-> dead")
	})
}

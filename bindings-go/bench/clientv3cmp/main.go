// Command clientv3cmp holds N etcd registrations in one Go process, once with the
// heartbeater Go package and once with etcd's clientv3 (N concurrency.Session on one
// Client, each with a key put under its lease), against the same etcd that it starts
// itself, and prints what each costs side by side.
//
//	go run . [-n 1000] [-ttl 10s] [-hold 60s] [-etcd /usr/bin/etcd] [-ip 127.0.0.23]
//
// Each side runs in its own child process (this program with -child), so its RSS, CPU and
// threads are its own. etcd listens on a loopback address of its own (-ip), so the TCP
// sockets to it are the child's alone; segments are counted with `ss -ti` (segs_out and
// segs_in of every socket to etcd's client port, summed over the hold). etcd's CPU comes
// from /proc/<pid>/stat, keepalives at etcd from the delta of its
// etcd_debugging_lease_renewed_total (scraped on a separate metrics port, so the scrape is
// not counted as client traffic). Not a test: run it by hand (make -C bindings-go bench-etcd).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"heartbeater"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

var (
	n        = flag.Int("n", 1000, "registrations per side")
	ttl      = flag.Duration("ttl", 10*time.Second, "lease TTL (whole seconds)")
	hold     = flag.Duration("hold", 60*time.Second, "how long the registrations are held and measured")
	warmup   = flag.Duration("warmup", 0, "wait after start-up before measuring (default TTL/3 + 1s)")
	parallel = flag.Int("parallel", 32, "registrations started (and stopped) at once")
	etcdBin  = flag.String("etcd", "/usr/bin/etcd", "etcd binary to start")
	ip       = flag.String("ip", "127.0.0.23", "loopback address etcd listens on (its own, so its sockets are countable)")
	only     = flag.String("only", "", "run one side only: heartbeater or clientv3")
	jsonOut  = flag.String("json", "", "also write the rows as JSON to this file")
	child    = flag.String("child", "", "internal: run one side (heartbeater|clientv3) against -endpoint")
	endpoint = flag.String("endpoint", "", "internal: etcd host:port for -child")
)

func main() {
	flag.Parse()
	if *child != "" {
		if err := runChild(*child, *endpoint); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		return
	}
	if err := runParent(); err != nil {
		fmt.Fprintln(os.Stderr, "clientv3cmp:", err)
		os.Exit(1)
	}
}

// ---- the children -------------------------------------------------------------------

// runChild registers N times, prints "ready <start-up ms>", holds until stdin closes or
// says stop, then stops every registration and prints "stopped".
func runChild(side, ep string) error {
	var stop func()
	var err error
	t0 := time.Now()
	switch side {
	case "heartbeater":
		stop, err = startHeartbeater(ep)
	case "clientv3":
		stop, err = startClientv3(ep)
	default:
		return fmt.Errorf("-child %q: expected heartbeater or clientv3", side)
	}
	if err != nil {
		return err
	}
	fmt.Printf("ready %.1f\n", float64(time.Since(t0).Microseconds())/1000)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() && strings.TrimSpace(in.Text()) != "stop" {
	}
	stop()
	fmt.Println("stopped")
	return nil
}

// forAll runs f(0..n-1), at most -parallel at a time, and returns the first error.
func forAll(f func(i int) error) error {
	sem := make(chan struct{}, *parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := 0; i < *n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			if err := f(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	return first
}

func startHeartbeater(ep string) (func(), error) {
	clients := make([]*heartbeater.Client, *n)
	err := forAll(func(i int) error {
		c := heartbeater.NewClient(
			heartbeater.WithEndpoint("etcd://"+ep+"/bench"),
			heartbeater.WithService("hb"),
			heartbeater.WithInstanceID(fmt.Sprintf("hb-%d", i)),
			heartbeater.WithTTL(*ttl),
		)
		clients[i] = c
		return c.Start()
	})
	stop := func() {
		_ = forAll(func(i int) error { return clients[i].Close() })
	}
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

func startClientv3(ep string) (func(), error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + ep}, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	sessions := make([]*concurrency.Session, *n)
	err = forAll(func(i int) error {
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(int(ttl.Seconds())))
		if err != nil {
			return err
		}
		sessions[i] = s
		// The same work as a heartbeater registration: a key under the lease.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = cli.Put(ctx, fmt.Sprintf("/bench/v3/v3-%d", i), `{"state":"up"}`, clientv3.WithLease(s.Lease()))
		return err
	})
	stop := func() {
		_ = forAll(func(i int) error {
			if sessions[i] != nil {
				return sessions[i].Close()
			}
			return nil
		})
		cli.Close()
	}
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// ---- the parent: etcd, the children, the measurements -------------------------------

type row struct {
	Side              string  `json:"side"`
	StartupMs         float64 `json:"startup_ms"`
	RSSMiB            float64 `json:"client_rss_mib"`
	ClientCPUPct      float64 `json:"client_cpu_pct"`
	EtcdCPUPct        float64 `json:"etcd_cpu_pct"`
	Threads           int     `json:"client_threads"`
	SegsOutPerSec     float64 `json:"tcp_segs_to_etcd_per_s"`
	SegsInPerSec      float64 `json:"tcp_segs_from_etcd_per_s"`
	DataSegsOutPerSec float64 `json:"tcp_data_segs_to_etcd_per_s"`
	RenewedPerSec     float64 `json:"keepalives_at_etcd_per_s"`
	BoundPerSec       float64 `json:"keepalive_bound_per_s"`
	HeldSeconds       float64 `json:"held_s"`
	Registrations     int     `json:"n"`
	TTLSeconds        float64 `json:"ttl_s"`
	EtcdSocketsMax    int     `json:"sockets_to_etcd"`
}

type etcdProc struct {
	cmd        *exec.Cmd
	clientAddr string // host:port
	metricsURL string
	dir        string
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startEtcd() (*etcdProc, error) {
	dir, err := os.MkdirTemp("", "clientv3cmp-etcd-")
	if err != nil {
		return nil, err
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(*ip); err != nil {
			return nil, fmt.Errorf("a free port on %s (is it a loopback address?): %w", *ip, err)
		}
	}
	url := func(p int) string { return fmt.Sprintf("http://%s:%d", *ip, p) }
	e := &etcdProc{clientAddr: fmt.Sprintf("%s:%d", *ip, ports[0]), metricsURL: url(ports[2]) + "/metrics", dir: dir}
	e.cmd = exec.Command(*etcdBin,
		"--name", "bench", "--data-dir", dir+"/data",
		"--listen-client-urls", url(ports[0]), "--advertise-client-urls", url(ports[0]),
		"--listen-peer-urls", url(ports[1]), "--initial-advertise-peer-urls", url(ports[1]),
		"--initial-cluster", "bench="+url(ports[1]),
		"--listen-metrics-urls", url(ports[2]),
	)
	logf, err := os.Create(dir + "/etcd.log")
	if err != nil {
		return nil, err
	}
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", *etcdBin, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url(ports[2]) + "/health"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), `"true"`) {
				return e, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.stop()
	return nil, fmt.Errorf("etcd did not become healthy in 20 s (log: %s/etcd.log)", dir)
}

func (e *etcdProc) stop() {
	_ = e.cmd.Process.Kill()
	_, _ = e.cmd.Process.Wait()
	_ = os.RemoveAll(e.dir)
}

func (e *etcdProc) renewed() (float64, error) {
	resp, err := http.Get(e.metricsURL)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "etcd_debugging_lease_renewed_total" {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("no etcd_debugging_lease_renewed_total at %s", e.metricsURL)
}

var clkTck = func() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if v, e := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && e == nil && v > 0 {
		return v
	}
	return 100
}()

// cpuSeconds is utime + stime of pid (all its threads).
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clkTck, nil
}

// status reads VmRSS (KiB) and Threads of pid.
func status(pid int) (rssKiB, threads int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "VmRSS:" {
			rssKiB, _ = strconv.Atoi(f[1])
		}
		if len(f) >= 2 && f[0] == "Threads:" {
			threads, _ = strconv.Atoi(f[1])
		}
	}
	return rssKiB, threads, nil
}

var (
	ssSocket = regexp.MustCompile(`^\d+\s+\d+\s+(\S+)\s+(\S+)`)
	ssSegs   = regexp.MustCompile(`\bsegs_out:(\d+)\b.*\bsegs_in:(\d+)\b`)
	ssData   = regexp.MustCompile(`\bdata_segs_out:(\d+)\b`)
)

type segs struct{ out, in, dataOut float64 }

// sockets maps each established TCP socket to etcd's client address (by its local
// address) to its segment counters, from `ss -tin`.
func sockets(etcdAddr string) (map[string]segs, error) {
	out, err := exec.Command("ss", "-tinH", "state", "established", "dst", etcdAddr).Output()
	if err != nil {
		return nil, fmt.Errorf("ss -tin: %w", err)
	}
	res := map[string]segs{}
	local := ""
	for _, line := range strings.Split(string(out), "\n") {
		if m := ssSocket.FindStringSubmatch(line); m != nil && !strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, " ") {
			local = m[1]
			continue
		}
		if m := ssSegs.FindStringSubmatch(line); m != nil && local != "" {
			o, _ := strconv.ParseFloat(m[1], 64)
			i, _ := strconv.ParseFloat(m[2], 64)
			var d float64
			if dm := ssData.FindStringSubmatch(line); dm != nil {
				d, _ = strconv.ParseFloat(dm[1], 64)
			}
			res[local] = segs{o, i, d}
			local = ""
		}
	}
	return res, nil
}

func measure(e *etcdProc, side string) (row, error) {
	r := row{Side: side, Registrations: *n, TTLSeconds: ttl.Seconds()}
	cmd := exec.Command(os.Args[0], "-child", side, "-endpoint", e.clientAddr,
		"-n", strconv.Itoa(*n), "-ttl", ttl.String(), "-parallel", strconv.Itoa(*parallel))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "ready ") {
		return r, fmt.Errorf("%s: did not start (%q)", side, lines.Text())
	}
	r.StartupMs, _ = strconv.ParseFloat(strings.TrimPrefix(lines.Text(), "ready "), 64)
	w := *warmup
	if w == 0 {
		w = *ttl/3 + time.Second
	}
	time.Sleep(w)

	pid := cmd.Process.Pid
	type sample struct {
		at           time.Time
		client, etcd float64
		renewed      float64
		socks        map[string]segs
	}
	take := func() (s sample, err error) {
		s.at = time.Now()
		if s.client, err = cpuSeconds(pid); err != nil {
			return
		}
		if s.etcd, err = cpuSeconds(e.cmd.Process.Pid); err != nil {
			return
		}
		if s.renewed, err = e.renewed(); err != nil {
			return
		}
		s.socks, err = sockets(e.clientAddr)
		return
	}
	s0, err := take()
	if err != nil {
		return r, err
	}
	time.Sleep(*hold)
	s1, err := take()
	if err != nil {
		return r, err
	}
	dt := s1.at.Sub(s0.at).Seconds()
	r.HeldSeconds = dt
	r.ClientCPUPct = 100 * (s1.client - s0.client) / dt
	r.EtcdCPUPct = 100 * (s1.etcd - s0.etcd) / dt
	r.RenewedPerSec = (s1.renewed - s0.renewed) / dt
	r.BoundPerSec = float64(*n) / (ttl.Seconds() / 3)
	var out, in, data float64
	for local, c := range s1.socks {
		b := s0.socks[local] // zero for a socket opened during the hold
		out += c.out - b.out
		in += c.in - b.in
		data += c.dataOut - b.dataOut
	}
	r.SegsOutPerSec, r.SegsInPerSec, r.DataSegsOutPerSec = out/dt, in/dt, data/dt
	r.EtcdSocketsMax = max(len(s0.socks), len(s1.socks))
	rss, threads, err := status(pid)
	if err != nil {
		return r, err
	}
	r.RSSMiB, r.Threads = float64(rss)/1024, threads

	fmt.Fprintln(stdin, "stop")
	done := make(chan struct{})
	go func() {
		for lines.Scan() {
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		return r, fmt.Errorf("%s: did not stop within 60 s", side)
	}
	return r, cmd.Wait()
}

func runParent() error {
	if *ttl < 2*time.Second || *ttl != ttl.Truncate(time.Second) {
		return fmt.Errorf("-ttl %s: expected whole seconds, at least 2s (etcd counts whole seconds)", *ttl)
	}
	sides := []string{"heartbeater", "clientv3"}
	if *only != "" {
		if *only != "heartbeater" && *only != "clientv3" {
			return fmt.Errorf("-only %q: expected heartbeater or clientv3", *only)
		}
		sides = []string{*only}
	}
	e, err := startEtcd()
	if err != nil {
		return err
	}
	defer e.stop()
	fmt.Printf("etcd %s at %s; N=%d TTL=%s held %s, started %d at a time\n",
		*etcdBin, e.clientAddr, *n, *ttl, *hold, *parallel)
	var rows []row
	for _, side := range sides {
		r, err := measure(e, side)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	printRows(rows)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(rows, "", "  ")
		return os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
	}
	return nil
}

func printRows(rows []row) {
	fmt.Printf("%-44s", "")
	for _, r := range rows {
		fmt.Printf("%14s", r.Side)
	}
	fmt.Println()
	line := func(name string, f func(r row) string) {
		fmt.Printf("%-44s", name)
		for _, r := range rows {
			fmt.Printf("%14s", f(r))
		}
		fmt.Println()
	}
	line("client RSS (MiB)", func(r row) string { return fmt.Sprintf("%.1f", r.RSSMiB) })
	line("client CPU (%)", func(r row) string { return fmt.Sprintf("%.2f", r.ClientCPUPct) })
	line("etcd CPU (%)", func(r row) string { return fmt.Sprintf("%.2f", r.EtcdCPUPct) })
	line("client OS threads", func(r row) string { return strconv.Itoa(r.Threads) })
	line("TCP sockets to etcd", func(r row) string { return strconv.Itoa(r.EtcdSocketsMax) })
	line("TCP segments to etcd (/s)", func(r row) string { return fmt.Sprintf("%.1f", r.SegsOutPerSec) })
	line("  of which carry data (/s)", func(r row) string { return fmt.Sprintf("%.1f", r.DataSegsOutPerSec) })
	line("TCP segments from etcd (/s)", func(r row) string { return fmt.Sprintf("%.1f", r.SegsInPerSec) })
	line(fmt.Sprintf("keepalives at etcd (/s; N/(TTL/3) = %.1f)", rows[0].BoundPerSec), func(r row) string {
		return fmt.Sprintf("%.1f", r.RenewedPerSec)
	})
	line(fmt.Sprintf("start-up of %d (ms)", rows[0].Registrations), func(r row) string { return fmt.Sprintf("%.0f", r.StartupMs) })
}

package heartbeater

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

const cycles = 1000

// 1000 client start/stop cycles against one monitor: no goroutine of ours is left
// (goleak) and RSS stays flat.
func TestNoLeakAcross1000StartStopCycles(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	m, addr := startMonitor(t)

	cycle := func(i int) {
		c := NewClient(WithEndpoint(addr), WithService("leak"), WithInstanceID("leak-"+strconv.Itoa(i%10)),
			WithTTL(time.Second), WithInterval(100*time.Millisecond, 100*time.Millisecond))
		c.OnEvent(func(Event) {})
		_ = c.Events()
		err := c.Start()
		if err != nil {
			t.Fatalf("cycle %d start: %v", i, err)
		}
		if err := c.Stop(); err != nil {
			t.Fatalf("cycle %d stop: %v", i, err)
		}
	}
	for i := 0; i < 50; i++ { // warm up: runtime threads, allocator arenas, metrics
		cycle(i)
	}
	// RSS at the start, the middle and the end: a leak grows both halves alike, while
	// allocator warm-up (and the race detector's shadow memory) flattens out.
	rss := []int{rssKiB(t)}
	goroutinesBefore := runtime.NumGoroutine()
	start := time.Now()
	for i := 0; i < cycles; i++ {
		cycle(i)
		if i == cycles/2-1 || i == cycles-1 {
			rss = append(rss, rssKiB(t))
		}
	}
	elapsed := time.Since(start)
	goroutinesAfter := runtime.NumGoroutine()
	t.Logf("%d start/stop cycles in %s (%.0f µs/cycle); RSS KiB start %d, half %d (%+d), end %d (%+d); goroutines %d -> %d",
		cycles, elapsed.Round(time.Millisecond), float64(elapsed.Microseconds())/cycles,
		rss[0], rss[1], rss[1]-rss[0], rss[2], rss[2]-rss[1], goroutinesBefore, goroutinesAfter)
	if goroutinesAfter > goroutinesBefore {
		t.Errorf("goroutines grew from %d to %d", goroutinesBefore, goroutinesAfter)
	}
	// A 4 KiB leak per cycle would add 2 MiB in the second half alone.
	if raceEnabled {
		t.Log("RSS not checked under -race (shadow memory grows by design); the cgocheck2 run checks it")
	} else if growth := rss[2] - rss[1]; growth > 2*1024 {
		t.Errorf("RSS grew by %d KiB over the last %d cycles", growth, cycles/2)
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
}

// rssKiB is VmRSS after a GC that returns freed memory to the OS.
func rssKiB(t testing.TB) int {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		requireOrSkip(t, "no /proc/self/status: "+err.Error())
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	requireOrSkip(t, "VmRSS not found in /proc/self/status")
	return 0
}

func TestMain(m *testing.M) {
	// Our own goroutines are checked per test with goleak; TestMain only makes sure no
	// test left one behind at the very end.
	goleak.VerifyTestMain(m)
}

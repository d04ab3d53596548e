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
	// RSS at the start and after each quarter. A leak grows every quarter alike; allocator
	// warm-up, the race detector's shadow memory or a malloc arena that a new engine thread
	// happens to open (a one-off step of several MiB, seen once in CI) grows one at most.
	const quarters = 4
	rss := []int{rssKiB(t)}
	goroutinesBefore := runtime.NumGoroutine()
	start := time.Now()
	for i := 0; i < cycles; i++ {
		cycle(i)
		if (i+1)%(cycles/quarters) == 0 {
			rss = append(rss, rssKiB(t))
		}
	}
	elapsed := time.Since(start)
	goroutinesAfter := runtime.NumGoroutine()
	growth := make([]int, quarters)
	grown := 0 // quarters that grew by more than a 4 KiB-per-cycle leak would add
	for q := range growth {
		growth[q] = rss[q+1] - rss[q]
		if growth[q] > 4*cycles/quarters {
			grown++
		}
	}
	t.Logf("%d start/stop cycles in %s (%.0f µs/cycle); RSS KiB %v, growth per %d cycles %v; goroutines %d -> %d",
		cycles, elapsed.Round(time.Millisecond), float64(elapsed.Microseconds())/cycles,
		rss, cycles/quarters, growth, goroutinesBefore, goroutinesAfter)
	if goroutinesAfter > goroutinesBefore {
		t.Errorf("goroutines grew from %d to %d", goroutinesBefore, goroutinesAfter)
	}
	if raceEnabled {
		t.Log("RSS not checked under -race (shadow memory grows by design); the cgocheck2 run checks it")
	} else if grown > 1 {
		t.Errorf("RSS grew by more than %d KiB in %d of %d quarters: %v KiB", 4*cycles/quarters, grown, quarters, growth)
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
}

// rssKiB is VmRSS after the garbage is collected and returned to the OS. A Client that
// became garbage since the last GC has a finalizer: the GC that finds it only queues that,
// and what the Client holds (its 1024-event channel) is freed by a later GC; so the GCs
// go on until a finalizer queued by the last of them has run.
func rssKiB(t testing.TB) int {
	t.Helper()
	for range 2 {
		ran := make(chan struct{})
		sentinel := new([16]byte)
		runtime.SetFinalizer(sentinel, func(*[16]byte) { close(ran) })
		sentinel = nil
		runtime.GC()
		select {
		case <-ran:
		case <-time.After(10 * time.Second):
			t.Fatal("the finalizer goroutine did not run within 10 s")
		}
	}
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

package heartbeater

import (
	"sort"
	"strconv"
	"testing"
	"time"
)

// Start+Stop of one client beating to a monitor (config, handle, callback registration,
// first beat, LEAVE, pump goroutine exit).
func BenchmarkClientStartStop(b *testing.B) {
	_, addr := startMonitor(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := NewClient(WithEndpoint(addr), WithService("bench"), WithInstanceID("b-"+strconv.Itoa(i%64)),
			WithTTL(time.Second), WithInterval(100*time.Millisecond, 100*time.Millisecond))
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		if err := c.Stop(); err != nil {
			b.Fatal(err)
		}
	}
}

// Start+Stop of a monitor on a fresh UDP port.
func BenchmarkMonitorStartStop(b *testing.B) {
	for i := 0; i < b.N; i++ {
		m := NewMonitor(WithListen("udp://127.0.0.1:0"))
		if err := m.Start(); err != nil {
			b.Fatal(err)
		}
		if err := m.Stop(); err != nil {
			b.Fatal(err)
		}
	}
}

// Latency of a transition from the engine to a Go channel, end to end on loopback:
// client Start -> first beat -> monitor's alive event received from Events(), and
// client Stop -> LEAVE -> left event received. Reported as percentiles in µs.
func BenchmarkEventLatency(b *testing.B) {
	m, addr := startMonitor(b)
	events := m.Events()
	var alive, left []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := "lat-" + strconv.Itoa(i)
		c := NewClient(WithEndpoint(addr), WithService("bench"), WithInstanceID(id),
			WithTTL(time.Second), WithInterval(100*time.Millisecond, 100*time.Millisecond))
		t0 := time.Now()
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		waitEvent(b, events, 5*time.Second, id+" alive", peerBecomes(id, StateAlive))
		alive = append(alive, time.Since(t0))
		t1 := time.Now()
		if err := c.Stop(); err != nil {
			b.Fatal(err)
		}
		waitEvent(b, events, 5*time.Second, id+" left", peerBecomes(id, StateLeft))
		left = append(left, time.Since(t1))
	}
	b.StopTimer()
	reportPercentiles(b, "alive", alive)
	reportPercentiles(b, "left", left)
}

// The Go-side hop alone: pump (as the trampoline calls it) -> fanout -> Events() channel.
func BenchmarkHandoffToChannel(b *testing.B) {
	f := newFanout(newSettings(nil))
	out := f.events()
	p := newPump(f)
	ev := Event{Peer: "p", Service: "s", From: StateUnknown, To: StateAlive, Reason: ReasonRegistered}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		p.offer(ev)
		<-out
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	p.closeIn()
	<-p.done
	reportPercentiles(b, "handoff", lat)
}

func reportPercentiles(b *testing.B, name string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(at(0.5), name+"-p50-µs")
	b.ReportMetric(at(0.99), name+"-p99-µs")
}

package promhb

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const sample = `# HELP heartbeater_beats_sent_total Beats sent by clients
# TYPE heartbeater_beats_sent_total counter
heartbeater_beats_sent_total 42
# HELP heartbeater_peers Peers tracked by monitors, by state
# TYPE heartbeater_peers gauge
heartbeater_peers{state="alive"} 3
heartbeater_peers{state="dead"} 1
# HELP heartbeater_rtt_seconds Round-trip time
# TYPE heartbeater_rtt_seconds histogram
heartbeater_rtt_seconds_bucket{le="0.001"} 5
heartbeater_rtt_seconds_bucket{le="0.01"} 7
heartbeater_rtt_seconds_bucket{le="+Inf"} 8
heartbeater_rtt_seconds_sum 0.05
heartbeater_rtt_seconds_count 8
`

func TestCollectorReemitsEngineSamples(t *testing.T) {
	c := &Collector{text: func() (string, error) { return sample, nil }}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(sample)); err != nil {
		t.Fatal(err)
	}
}

func TestCollectorOnTheRealEngine(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range families {
		if !strings.HasPrefix(mf.GetName(), "heartbeater_") {
			t.Errorf("unexpected family %s", mf.GetName())
		}
		if mf.GetName() == "heartbeater_clients" {
			found = true
		}
	}
	if !found {
		t.Fatalf("heartbeater_clients not among %d gathered families", len(families))
	}
}

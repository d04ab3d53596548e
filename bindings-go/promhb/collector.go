// Package promhb adds heartbeater's engine metrics to a client_golang registry:
//
//	prometheus.MustRegister(promhb.NewCollector())
//
// The engine keeps its own Prometheus registry (in Rust). On every scrape the collector
// reads the engine's text exposition, parses it with expfmt and re-emits each sample as a
// const metric, so names, labels, help and types are the engine's own.
package promhb

import (
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"heartbeater"
)

// Collector is a prometheus.Collector over heartbeater.MetricsText.
//
// It is an "unchecked" collector (Describe sends nothing): the engine's families appear
// as they get their first sample (per-reason counters, per-state gauges), so the set of
// descriptors is not known at registration time, which DescribeByCollect would assume.
type Collector struct {
	text func() (string, error)
}

// NewCollector collects from this process's heartbeater engine.
func NewCollector() *Collector {
	return &Collector{text: heartbeater.MetricsText}
}

// Describe sends no descriptors: see Collector.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect parses the engine's exposition and sends every sample.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	families, err := c.families()
	if err != nil {
		desc := prometheus.NewDesc("heartbeater_collector_error", "heartbeater metrics could not be read", nil, nil)
		ch <- prometheus.NewInvalidMetric(desc, err)
		return
	}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			metric, err := constMetric(mf, m)
			if err != nil {
				desc := prometheus.NewDesc(mf.GetName(), mf.GetHelp(), nil, nil)
				metric = prometheus.NewInvalidMetric(desc, err)
			}
			ch <- metric
		}
	}
}

func (c *Collector) families() ([]*dto.MetricFamily, error) {
	text, err := c.text()
	if err != nil {
		return nil, err
	}
	var parser expfmt.TextParser
	byName, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("promhb: parse engine metrics: %w", err)
	}
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]*dto.MetricFamily, 0, len(names))
	for _, name := range names {
		out = append(out, byName[name])
	}
	return out, nil
}

func constMetric(mf *dto.MetricFamily, m *dto.Metric) (prometheus.Metric, error) {
	names := make([]string, 0, len(m.GetLabel()))
	values := make([]string, 0, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		names = append(names, lp.GetName())
		values = append(values, lp.GetValue())
	}
	desc := prometheus.NewDesc(mf.GetName(), mf.GetHelp(), names, nil)
	switch mf.GetType() {
	case dto.MetricType_COUNTER:
		return prometheus.NewConstMetric(desc, prometheus.CounterValue, m.GetCounter().GetValue(), values...)
	case dto.MetricType_GAUGE:
		return prometheus.NewConstMetric(desc, prometheus.GaugeValue, m.GetGauge().GetValue(), values...)
	case dto.MetricType_HISTOGRAM:
		h := m.GetHistogram()
		buckets := make(map[float64]uint64, len(h.GetBucket()))
		for _, b := range h.GetBucket() {
			buckets[b.GetUpperBound()] = b.GetCumulativeCount()
		}
		return prometheus.NewConstHistogram(desc, h.GetSampleCount(), h.GetSampleSum(), buckets, values...)
	case dto.MetricType_SUMMARY:
		s := m.GetSummary()
		quantiles := make(map[float64]float64, len(s.GetQuantile()))
		for _, q := range s.GetQuantile() {
			quantiles[q.GetQuantile()] = q.GetValue()
		}
		return prometheus.NewConstSummary(desc, s.GetSampleCount(), s.GetSampleSum(), quantiles, values...)
	default:
		return prometheus.NewConstMetric(desc, prometheus.UntypedValue, m.GetUntyped().GetValue(), values...)
	}
}

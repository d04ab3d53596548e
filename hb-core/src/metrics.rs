//! Prometheus metrics, all named `heartbeater_*`, in one process-wide registry: text
//! exposition through the API in every language, and an optional `/metrics` listener.

use std::sync::OnceLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    pub beats_sent: IntCounter,
    pub beats_received: IntCounter,
    pub acks_sent: IntCounter,
    pub acks_received: IntCounter,
    pub rtt_seconds: Histogram,
    pub peers: IntGaugeVec,
    pub transitions: IntCounterVec,
    pub frames_rejected: IntCounterVec,
    pub peers_refused: IntCounter,
    pub peers_evicted: IntCounter,
    pub keepalives_sent: IntCounter,
    pub lease_keepalive_failures: IntCounter,
    pub reregistrations: IntCounter,
    pub dropped_events: IntCounter,
    pub callback_panics: IntCounter,
    pub sweeper_pauses: IntCounter,
    pub clients: IntGauge,
    /// tls:// certificate files read again after a change, by result (ok, failed).
    pub tls_reloads: IntCounterVec,
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, label: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

impl Metrics {
    fn new() -> Metrics {
        let r = Registry::new();
        let rtt_seconds = Histogram::with_opts(
            HistogramOpts::new("heartbeater_rtt_seconds", "Round-trip time of acknowledged beats and keepalives")
                .buckets(vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ]),
        )
        .expect("valid metric");
        r.register(Box::new(rtt_seconds.clone())).expect("unique metric");
        let peers = IntGaugeVec::new(Opts::new("heartbeater_peers", "Peers tracked by monitors, by state"), &["state"])
            .expect("valid metric");
        r.register(Box::new(peers.clone())).expect("unique metric");
        let clients = IntGauge::new("heartbeater_clients", "Clients running in this process").expect("valid metric");
        r.register(Box::new(clients.clone())).expect("unique metric");
        Metrics {
            beats_sent: counter(&r, "heartbeater_beats_sent_total", "Beat frames sent by clients"),
            beats_received: counter(&r, "heartbeater_beats_received_total", "Valid beat frames received by monitors"),
            acks_sent: counter(&r, "heartbeater_acks_sent_total", "ACK frames sent by monitors"),
            acks_received: counter(&r, "heartbeater_acks_received_total", "ACK frames received by clients"),
            rtt_seconds,
            peers,
            transitions: counter_vec(&r, "heartbeater_transitions_total", "State transitions, by reason", "reason"),
            frames_rejected: counter_vec(
                &r,
                "heartbeater_frames_rejected_total",
                "Frames dropped by monitors, by reason",
                "reason",
            ),
            peers_refused: counter(
                &r,
                "heartbeater_peers_refused_total",
                "New peers refused because max_peers was reached",
            ),
            peers_evicted: counter(
                &r,
                "heartbeater_peers_evicted_total",
                "Peers forgotten to make room for new ones (beaten only once, or dead or left)",
            ),
            keepalives_sent: counter(&r, "heartbeater_lease_keepalives_total", "etcd lease keepalives sent"),
            lease_keepalive_failures: counter(
                &r,
                "heartbeater_lease_keepalive_failures_total",
                "etcd lease keepalives that failed",
            ),
            reregistrations: counter(
                &r,
                "heartbeater_reregistrations_total",
                "Registrations made again after a lost lease",
            ),
            dropped_events: counter(
                &r,
                "heartbeater_dropped_events_total",
                "Events dropped because a consumer was slow",
            ),
            tls_reloads: counter_vec(
                &r,
                "heartbeater_tls_reloads_total",
                "tls:// certificate files read again after they changed, by result (a failed one keeps the old files)",
                "result",
            ),
            callback_panics: counter(&r, "heartbeater_callback_panics_total", "User callbacks that panicked or raised"),
            sweeper_pauses: counter(
                &r,
                "heartbeater_sweeper_pauses_total",
                "Monitor sweeps that ran late (own-pause guard engaged)",
            ),
            clients,
            registry: r,
        }
    }
}

/// The process-wide metrics.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

pub(crate) fn dropped_events() {
    get().dropped_events.inc();
}

pub(crate) fn callback_panics() {
    get().callback_panics.inc();
}

/// The Prometheus text exposition of every heartbeater metric.
pub fn text() -> String {
    let mut buf = Vec::new();
    // Encoding into a Vec cannot fail for well-formed metrics.
    let _ = TextEncoder::new().encode(&get().registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_heartbeater_metrics() {
        get().frames_rejected.with_label_values(&["bad_tag"]).inc();
        let t = text();
        assert!(t.contains("heartbeater_frames_rejected_total{reason=\"bad_tag\"}"), "{t}");
        assert!(t.contains("heartbeater_beats_sent_total"));
    }
}

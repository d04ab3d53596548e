//! Configuration shared by every language: one string-keyed setter (`Options::set`) is the
//! single parse path for API calls, environment variables, CLI flags, C, Go and Python, so a
//! bad value gets the same precise error everywhere.
//!
//! Precedence: explicit options, then `HEARTBEATER_*` environment variables, then defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::detect::{DetectorKind, DEFAULT_TARGET_FALSE_DEAD_PER_S, DEFAULT_TARGET_FALSE_SUSPECT_PER_S};
use crate::error::{Error, Result};

pub const MAX_NAME_LEN: usize = 64;
pub const MAX_LABEL_KEY_LEN: usize = 63;
pub const MAX_LABEL_VALUE_LEN: usize = 128;
/// Labels travel in every beat frame (512 bytes at most), so their total is capped.
pub const MAX_LABELS_BYTES: usize = 256;
pub const MIN_AUTH_KEY_LEN: usize = 16;

pub const DEFAULT_TTL: Duration = Duration::from_secs(15);
pub const DEFAULT_INTERVAL_MIN: Duration = Duration::from_secs(1);
pub const DEFAULT_INTERVAL_MAX: Duration = Duration::from_secs(30);
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Above the 100k-peer design target, yet a bound on what spoofed ids can make a
/// monitor without an auth key hold.
pub const DEFAULT_MAX_PEERS: usize = 1 << 17;
/// Receive threads per UDP endpoint of a monitor (docs/configuration.md, `listen_threads`).
pub const DEFAULT_LISTEN_THREADS: usize = 1;
const MAX_LISTEN_THREADS: usize = 16;
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;

/// What a handle is for; decides which options apply and which variables are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Monitor,
    Watcher,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// Every address the host resolves to (DNS or a literal), never an empty list: no
    /// address is an error, like a failed lookup. Blocking, as name lookups are.
    pub fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        use std::net::ToSocketAddrs;
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port).to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no address found"));
        }
        Ok(addrs)
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Udp(HostPort),
    Tcp(HostPort),
    /// The TCP framing inside TLS 1.3, mutually authenticated (docs/protocol.md, "tls://").
    Tls(HostPort),
    /// `etcd://host:port[,host:port]/prefix`; keys are `prefix/<service>/<instance>`.
    Etcd {
        hosts: Vec<HostPort>,
        prefix: String,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Udp(hp) => write!(f, "udp://{hp}"),
            Endpoint::Tcp(hp) => write!(f, "tcp://{hp}"),
            Endpoint::Tls(hp) => write!(f, "tls://{hp}"),
            Endpoint::Etcd { hosts, prefix } => {
                let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
                write!(f, "etcd://{}{}", hosts.join(","), prefix)
            }
        }
    }
}

const ENDPOINT_FORM: &str = "scheme://host:port[/prefix] with scheme udp, tcp, tls or etcd, comma-separated";

impl Endpoint {
    /// Parses a comma-separated list. A piece without a scheme continues the etcd
    /// endpoint before it: `etcd://a:1,b:2/prefix`.
    pub fn parse_list(text: &str) -> Result<Vec<Endpoint>> {
        let bad = || Error::config("endpoint", text, ENDPOINT_FORM);
        let mut out: Vec<Endpoint> = Vec::new();
        let mut etcd_pieces: Option<Vec<String>> = None;
        for piece in text.split(',').map(str::trim) {
            if piece.is_empty() {
                return Err(bad());
            }
            if piece.contains("://") {
                if let Some(pieces) = etcd_pieces.take() {
                    out.push(parse_etcd(text, &pieces)?);
                }
                let (scheme, rest) = piece.split_once("://").ok_or_else(bad)?;
                match scheme {
                    "udp" => out.push(Endpoint::Udp(parse_host_port(text, rest)?)),
                    "tcp" => out.push(Endpoint::Tcp(parse_host_port(text, rest)?)),
                    "tls" => out.push(Endpoint::Tls(parse_host_port(text, rest)?)),
                    "etcd" => etcd_pieces = Some(vec![rest.to_string()]),
                    _ => {
                        return Err(Error::config(
                            "endpoint",
                            text,
                            format!("{ENDPOINT_FORM} (unknown scheme {scheme:?})"),
                        ))
                    }
                }
            } else if let Some(pieces) = etcd_pieces.as_mut() {
                pieces.push(piece.to_string());
            } else {
                return Err(bad());
            }
        }
        if let Some(pieces) = etcd_pieces.take() {
            out.push(parse_etcd(text, &pieces)?);
        }
        if out.is_empty() {
            return Err(bad());
        }
        Ok(out)
    }

    pub fn is_etcd(&self) -> bool {
        matches!(self, Endpoint::Etcd { .. })
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Endpoint::Tls(_))
    }
}

/// `pieces` are `host:port` strings; the last may carry the `/prefix`.
fn parse_etcd(text: &str, pieces: &[String]) -> Result<Endpoint> {
    let mut hosts = Vec::new();
    let mut prefix = String::from("/heartbeater");
    for (i, piece) in pieces.iter().enumerate() {
        let (hp, path) = match piece.find('/') {
            Some(at) => (&piece[..at], Some(&piece[at..])),
            None => (piece.as_str(), None),
        };
        if let Some(path) = path {
            if i + 1 != pieces.len() {
                return Err(Error::config(
                    "endpoint",
                    text,
                    "etcd://host:port[,host:port]/prefix (the prefix comes last)",
                ));
            }
            let trimmed = path.trim_end_matches('/');
            if !trimmed.is_empty() {
                if trimmed.contains("//") || trimmed.chars().any(|c| c.is_control() || c.is_whitespace()) {
                    return Err(Error::config(
                        "endpoint",
                        text,
                        "an etcd prefix like /services (no empty segments, spaces or control characters)",
                    ));
                }
                prefix = trimmed.to_string();
            }
        }
        hosts.push(parse_host_port(text, hp)?);
    }
    Ok(Endpoint::Etcd { hosts, prefix })
}

fn parse_host_port(text: &str, s: &str) -> Result<HostPort> {
    let bad = || Error::config("endpoint", text, "host:port with a port from 1 to 65535 (IPv6 as [addr]:port)");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or_else(bad)?;
        (host, port)
    } else {
        s.rsplit_once(':').ok_or_else(bad)?
    };
    if host.is_empty() || host.contains(['/', ' ', '[', ']']) || (host.contains(':') && !s.starts_with('[')) {
        return Err(bad());
    }
    // Port 0 ("any free port") is only meaningful for a listener: check_endpoints refuses
    // it for the roles that connect.
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok(HostPort { host: host.to_string(), port })
}

/// Parses `15s`, `200ms`, `1.5s`, `2m`, `1h`, `500us`; a bare number is seconds.
pub fn parse_duration(field: &str, text: &str) -> Result<Duration> {
    let bad = || Error::config(field, text, "a duration like 200ms, 15s, 1.5s, 2m or 1h");
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "s" | "sec" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let secs = value * scale;
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Seconds in a day, for rates per day, week and year (of 365.25 days).
pub const DAY_S: f64 = 86_400.0;

/// Parses a mistake rate per peer, `COUNT/PERIOD`: `1/2y` (one every two years), `1/d`,
/// `0.5/h`, `1e-8/s`; the result is per second. Periods take the units of `parse_duration`
/// and also `d` (day), `w` (week) and `y` (365.25 days); a bare unit means one of it.
pub fn parse_rate(field: &str, text: &str) -> Result<f64> {
    let bad = || {
        Error::config(
            field,
            text,
            "a rate per peer as COUNT/PERIOD, e.g. 1/2y (one every two years), 1/d or 0.5/h, from 1/1000000y to 1/s",
        )
    };
    let (count, period) = text.trim().split_once('/').ok_or_else(bad)?;
    let count: f64 = count.trim().parse().map_err(|_| bad())?;
    let period = period.trim();
    let split = period.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(period.len());
    let (num, unit) = period.split_at(split);
    let num: f64 = if num.is_empty() { 1.0 } else { num.parse().map_err(|_| bad())? };
    let unit_s = match unit.trim() {
        "d" | "day" => DAY_S,
        "w" | "week" => 7.0 * DAY_S,
        "y" | "year" => 365.25 * DAY_S,
        other => parse_duration(field, &format!("1{other}")).map_err(|_| bad())?.as_secs_f64(),
    };
    let per_s = count / (num * unit_s);
    // Inside the detector's own bounds (DetectorParams::validate, 1e-15..=1 per second).
    let slowest = 1.0 / (1e6 * 365.25 * DAY_S);
    if !per_s.is_finite() || !(slowest..=1.0).contains(&per_s) {
        return Err(bad());
    }
    Ok(per_s)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntervalRange {
    pub min: Duration,
    pub max: Duration,
}

impl IntervalRange {
    /// `1s..30s` (adaptive between bounds) or `200ms` (fixed).
    pub fn parse(text: &str) -> Result<IntervalRange> {
        let form = "an interval like 200ms (fixed) or 1s..30s (adaptive between bounds)";
        let (min, max) = match text.split_once("..") {
            Some((a, b)) => (parse_duration("interval", a)?, parse_duration("interval", b)?),
            None => {
                let d = parse_duration("interval", text)?;
                (d, d)
            }
        };
        if min < Duration::from_millis(10) || min > max {
            return Err(Error::config("interval", text, format!("{form}, with 10ms <= min <= max")));
        }
        Ok(IntervalRange { min, max })
    }
}

/// Parses `k=v,k=v`.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    if text.trim().is_empty() {
        return Ok(labels);
    }
    for pair in text.split(',') {
        let (k, v) =
            pair.split_once('=').ok_or_else(|| Error::config("labels", text, "k=v pairs separated by commas"))?;
        labels.insert(k.trim().to_string(), v.trim().to_string());
    }
    validate_labels(&labels)?;
    Ok(labels)
}

pub fn validate_labels(labels: &BTreeMap<String, String>) -> Result<()> {
    let mut total = 0;
    for (k, v) in labels {
        let key_ok = !k.is_empty()
            && k.len() <= MAX_LABEL_KEY_LEN
            && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
        if !key_ok {
            return Err(Error::config(
                "label key",
                k,
                format!("1..={MAX_LABEL_KEY_LEN} characters of A-Z a-z 0-9 _ - . /"),
            ));
        }
        if v.len() > MAX_LABEL_VALUE_LEN || v.chars().any(char::is_control) {
            return Err(Error::config(
                format!("label {k}"),
                v,
                format!("at most {MAX_LABEL_VALUE_LEN} bytes of text without control characters"),
            ));
        }
        total += k.len() + v.len() + 2;
    }
    if total > MAX_LABELS_BYTES {
        return Err(Error::config(
            "labels",
            format!("{total} bytes"),
            format!("at most {MAX_LABELS_BYTES} bytes in all (they travel in every beat)"),
        ));
    }
    Ok(())
}

pub(crate) fn validate_name(field: &str, value: &str) -> Result<()> {
    let ok =
        !value.is_empty() && value.len() <= MAX_NAME_LEN && !value.contains('/') && crate::proto::ident::is_name(value);
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            field,
            value,
            format!("1..={MAX_NAME_LEN} bytes of {}, without '/'", crate::proto::ident::NAME_CHARS),
        ))
    }
}

fn parse_bool(field: &str, text: &str) -> Result<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::config(field, text, "true or false")),
    }
}

fn parse_count(field: &str, text: &str, min: usize, max: usize) -> Result<usize> {
    match text.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Error::config(field, text, format!("a whole number from {min} to {max}"))),
    }
}

/// A secret that never shows up in Debug output or error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// A value with the text it was given as, so that an error found later (at resolve) quotes
/// what the caller typed, not a normalised form.
#[derive(Clone, Debug)]
pub(crate) struct Typed<T> {
    value: T,
    text: String,
}

/// What the caller said. Every field is optional; [`Config::resolve`] fills the rest. The
/// fields are private so that every value passes the same checks: set them with
/// [`Options::set`] (text, as every binding does) or the typed setters.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub(crate) endpoint: Option<Vec<Endpoint>>,
    pub(crate) service: Option<String>,
    pub(crate) instance_id: Option<String>,
    pub(crate) ttl: Option<Typed<Duration>>,
    pub(crate) interval: Option<Typed<IntervalRange>>,
    pub(crate) labels: Option<BTreeMap<String, String>>,
    pub(crate) auth_key: Option<Secret>,
    pub(crate) auth_key_file: Option<PathBuf>,
    pub(crate) detector: Option<DetectorKind>,
    pub(crate) false_dead_rate: Option<Typed<f64>>,
    pub(crate) false_suspect_rate: Option<Typed<f64>>,
    pub(crate) max_peers: Option<usize>,
    pub(crate) listen_threads: Option<usize>,
    pub(crate) stop_timeout: Option<Duration>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) event_capacity: Option<usize>,
    pub(crate) traceparent: Option<String>,
    pub(crate) metrics_addr: Option<SocketAddr>,
    pub(crate) http_addr: Option<SocketAddr>,
    pub(crate) http_token_file: Option<PathBuf>,
    pub(crate) health_addr: Option<SocketAddr>,
    pub(crate) etcd_ca_file: Option<PathBuf>,
    pub(crate) etcd_cert_file: Option<PathBuf>,
    pub(crate) etcd_key_file: Option<PathBuf>,
    pub(crate) etcd_username: Option<String>,
    pub(crate) etcd_password: Option<Secret>,
    pub(crate) ack: Option<bool>,
    pub(crate) tls_ca_file: Option<PathBuf>,
    pub(crate) tls_cert_file: Option<PathBuf>,
    pub(crate) tls_key_file: Option<PathBuf>,
    pub(crate) tls_server_name: Option<String>,
}

/// The keys `Options::set` accepts, in the order shown in error messages.
pub const OPTION_KEYS: &[&str] = &[
    "endpoint",
    "listen",
    "service",
    "instance_id",
    "ttl",
    "interval",
    "labels",
    "label",
    "auth_key",
    "auth_key_file",
    "detector",
    "max_peers",
    "listen_threads",
    "stop_timeout",
    "connect_timeout",
    "event_capacity",
    "traceparent",
    "metrics_addr",
    "etcd_ca_file",
    "etcd_cert_file",
    "etcd_key_file",
    "etcd_username",
    "etcd_password",
    "ack",
    "http_addr",
    "http_token_file",
    "health_addr",
    // Appended, not in order: the fuzz corpus names options by their index here.
    "false_dead_rate",
    "false_suspect_rate",
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
    "tls_server_name",
];

impl Options {
    pub fn new() -> Options {
        Options::default()
    }

    /// Sets one option from text. `label` adds one `k=v`; `labels` replaces them all.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "endpoint" | "listen" => self.endpoint = Some(Endpoint::parse_list(value).map_err(|e| e.for_field(key))?),
            "service" => {
                validate_name("service", value)?;
                self.service = Some(value.to_string());
            }
            "instance_id" => {
                validate_name("instance_id", value)?;
                self.instance_id = Some(value.to_string());
            }
            "ttl" => self.ttl = Some(Typed { value: parse_ttl(value)?, text: value.to_string() }),
            "interval" => self.interval = Some(Typed { value: IntervalRange::parse(value)?, text: value.to_string() }),
            "labels" => self.labels = Some(parse_labels(value)?),
            "label" => {
                let one = parse_labels(value)?;
                if one.len() != 1 {
                    return Err(Error::config("label", value, "one k=v pair"));
                }
                let labels = self.labels.get_or_insert_with(BTreeMap::new);
                labels.extend(one);
                validate_labels(labels)?;
            }
            "auth_key" => self.auth_key = Some(auth_key(value.as_bytes())?),
            "auth_key_file" => self.auth_key_file = Some(PathBuf::from(value)),
            "detector" => {
                self.detector = Some(value.parse().map_err(|_| Error::config("detector", value, "adaptive or phi"))?)
            }
            "false_dead_rate" | "false_suspect_rate" => {
                let rate = Some(Typed { value: parse_rate(key, value)?, text: value.to_string() });
                match key {
                    "false_dead_rate" => self.false_dead_rate = rate,
                    _ => self.false_suspect_rate = rate,
                }
            }
            "max_peers" => self.max_peers = Some(parse_count("max_peers", value, 1, 1 << 24)?),
            "listen_threads" => {
                self.listen_threads = Some(parse_count("listen_threads", value, 1, MAX_LISTEN_THREADS)?)
            }
            "stop_timeout" => self.stop_timeout = Some(parse_duration("stop_timeout", value)?),
            "connect_timeout" => self.connect_timeout = Some(parse_duration("connect_timeout", value)?),
            "event_capacity" => self.event_capacity = Some(parse_count("event_capacity", value, 1, 1 << 20)?),
            "traceparent" => {
                validate_traceparent(value)?;
                self.traceparent = Some(value.to_string());
            }
            "metrics_addr" => self.metrics_addr = Some(parse_metrics_addr(value)?),
            "http_addr" => self.http_addr = Some(parse_http_addr("http_addr", value)?),
            "http_token_file" => self.http_token_file = Some(PathBuf::from(value)),
            "health_addr" => self.health_addr = Some(parse_http_addr("health_addr", value)?),
            "etcd_ca_file" => self.etcd_ca_file = Some(PathBuf::from(value)),
            "etcd_cert_file" => self.etcd_cert_file = Some(PathBuf::from(value)),
            "etcd_key_file" => self.etcd_key_file = Some(PathBuf::from(value)),
            "etcd_username" => self.etcd_username = Some(value.to_string()),
            "etcd_password" => self.etcd_password = Some(Secret(value.as_bytes().to_vec())),
            "ack" => self.ack = Some(parse_bool("ack", value)?),
            "tls_ca_file" => self.tls_ca_file = Some(PathBuf::from(value)),
            "tls_cert_file" => self.tls_cert_file = Some(PathBuf::from(value)),
            "tls_key_file" => self.tls_key_file = Some(PathBuf::from(value)),
            "tls_server_name" => self.tls_server_name = Some(crate::tls::parse_server_name(value)?),
            _ => return Err(Error::config("option", key, format!("one of {}", OPTION_KEYS.join(", ")))),
        }
        Ok(())
    }

    /// The TTL, with the same bounds as `set("ttl", ...)`.
    pub fn set_ttl(&mut self, ttl: Duration) -> Result<()> {
        let text = format_duration(ttl);
        self.ttl = Some(Typed { value: check_ttl(ttl, &text)?, text });
        Ok(())
    }

    /// Replaces every label; each key and value is checked as by `set("labels", ...)`.
    pub fn set_labels(&mut self, labels: BTreeMap<String, String>) -> Result<()> {
        validate_labels(&labels)?;
        self.labels = Some(labels);
        Ok(())
    }

    /// Adds one label, checked as by `set("label", "k=v")`.
    pub fn add_label(&mut self, key: &str, value: &str) -> Result<()> {
        let mut labels = self.labels.clone().unwrap_or_default();
        labels.insert(key.to_string(), value.to_string());
        self.set_labels(labels)
    }

    /// The shared key as raw bytes (at least 16), for keys that are not text.
    pub fn set_auth_key(&mut self, key: &[u8]) -> Result<()> {
        self.auth_key = Some(auth_key(key)?);
        Ok(())
    }
}

/// `ip:port` for the `/metrics` listener.
pub fn parse_metrics_addr(text: &str) -> Result<SocketAddr> {
    text.parse().map_err(|_| Error::config("metrics_addr", text, "ip:port, e.g. 127.0.0.1:9464"))
}

/// `ip:port` or a bare `port` (on 127.0.0.1: loopback unless said otherwise) for an HTTP
/// listener; `field` names the option in the error.
pub fn parse_http_addr(field: &str, text: &str) -> Result<SocketAddr> {
    let loopback_port = text.parse::<u16>().map(|port| SocketAddr::from(([127, 0, 0, 1], port)));
    loopback_port
        .or_else(|_| text.parse())
        .map_err(|_| Error::config(field, text, "ip:port or a port (then on 127.0.0.1), e.g. 127.0.0.1:9465"))
}

const TTL_RANGE: &str = "a duration from 300ms to 24h";

fn parse_ttl(text: &str) -> Result<Duration> {
    check_ttl(parse_duration("ttl", text)?, text)
}

fn check_ttl(ttl: Duration, text: &str) -> Result<Duration> {
    if ttl < Duration::from_millis(300) || ttl > Duration::from_secs(86_400) {
        return Err(Error::config("ttl", text, TTL_RANGE));
    }
    Ok(ttl)
}

/// A duration as a person writes it: `250ms`, `15s`, `1.5s`. From a millisecond up it is
/// rounded to the millisecond, so a derived figure such as ttl/3 reads `667ms`, not
/// `666.666666ms`; shorter ones keep their precision (`500µs`).
pub fn format_duration(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        return if d.is_zero() { "0ms".to_string() } else { format!("{d:?}") };
    }
    let ms = (d.as_nanos() + 500_000) / 1_000_000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        let frac = format!("{:03}", ms % 1000);
        format!("{}.{}s", ms / 1000, frac.trim_end_matches('0'))
    }
}

fn auth_key(bytes: &[u8]) -> Result<Secret> {
    if bytes.len() < MIN_AUTH_KEY_LEN {
        return Err(Error::config(
            "auth_key",
            format!("{} bytes", bytes.len()),
            format!("at least {MIN_AUTH_KEY_LEN} bytes"),
        ));
    }
    Ok(Secret(bytes.to_vec()))
}

/// W3C trace context, checked by the same rule the beat encoder applies.
pub fn validate_traceparent(value: &str) -> Result<()> {
    if crate::proto::traceparent_is_valid(value.as_bytes()) {
        Ok(())
    } else {
        Err(Error::config(
            "traceparent",
            value,
            "W3C traceparent 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags> in lower case, ids not all zero",
        ))
    }
}

/// Resolved configuration: every value present and checked.
#[derive(Clone, Debug)]
pub struct Config {
    pub role: Role,
    pub endpoints: Vec<Endpoint>,
    pub service: String,
    pub instance_id: String,
    pub ttl: Duration,
    /// Effective bounds: `max` is already capped at ttl/3.
    pub interval: IntervalRange,
    pub labels: BTreeMap<String, String>,
    pub auth_key: Option<Secret>,
    pub detector: DetectorKind,
    /// The adaptive detector's targets, per peer per second: false `dead`, false `suspect`.
    pub false_dead_per_s: f64,
    pub false_suspect_per_s: f64,
    pub max_peers: usize,
    /// Receive threads per UDP listen endpoint (SO_REUSEPORT sockets on one port).
    pub listen_threads: usize,
    pub stop_timeout: Duration,
    pub connect_timeout: Duration,
    pub event_capacity: usize,
    pub traceparent: Option<String>,
    pub metrics_addr: Option<SocketAddr>,
    /// Where a monitor or watcher serves its HTTP API (docs/http.md).
    pub http_addr: Option<SocketAddr>,
    /// The bearer token that API asks for, read from `http_token_file`.
    pub http_token: Option<Secret>,
    /// Where a client serves its own `/healthz` (docs/http.md, "A client's health").
    pub health_addr: Option<SocketAddr>,
    pub etcd: EtcdOptions,
    /// Ask the monitor to ACK each beat (needed for RTT, health and fencing).
    pub ack: bool,
    /// The files of `tls://` endpoints; checked present when one is used.
    pub tls: TlsOptions,
}

/// Paths as given; the files are read when a client or monitor starts, and again when they
/// change (`crate::tls`).
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Client: the name the monitor's certificate must hold; by default the endpoint's host.
    pub server_name: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct EtcdOptions {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

/// The environment variables read for a client (and the key file for a monitor).
pub const ENV_VARS: &[(&str, &str)] = &[
    ("HEARTBEATER_ENDPOINT", "endpoint"),
    ("HEARTBEATER_SERVICE", "service"),
    ("HEARTBEATER_INSTANCE_ID", "instance_id"),
    ("HEARTBEATER_TTL", "ttl"),
    ("HEARTBEATER_INTERVAL", "interval"),
    ("HEARTBEATER_LABELS", "labels"),
    ("HEARTBEATER_AUTH_KEY_FILE", "auth_key_file"),
];

impl Config {
    /// Resolves against the process environment.
    pub fn resolve(opts: &Options, role: Role) -> Result<Config> {
        Config::resolve_with_env(opts, role, &|name| std::env::var(name).ok())
    }

    /// Resolves with an explicit environment lookup (tests pass a map).
    pub fn resolve_with_env(opts: &Options, role: Role, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
        let mut merged = Options::new();
        for (var, key) in ENV_VARS {
            let applies = match role {
                Role::Client => true,
                Role::Monitor => *key == "auth_key_file",
                Role::Watcher => *key == "endpoint",
            };
            if let Some(value) = env(var).filter(|v| applies && !v.is_empty()) {
                merged.set(key, &value).map_err(|e| match e {
                    Error::Config { field, value, expected } => {
                        Error::Config { field: format!("{field} (from {var})"), value, expected }
                    }
                    other => other,
                })?;
            }
        }
        let o = overlay(merged, opts.clone());

        let endpoints = o.endpoint.clone().ok_or_else(|| {
            let name = if role == Role::Monitor { "listen" } else { "endpoint" };
            Error::config(name, "", "at least one endpoint, e.g. udp://127.0.0.1:7946 (or set HEARTBEATER_ENDPOINT)")
        })?;
        check_endpoints(role, &endpoints)?;

        let (ttl, ttl_text) = match &o.ttl {
            Some(t) => (t.value, t.text.clone()),
            None => (DEFAULT_TTL, format_duration(DEFAULT_TTL)),
        };
        let etcd = endpoints.iter().any(Endpoint::is_etcd);
        if etcd && ttl < Duration::from_secs(2) {
            return Err(Error::config("ttl", ttl_text, "at least 2s with etcd (leases count whole seconds)"));
        }
        let interval = effective_interval(o.interval.as_ref(), ttl)?;

        let auth_key = match (o.auth_key.clone(), o.auth_key_file.as_ref()) {
            (Some(key), _) => Some(key),
            (None, Some(path)) => Some(read_key_file(path)?),
            (None, None) => None,
        };

        let service = match o.service.clone() {
            Some(s) => s,
            None => default_service(),
        };
        let instance_id = match o.instance_id.clone() {
            Some(s) => s,
            None => default_instance_id(),
        };
        let labels = o.labels.clone().unwrap_or_default();
        validate_labels(&labels)?;
        let tls = check_tls(&o, role, &endpoints)?;
        let detector = o.detector.unwrap_or(DetectorKind::Adaptive);
        let (false_dead_per_s, false_suspect_per_s) = detector_targets(&o, detector)?;
        if (o.etcd_cert_file.is_some()) != (o.etcd_key_file.is_some()) {
            return Err(Error::config("etcd_cert_file", "", "etcd_cert_file and etcd_key_file set together"));
        }
        if o.etcd_username.is_some() != o.etcd_password.is_some() {
            return Err(Error::config("etcd_username", "", "etcd_username and etcd_password set together"));
        }

        Ok(Config {
            role,
            endpoints,
            service,
            instance_id,
            ttl,
            interval,
            labels,
            auth_key,
            detector,
            false_dead_per_s,
            false_suspect_per_s,
            max_peers: o.max_peers.unwrap_or(DEFAULT_MAX_PEERS),
            listen_threads: o.listen_threads.unwrap_or(DEFAULT_LISTEN_THREADS),
            stop_timeout: o.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
            connect_timeout: o.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            event_capacity: o.event_capacity.unwrap_or(DEFAULT_EVENT_CAPACITY),
            traceparent: o.traceparent.clone(),
            metrics_addr: o.metrics_addr,
            http_addr: o.http_addr,
            health_addr: o.health_addr,
            http_token: o.http_token_file.as_deref().map(crate::http::read_token_file).transpose()?,
            etcd: EtcdOptions {
                ca_file: o.etcd_ca_file.clone(),
                cert_file: o.etcd_cert_file.clone(),
                key_file: o.etcd_key_file.clone(),
                username: o.etcd_username.clone(),
                password: o.etcd_password.clone(),
            },
            ack: o.ack.unwrap_or(true),
            tls,
        })
    }

    /// The etcd endpoint, if this configuration uses one.
    pub fn etcd_endpoint(&self) -> Option<(&[HostPort], &str)> {
        self.endpoints.iter().find_map(|e| match e {
            Endpoint::Etcd { hosts, prefix } => Some((hosts.as_slice(), prefix.as_str())),
            _ => None,
        })
    }
}

/// The adaptive detector's two target rates (defaults: one false `dead` per two peer-years,
/// one false `suspect` per peer-day). Refused with `phi`, which has thresholds instead, and
/// when `suspect` would be rarer than `dead` (a peer is suspected before it is convicted).
fn detector_targets(o: &Options, detector: DetectorKind) -> Result<(f64, f64)> {
    if detector != DetectorKind::Adaptive {
        if let Some((key, rate)) =
            [("false_dead_rate", &o.false_dead_rate), ("false_suspect_rate", &o.false_suspect_rate)]
                .into_iter()
                .find_map(|(key, rate)| rate.as_ref().map(|r| (key, r)))
        {
            return Err(Error::config(
                key,
                &rate.text,
                "no rate with detector phi (it has thresholds): use detector adaptive",
            ));
        }
    }
    let dead = o.false_dead_rate.as_ref().map_or(DEFAULT_TARGET_FALSE_DEAD_PER_S, |r| r.value);
    let suspect = o.false_suspect_rate.as_ref().map_or(DEFAULT_TARGET_FALSE_SUSPECT_PER_S, |r| r.value);
    if suspect < dead {
        let text = o.false_suspect_rate.as_ref().map_or("1/d (the default)".to_string(), |r| r.text.clone());
        let dead_text = o.false_dead_rate.as_ref().map_or("1/2y (the default)".to_string(), |r| r.text.clone());
        return Err(Error::config(
            "false_suspect_rate",
            text,
            format!("at least false_dead_rate ({dead_text}): a peer is suspected before it is convicted"),
        ));
    }
    Ok((dead, suspect))
}

/// Explicit options (`top`) win over `base` field by field.
fn overlay(base: Options, top: Options) -> Options {
    macro_rules! pick {
        ($($f:ident),*) => { Options { $($f: top.$f.or(base.$f)),* } };
    }
    pick!(
        endpoint,
        service,
        instance_id,
        ttl,
        interval,
        labels,
        auth_key,
        auth_key_file,
        detector,
        false_dead_rate,
        false_suspect_rate,
        max_peers,
        listen_threads,
        stop_timeout,
        connect_timeout,
        event_capacity,
        traceparent,
        metrics_addr,
        http_addr,
        http_token_file,
        health_addr,
        etcd_ca_file,
        etcd_cert_file,
        etcd_key_file,
        etcd_username,
        etcd_password,
        ack,
        tls_ca_file,
        tls_cert_file,
        tls_key_file,
        tls_server_name
    )
}

fn check_endpoints(role: Role, endpoints: &[Endpoint]) -> Result<()> {
    let text = endpoints.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(",");
    let etcd = endpoints.iter().filter(|e| e.is_etcd()).count();
    let port_zero = endpoints.iter().any(|e| match e {
        Endpoint::Udp(hp) | Endpoint::Tcp(hp) | Endpoint::Tls(hp) => hp.port == 0,
        Endpoint::Etcd { hosts, .. } => hosts.iter().any(|h| h.port == 0),
    });
    if port_zero && role != Role::Monitor {
        return Err(Error::config(
            "endpoint",
            text,
            "host:port with a port from 1 to 65535 (port 0 only for a monitor's listen address)",
        ));
    }
    match role {
        Role::Client if etcd > 0 && endpoints.len() > 1 => {
            Err(Error::config("endpoint", text, "either udp://, tcp:// and tls:// endpoints, or one etcd:// endpoint"))
        }
        Role::Monitor if etcd > 0 => {
            Err(Error::config("listen", text, "udp://, tcp:// and/or tls://host:port (use a Watcher for etcd)"))
        }
        Role::Watcher if etcd != 1 || endpoints.len() != 1 => {
            Err(Error::config("endpoint", text, "one etcd://host:port[,host:port]/prefix"))
        }
        _ => Ok(()),
    }
}

/// With a `tls://` endpoint, the three files are required (mutual authentication is the
/// default, so both sides need all three); without one, TLS options are refused rather
/// than silently unused.
fn check_tls(o: &Options, role: Role, endpoints: &[Endpoint]) -> Result<TlsOptions> {
    let tls = TlsOptions {
        ca_file: o.tls_ca_file.clone(),
        cert_file: o.tls_cert_file.clone(),
        key_file: o.tls_key_file.clone(),
        server_name: o.tls_server_name.clone(),
    };
    let given = [
        ("tls_ca_file", tls.ca_file.is_some()),
        ("tls_cert_file", tls.cert_file.is_some()),
        ("tls_key_file", tls.key_file.is_some()),
        ("tls_server_name", tls.server_name.is_some()),
    ];
    let field = if role == Role::Monitor { "listen" } else { "endpoint" };
    let Some(ep) = endpoints.iter().find(|e| e.is_tls()) else {
        return match given.iter().find(|(_, set)| *set) {
            Some((key, _)) => {
                let text = endpoints.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(",");
                Err(Error::config(*key, "", format!("a tls:// {field} to apply to (the {field} is {text})")))
            }
            None => Ok(tls),
        };
    };
    let what = [
        "a PEM file of the CA that signs the other side's certificates",
        "a PEM file of this side's certificate (chain)",
        "a PEM file of this side's private key",
    ];
    for ((key, set), what) in given.iter().zip(what) {
        if !set {
            return Err(Error::config(*key, "", format!("{what}: {ep} needs it")));
        }
    }
    if role == Role::Monitor && tls.server_name.is_some() {
        return Err(Error::config("tls_server_name", "", "no server name for a monitor (it is a client's option)"));
    }
    Ok(tls)
}

fn effective_interval(explicit: Option<&Typed<IntervalRange>>, ttl: Duration) -> Result<IntervalRange> {
    let cap = ttl / 3;
    match explicit {
        Some(Typed { value: r, text }) if r.min > cap => Err(Error::config(
            "interval",
            text,
            format!(
                "a minimum of at most ttl/3 = {} (the monitor must hear at least 3 beats per TTL)",
                format_duration(cap)
            ),
        )),
        Some(Typed { value: r, .. }) => Ok(IntervalRange { min: r.min, max: r.max.min(cap) }),
        None => {
            let max = DEFAULT_INTERVAL_MAX.min(cap);
            Ok(IntervalRange { min: DEFAULT_INTERVAL_MIN.min(max), max })
        }
    }
}

fn read_key_file(path: &PathBuf) -> Result<Secret> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::config("auth_key_file", path.display(), format!("a readable file holding the shared key ({e})"))
    })?;
    // Keys are usually written with `echo`, so a trailing newline is not part of the key.
    let trimmed = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
    auth_key(trimmed).map_err(|_| {
        Error::config(
            "auth_key_file",
            path.display(),
            format!("a file holding at least {MIN_AUTH_KEY_LEN} bytes of key"),
        )
    })
}

/// The executable's file name, so a service needs no configuration to be recognisable.
pub fn default_service() -> String {
    let name = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown".to_string());
    sanitize_name(&name)
}

/// `hostname-pid`.
pub fn default_instance_id() -> String {
    // Shorten the host part, never the pid: the pid is what keeps two processes apart.
    let pid = format!("-{}", std::process::id());
    let mut host = sanitize_name(&hostname());
    while host.len() + pid.len() > MAX_NAME_LEN {
        host.pop();
    }
    host + &pid
}

fn sanitize_name(raw: &str) -> String {
    let mut s: String =
        raw.chars().map(|c| if c == '/' || c.is_control() || c.is_whitespace() { '_' } else { c }).collect();
    while s.len() > MAX_NAME_LEN {
        s.pop();
    }
    if s.is_empty() {
        s.push_str("unknown");
    }
    s
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into a buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_typed_and_derived_ones_are_rounded_to_the_millisecond() {
        assert_eq!(format_duration(Duration::from_secs(2) / 3), "667ms");
        assert_eq!(format_duration(Duration::from_secs(5) / 3), "1.667s");
        assert_eq!(format_duration(Duration::from_secs(15)), "15s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(format_duration(Duration::ZERO), "0ms");
        assert_eq!(format_duration(Duration::from_micros(500)), "500µs");
    }
    use std::collections::HashMap;

    fn resolve(opts: &Options, role: Role, env: &[(&str, &str)]) -> Result<Config> {
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::resolve_with_env(opts, role, &move |k| env.get(k).cloned())
    }

    fn opts(pairs: &[(&str, &str)]) -> Options {
        let mut o = Options::new();
        for (k, v) in pairs {
            o.set(k, v).unwrap();
        }
        o
    }

    #[test]
    fn parses_endpoint_lists() {
        let eps = Endpoint::parse_list("udp://127.0.0.1:7000,tcp://[::1]:7001").unwrap();
        assert_eq!(eps[0], Endpoint::Udp(HostPort { host: "127.0.0.1".into(), port: 7000 }));
        assert_eq!(eps[1], Endpoint::Tcp(HostPort { host: "::1".into(), port: 7001 }));
        let eps = Endpoint::parse_list("etcd://a:1,b:2/services").unwrap();
        assert_eq!(
            eps,
            vec![Endpoint::Etcd {
                hosts: vec![HostPort { host: "a".into(), port: 1 }, HostPort { host: "b".into(), port: 2 }],
                prefix: "/services".into()
            }]
        );
        assert_eq!(eps[0].to_string(), "etcd://a:1,b:2/services");
    }

    #[test]
    fn bad_endpoints_name_the_field_and_form() {
        for bad in ["etcd//x", "udp://host", "udp://h:99999", "http://h:1", "", "udp://h:1,,", "h:1"] {
            let err = Endpoint::parse_list(bad).unwrap_err().to_string();
            assert!(err.starts_with(&format!("endpoint {bad:?}: expected")), "{err}");
        }
        let err = Endpoint::parse_list("etcd//x").unwrap_err().to_string();
        assert_eq!(err, format!("endpoint \"etcd//x\": expected {ENDPOINT_FORM}"));
    }

    #[test]
    fn listen_threads_is_a_small_whole_number() {
        let mut o = Options::new();
        for bad in ["0", "17", "two", "-1", ""] {
            let err = o.set("listen_threads", bad).unwrap_err().to_string();
            assert_eq!(err, format!("listen_threads {bad:?}: expected a whole number from 1 to 16"));
        }
        o.set("listen", "udp://127.0.0.1:0").unwrap();
        assert_eq!(Config::resolve_with_env(&o, Role::Monitor, &|_| None).unwrap().listen_threads, 1);
        o.set("listen_threads", "2").unwrap();
        assert_eq!(Config::resolve_with_env(&o, Role::Monitor, &|_| None).unwrap().listen_threads, 2);
    }

    #[test]
    fn port_zero_only_for_a_monitor() {
        let mut o = Options::new();
        o.set("endpoint", "udp://127.0.0.1:0").unwrap();
        assert!(Config::resolve_with_env(&o, Role::Monitor, &|_| None).is_ok());
        let err = Config::resolve_with_env(&o, Role::Client, &|_| None).unwrap_err().to_string();
        assert!(err.contains("port 0 only for a monitor"), "{err}");
    }

    #[test]
    fn mistake_rates_per_peer() {
        let year = 365.25 * 86_400.0;
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b;
        assert!(close(parse_rate("r", "1/2y").unwrap(), 1.0 / (2.0 * year)));
        assert!(close(parse_rate("r", "1/d").unwrap(), 1.0 / 86_400.0));
        assert!(close(parse_rate("r", " 3 / 1.5h ").unwrap(), 3.0 / 5_400.0));
        assert!(close(parse_rate("r", "1e-8/s").unwrap(), 1e-8));
        assert!(close(parse_rate("r", "2/week").unwrap(), 2.0 / (7.0 * 86_400.0)));
        for bad in ["", "1", "x/d", "1/fortnight", "0/d", "-1/d", "1/0s", "2/s", "1/2000000y", "nan/d", "1/d/2"] {
            let err = parse_rate("false_dead_rate", bad).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("false_dead_rate {bad:?}: expected a rate per peer as COUNT/PERIOD")),
                "{err}"
            );
        }
    }

    #[test]
    fn detector_targets_default_checked_and_only_adaptive() {
        let resolve = |pairs: &[(&str, &str)]| {
            let mut o = Options::new();
            o.set("listen", "udp://127.0.0.1:0").unwrap();
            for (k, v) in pairs {
                o.set(k, v)?;
            }
            Config::resolve_with_env(&o, Role::Monitor, &|_| None)
        };
        let c = resolve(&[]).unwrap();
        assert_eq!(
            (c.false_dead_per_s, c.false_suspect_per_s),
            (DEFAULT_TARGET_FALSE_DEAD_PER_S, DEFAULT_TARGET_FALSE_SUSPECT_PER_S)
        );
        let c = resolve(&[("false_dead_rate", "1/y"), ("false_suspect_rate", "1/h")]).unwrap();
        assert_eq!(c.false_suspect_per_s, 1.0 / 3_600.0);
        let err = resolve(&[("false_dead_rate", "1/h")]).unwrap_err().to_string();
        assert_eq!(
            err,
            "false_suspect_rate \"1/d (the default)\": expected at least false_dead_rate (1/h): a peer is suspected before it is convicted"
        );
        let err = resolve(&[("detector", "phi"), ("false_suspect_rate", "1/h")]).unwrap_err().to_string();
        assert!(err.starts_with("false_suspect_rate \"1/h\": expected no rate with detector phi"), "{err}");
    }

    #[test]
    fn durations_and_intervals() {
        assert_eq!(parse_duration("ttl", "15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("ttl", "200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_duration("ttl", "1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("ttl", "15").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("ttl", "2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("ttl", "fast")
            .unwrap_err()
            .to_string()
            .starts_with("ttl \"fast\": expected a duration"));
        assert!(parse_duration("ttl", "-1s").is_err());
        let r = IntervalRange::parse("1s..30s").unwrap();
        assert_eq!((r.min, r.max), (Duration::from_secs(1), Duration::from_secs(30)));
        let r = IntervalRange::parse("200ms").unwrap();
        assert_eq!((r.min, r.max), (Duration::from_millis(200), Duration::from_millis(200)));
        assert!(IntervalRange::parse("30s..1s").is_err());
        assert!(IntervalRange::parse("1ms").is_err());
    }

    #[test]
    fn explicit_beats_env_beats_default() {
        let env = [
            ("HEARTBEATER_ENDPOINT", "udp://127.0.0.1:9"),
            ("HEARTBEATER_SERVICE", "from-env"),
            ("HEARTBEATER_TTL", "9"),
        ];
        let c = resolve(&opts(&[("service", "explicit")]), Role::Client, &env).unwrap();
        assert_eq!(c.service, "explicit");
        assert_eq!(c.ttl, Duration::from_secs(9));
        assert_eq!(c.endpoints.len(), 1);
        let c = resolve(&opts(&[("endpoint", "udp://127.0.0.1:1")]), Role::Client, &[]).unwrap();
        assert_eq!(c.ttl, DEFAULT_TTL);
        assert!(c.instance_id.ends_with(&format!("-{}", std::process::id())));
        assert!(!c.service.is_empty());
        assert_eq!(c.interval, IntervalRange { min: Duration::from_secs(1), max: Duration::from_secs(5) });
    }

    #[test]
    fn env_errors_name_the_variable() {
        let err = resolve(&Options::new(), Role::Client, &[("HEARTBEATER_TTL", "soon")]).unwrap_err().to_string();
        assert!(err.starts_with("ttl (from HEARTBEATER_TTL) \"soon\""), "{err}");
    }

    #[test]
    fn interval_is_capped_by_ttl() {
        let c = resolve(&opts(&[("endpoint", "udp://h:1"), ("ttl", "3s")]), Role::Client, &[]).unwrap();
        assert_eq!((c.interval.min, c.interval.max), (Duration::from_secs(1), Duration::from_secs(1)));
        let c = resolve(&opts(&[("endpoint", "etcd://h:1/s"), ("ttl", "2s")]), Role::Client, &[]).unwrap();
        assert!(c.interval.max <= Duration::from_millis(667));
        let err = resolve(&opts(&[("endpoint", "udp://h:1"), ("ttl", "3s"), ("interval", "2s")]), Role::Client, &[])
            .unwrap_err();
        assert!(err.to_string().contains("at most ttl/3"), "{err}");
    }

    #[test]
    fn labels_and_names_are_checked() {
        let o = opts(&[("labels", "region=cn-east-1,env=prod"), ("label", "tier=web")]);
        assert_eq!(o.labels.as_ref().unwrap().len(), 3);
        assert!(Options::new().set("labels", "novalue").is_err());
        assert!(Options::new().set("labels", "bad key=v").is_err());
        assert!(Options::new().set("service", "a/b").unwrap_err().to_string().starts_with("service \"a/b\""));
        assert!(Options::new().set("instance_id", &"x".repeat(65)).is_err());
        let err = Options::new().set("colour", "red").unwrap_err().to_string();
        assert!(err.starts_with("option \"colour\": expected one of endpoint"), "{err}");
        assert!(Options::new().set("auth_key", "short").unwrap_err().to_string().contains("at least 16 bytes"));
        assert!(Options::new().set("detector", "oracle").unwrap_err().to_string().contains("adaptive or phi"));
    }

    #[test]
    fn roles_check_their_endpoints() {
        assert!(resolve(&opts(&[("listen", "etcd://h:1/p")]), Role::Monitor, &[]).is_err());
        assert!(resolve(&opts(&[("endpoint", "udp://h:1")]), Role::Watcher, &[]).is_err());
        assert!(resolve(&opts(&[("endpoint", "udp://h:1,etcd://h:2/p")]), Role::Client, &[]).is_err());
        let err = resolve(&Options::new(), Role::Monitor, &[("HEARTBEATER_ENDPOINT", "udp://h:1")]).unwrap_err();
        assert!(err.to_string().starts_with("listen"), "{err}");
    }

    #[test]
    fn key_file_drops_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "0123456789abcdef\n").unwrap();
        let o = opts(&[("listen", "udp://127.0.0.1:1"), ("auth_key_file", path.to_str().unwrap())]);
        let c = resolve(&o, Role::Monitor, &[]).unwrap();
        assert_eq!(c.auth_key.unwrap().0, b"0123456789abcdef");
        std::fs::write(&path, "short").unwrap();
        assert!(resolve(&o, Role::Monitor, &[]).is_err());
    }

    #[test]
    fn host_port_resolves_to_a_non_empty_list_or_an_error() {
        let hp = HostPort { host: "127.0.0.1".into(), port: 7946 };
        assert_eq!(hp.resolve().unwrap(), vec!["127.0.0.1:7946".parse::<SocketAddr>().unwrap()]);
        assert_eq!(
            HostPort { host: "::1".into(), port: 1 }.resolve().unwrap(),
            vec!["[::1]:1".parse::<SocketAddr>().unwrap()]
        );
        assert!(HostPort { host: "no-such-host.invalid".into(), port: 1 }.resolve().is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let o = opts(&[("auth_key", "0123456789abcdef-secret")]);
        assert!(!format!("{o:?}").contains("secret"));
    }
}

//! The command line, exactly as docs/cli.md describes it (other issues and users' scripts
//! rely on these names).

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "heartbeater",
    version,
    about = "Liveness for distributed processes: monitor, beat, watch, elect, relay, demo, bench"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Listen for beats and print one line per peer state transition.
    Monitor(MonitorArgs),
    /// Keep this instance registered as alive until SIGINT/SIGTERM, then say goodbye.
    Beat(BeatArgs),
    /// Print the registrations under an etcd prefix as they join, change and leave.
    Watch(WatchArgs),
    /// Campaign in an etcd election; run COMMAND only while leader, stop it when not.
    Elect(ElectArgs),
    /// Userspace UDP impairment proxy (delay, jitter, loss), both directions.
    Relay(RelayArgs),
    /// Embedded monitor + N clients through an impaired relay; kills some; prints a summary.
    Demo(DemoArgs),
    /// Benchmarks: print a table and write JSON.
    Bench(BenchArgs),
    /// Print a shell completion script (`make install` writes them; hidden from --help).
    #[command(hide = true)]
    Completions(CompletionsArgs),
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct MonitorArgs {
    /// Listen addresses: udp://H:P[,tcp://H:P][,tls://H:P] (port 0 picks a free port)
    #[arg(long)]
    pub listen: String,
    #[command(flatten)]
    pub tls: TlsFileArgs,
    /// One JSON object per line instead of text
    #[arg(long)]
    pub json: bool,
    /// Serve Prometheus /metrics on H:P
    #[arg(long, value_name = "H:P", allow_hyphen_values = true)]
    pub metrics_addr: Option<String>,
    /// File holding the shared key; frames without a valid tag are dropped
    #[arg(long, value_name = "F")]
    pub auth_key_file: Option<String>,
    /// Failure detector: adaptive or phi
    #[arg(long, allow_hyphen_values = true)]
    pub detector: Option<String>,
    /// Adaptive detector: false `dead` verdicts tolerated per peer, COUNT/PERIOD
    /// (default 1/2y: one every two years)
    #[arg(long, value_name = "RATE", allow_hyphen_values = true)]
    pub false_dead_rate: Option<String>,
    /// Adaptive detector: false `suspect` verdicts tolerated per peer (default 1/d)
    #[arg(long, value_name = "RATE", allow_hyphen_values = true)]
    pub false_suspect_rate: Option<String>,
    /// Most peers tracked at once (default 131072); a full table evicts peers heard only
    /// once, then dead and left ones, before it refuses a newcomer
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub max_peers: Option<String>,
    /// Receive threads per udp:// endpoint, on SO_REUSEPORT sockets (default 1;
    /// docs/configuration.md)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub listen_threads: Option<String>,
    /// Serve the HTTP API (peers as JSON, events as SSE, /metrics, probes) on H:P, or on
    /// 127.0.0.1:PORT for a bare port (docs/http.md)
    #[arg(long, value_name = "ADDR", allow_hyphen_values = true)]
    pub http: Option<String>,
    /// File holding the bearer token the HTTP API asks for
    #[arg(long, value_name = "F")]
    pub http_token_file: Option<String>,
}

/// The certificate files of a `tls://` endpoint (docs/protocol.md, "TLS connections").
#[derive(Args, Debug, Default)]
pub struct TlsFileArgs {
    /// tls://: PEM file of the CA that signs the other side's certificates
    #[arg(long, value_name = "F")]
    pub tls_ca_file: Option<String>,
    /// tls://: PEM file of this side's certificate (a client's names its --id as a SAN)
    #[arg(long, value_name = "F")]
    pub tls_cert_file: Option<String>,
    /// tls://: PEM file of this side's private key
    #[arg(long, value_name = "F")]
    pub tls_key_file: Option<String>,
}

#[derive(Args, Debug)]
pub struct BeatArgs {
    /// udp://H:P, tcp://H:P, tls://H:P (comma-separated for several monitors) or
    /// etcd://H:P/prefix
    #[arg(long)]
    pub endpoint: String,
    #[command(flatten)]
    pub tls: TlsFileArgs,
    /// tls://: the name the monitor's certificate must hold (default: the endpoint's host)
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    pub tls_server_name: Option<String>,
    /// Service name (1..=64 bytes; the monitor shows it with every event)
    #[arg(long, allow_hyphen_values = true)]
    pub service: String,
    /// Instance id, unique within the service
    #[arg(long, allow_hyphen_values = true)]
    pub id: String,
    /// How long the other side waits before declaring us gone (default 15s)
    #[arg(long, allow_hyphen_values = true)]
    pub ttl: Option<String>,
    /// 200ms (fixed) or 1s..30s (adaptive between bounds)
    #[arg(long, allow_hyphen_values = true)]
    pub interval: Option<String>,
    /// k=v, repeatable
    #[arg(long = "label", value_name = "K=V", allow_hyphen_values = true)]
    pub labels: Vec<String>,
    /// File holding the shared key (the monitor's); every beat and LEAVE carries an HMAC tag
    #[arg(long, value_name = "F")]
    pub auth_key_file: Option<String>,
    /// Call check() every PERIOD (e.g. 2ms) and print on stdout each time it turns valid or
    /// invalid, with wall-clock µs: what a fenced worker would have seen
    #[arg(long, value_name = "PERIOD", allow_hyphen_values = true)]
    pub watch_fencing: Option<String>,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// etcd://H:P[,H:P]/prefix
    pub endpoint: String,
    /// One JSON object per line instead of text
    #[arg(long)]
    pub json: bool,
    /// Serve the HTTP API (peers as JSON, events as SSE, /metrics, probes) on H:P, or on
    /// 127.0.0.1:PORT for a bare port (docs/http.md)
    #[arg(long, value_name = "ADDR", allow_hyphen_values = true)]
    pub http: Option<String>,
    /// File holding the bearer token the HTTP API asks for
    #[arg(long, value_name = "F")]
    pub http_token_file: Option<String>,
}

#[derive(Args, Debug)]
pub struct ElectArgs {
    /// etcd://H:P[,H:P]/prefix
    pub endpoint: String,
    /// Election name (the key is prefix/election/NAME/<lease>)
    #[arg(long, allow_hyphen_values = true)]
    pub name: String,
    /// This candidate's value, shown to the others as the leader's
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub value: String,
    /// Lease TTL (default 15s): how long a crashed leader holds the lead
    #[arg(long, allow_hyphen_values = true)]
    pub ttl: Option<String>,
    /// Time COMMAND gets after SIGTERM before SIGKILL
    #[arg(long, default_value = "5s", allow_hyphen_values = true)]
    pub grace: String,
    /// Election events as JSON objects instead of text
    #[arg(long)]
    pub json: bool,
    /// The command run while leader (its environment has HEARTBEATER_ELECTION_TOKEN)
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct RelayArgs {
    /// udp://H:P to receive on (port 0 picks one; printed on stderr)
    #[arg(long)]
    pub listen: String,
    /// udp://H:P to forward to; repeat to tee the same impaired traffic to several
    /// monitors (replies travel back from the first only)
    #[arg(long, required = true)]
    pub upstream: Vec<String>,
    #[command(flatten)]
    pub impair: ImpairArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ImpairArgs {
    /// Fixed one-way delay added to every packet
    #[arg(long, default_value = "0ms", allow_hyphen_values = true)]
    pub delay: String,
    /// Extra delay, uniform: J means 0..J, A..B means A..B
    #[arg(long, default_value = "0ms", allow_hyphen_values = true)]
    pub jitter: String,
    /// Packet loss, e.g. 5% (Bernoulli, or Gilbert-Elliott with --burst)
    #[arg(long, default_value = "0%", allow_hyphen_values = true)]
    pub loss: String,
    /// Mean loss burst length in packets (Gilbert-Elliott); 1 = independent losses
    #[arg(long)]
    pub burst: Option<f64>,
    /// Seed of the impairment's random numbers
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    #[arg(long, default_value_t = 50)]
    pub peers: usize,
    #[arg(long, default_value_t = 5)]
    pub kill: usize,
    #[arg(long, default_value = "20s")]
    pub duration: String,
    /// One-way delay range of the relay, uniform
    #[arg(long, default_value = "100ms..500ms")]
    pub jitter: String,
    #[arg(long, default_value = "5%")]
    pub loss: String,
    /// Client beat interval (fixed, or min..max)
    #[arg(long, default_value = "1s")]
    pub interval: String,
    #[arg(long, default_value = "adaptive")]
    pub detector: String,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub which: BenchCommand,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Monitor ingest: heartbeats/s at <=0.1% loss, CPU per beat, bytes per peer, vs raw recvmmsg
    Ingest(IngestArgs),
    /// RSS, CPU and threads of a process holding 0, 1, 10, 100, 1000 clients
    Footprint(FootprintArgs),
    /// What slow event callbacks cost the other handles on the shared delivery threads
    Delivery(DeliveryArgs),
    /// Detection quality: recorded traces replayed through heartbeater's and reference
    /// detectors (--profile, --replay), or two live monitors on the same traffic
    Detection(DetectionArgs),
    #[command(hide = true)]
    FootprintChild(FootprintChildArgs),
    #[command(hide = true)]
    IngestChild(IngestChildArgs),
    #[command(hide = true)]
    IngestTlsGen(IngestTlsGenArgs),
    /// Hostile traffic: random datagrams, frames with a bad tag, replayed frames
    #[command(hide = true)]
    Flood(FloodArgs),
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Peer counts, comma-separated
    #[arg(long, default_value = "10000,100000")]
    pub peers: String,
    /// Offered rates in heartbeats/s, comma-separated (rising)
    #[arg(long, default_value = "100000,200000,300000,400000,600000,800000")]
    pub rates: String,
    /// Length of each step
    #[arg(long, default_value = "3s")]
    pub duration: String,
    /// Listener thread counts (the monitor's listen_threads, and the raw loop's sockets),
    /// comma-separated
    #[arg(long, default_value = "1")]
    pub listeners: String,
    /// Load-generator threads, each with its own source port and share of the peers
    #[arg(long, default_value_t = 2)]
    pub senders: usize,
    /// Ask for an ACK on every beat (the monitor then sends one datagram per beat)
    #[arg(long)]
    pub ack: bool,
    /// Also serve the HTTP API and GET /v1/peers every PERIOD during the steps (does
    /// polling delay ingest?)
    #[arg(long, value_name = "PERIOD")]
    pub poll_http: Option<String>,
    /// Transports, comma-separated: udp (with the raw recvmmsg baseline) and/or tls (one
    /// mutually authenticated TLS connection per peer, at the same rates)
    #[arg(long, default_value = "udp")]
    pub transport: String,
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
}

/// The load generator of `bench ingest --transport tls`, in its own process.
#[derive(Args, Debug)]
pub struct IngestTlsGenArgs {
    #[arg(long)]
    pub target: std::net::SocketAddr,
    #[arg(long)]
    pub peers: usize,
    /// Where the CA's certificate and key are
    #[arg(long)]
    pub dir: String,
}

/// One peer count's bytes/peer, measured by `bench ingest` in a fresh process.
#[derive(Args, Debug)]
pub struct IngestChildArgs {
    #[arg(long)]
    pub peers: usize,
    #[arg(long)]
    pub ack: bool,
}

#[derive(Args, Debug)]
pub struct FootprintArgs {
    #[arg(long, default_value = "0,1,10,100,1000")]
    pub clients: String,
    /// Every client gets an event callback (they share the engine's delivery threads)
    #[arg(long)]
    pub callbacks: bool,
    /// How long CPU is measured for each count
    #[arg(long, default_value = "10s")]
    pub duration: String,
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
}

#[derive(Args, Debug)]
pub struct DeliveryArgs {
    /// Handles with a callback, each given one event every --period
    #[arg(long, default_value_t = 1000)]
    pub handles: usize,
    /// How many of them have a slow callback, one row per count
    #[arg(long, default_value = "0,1,4,16,32")]
    pub slow: String,
    /// How long a slow callback takes for each event
    #[arg(long, default_value = "1s")]
    pub slow_for: String,
    #[arg(long, default_value = "100ms")]
    pub period: String,
    /// How long each row runs
    #[arg(long, default_value = "5s")]
    pub duration: String,
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
}

#[derive(Args, Debug)]
pub struct FootprintChildArgs {
    pub count: usize,
    #[arg(long)]
    pub callbacks: bool,
    #[arg(long)]
    pub endpoint: String,
}

#[derive(Args, Debug)]
pub struct DetectionArgs {
    /// Record a trace per network profile (lan, wan, burst, partition or all) and replay
    /// it through heartbeater's and the reference detectors; without it (and without
    /// --replay), the live comparison of two monitors on the same traffic
    #[arg(long)]
    pub profile: Option<String>,
    /// Replay a recorded trace (repeatable) instead of recording
    #[arg(long, value_name = "FILE")]
    pub replay: Vec<String>,
    /// Where the traces go (and the figures, without --figures)
    #[arg(long, value_name = "DIR", default_value = "target/bench/detection")]
    pub out: String,
    /// Where the frontier's SVG, markdown table and JSON go
    #[arg(long, value_name = "DIR")]
    pub figures: Option<String>,
    /// Peers (profile default, or 50 live)
    #[arg(long)]
    pub peers: Option<usize>,
    /// Length of the run after warm-up (profile default, or 60s live)
    #[arg(long)]
    pub duration: Option<String>,
    #[arg(long, default_value = "100ms..500ms")]
    pub jitter: String,
    #[arg(long, default_value = "5%")]
    pub loss: String,
    #[arg(long)]
    pub burst: Option<f64>,
    #[arg(long, default_value = "1s")]
    pub interval: String,
    /// Peers crashed during the run (profile default, or 5 live)
    #[arg(long)]
    pub kill: Option<usize>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
}

#[derive(Args, Debug)]
pub struct FloodArgs {
    /// udp://H:P of the monitor
    #[arg(long)]
    pub target: String,
    /// Datagrams of random bytes and random length
    #[arg(long, default_value_t = 0)]
    pub random: u64,
    /// Well-formed beats tagged with the wrong key
    #[arg(long, default_value_t = 0)]
    pub bad_tag: u64,
    /// Well-formed, correctly tagged beats whose seq was already used (needs --auth-key-file)
    #[arg(long, default_value_t = 0)]
    pub replay: u64,
    /// Key for the replayed frames (the monitor's key)
    #[arg(long, value_name = "F")]
    pub auth_key_file: Option<String>,
    /// Instance id the replayed frames claim (an existing peer's id makes them replays)
    #[arg(long, default_value = "flood-victim")]
    pub replay_id: String,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every visible option and argument of every visible subcommand says what it is for.
    #[test]
    fn every_visible_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                if arg.get_help().is_none() && !matches!(arg.get_id().as_str(), "help" | "version") {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        let cmd = Cli::command();
        for name in ["monitor", "beat", "watch", "relay"] {
            let sub = cmd.find_subcommand(name).expect("subcommand");
            walk(sub, name, &mut missing);
        }
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    /// A value that starts with '-' is a value, so the library can say what is wrong with it.
    #[test]
    fn values_may_start_with_a_hyphen() {
        let beat = "heartbeater beat --endpoint udp://h:1 --service s --id i --ttl -1 --interval -5s --label -k=v";
        let Command::Beat(b) = Cli::try_parse_from(beat.split(' ')).expect("parses").command else { panic!("beat") };
        assert_eq!((b.ttl.as_deref(), b.interval.as_deref()), (Some("-1"), Some("-5s")));
        assert_eq!(b.labels, ["-k=v"]);
        let relay = "heartbeater relay --listen udp://h:0 --upstream udp://h:1 --delay -1ms --loss -5%";
        let Command::Relay(r) = Cli::try_parse_from(relay.split(' ')).expect("parses").command else { panic!("relay") };
        assert_eq!((r.impair.delay.as_str(), r.impair.loss.as_str()), ("-1ms", "-5%"));
    }
}

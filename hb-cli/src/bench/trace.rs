//! The arrival trace of `bench detection`: what a tap behind the relay saw, so that any
//! detector can be replayed on it offline, again and again.
//!
//! File format (compact, greppable): the first line is `# ` and a JSON object with the
//! profile, the peers, the kills and the partition; then one CSV line per arriving beat,
//! `t_ns,peer,seq,interval_ms,stalled,sent_ns`. Times are nanoseconds of the monotonic
//! clock since the start of the recording; `sent_ns` is the sender's own timestamp of the
//! beat (same clock, same machine), which gives the one-way delay.

use std::io::{BufRead, BufWriter, Write};

use crate::fail::{runtime, CmdResult};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arrival {
    pub t_ns: u64,
    pub peer: u32,
    pub seq: u32,
    pub interval_ns: u64,
    pub stalled: bool,
    pub sent_ns: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub profile: String,
    /// Human description of the impairment (relay settings).
    pub network: String,
    pub interval_ns: u64,
    pub peer_ids: Vec<String>,
    /// (peer, instant of the crash).
    pub kills: Vec<(u32, u64)>,
    /// The relay dropped everything in [start, end).
    pub partition: Option<(u64, u64)>,
    /// Every peer had been heard by then (warm-up over).
    pub ready_ns: u64,
    pub end_ns: u64,
    /// Sorted by `t_ns`.
    pub arrivals: Vec<Arrival>,
}

impl Trace {
    pub fn kill_of(&self, peer: u32) -> Option<u64> {
        self.kills.iter().find(|(p, _)| *p == peer).map(|&(_, t)| t)
    }

    /// Arrivals of each peer, in arrival order.
    pub fn by_peer(&self) -> Vec<Vec<Arrival>> {
        let mut out = vec![Vec::new(); self.peer_ids.len()];
        for a in &self.arrivals {
            if let Some(v) = out.get_mut(a.peer as usize) {
                v.push(*a);
            }
        }
        out
    }

    pub fn write(&self, path: &str) -> CmdResult<()> {
        let err = |e: std::io::Error| runtime(format!("write {path}: {e}"));
        let meta = serde_json::json!({
            "profile": self.profile,
            "network": self.network,
            "interval_ns": self.interval_ns,
            "peers": self.peer_ids,
            "kills": self.kills,
            "partition": self.partition,
            "ready_ns": self.ready_ns,
            "end_ns": self.end_ns,
        });
        let mut w = BufWriter::new(std::fs::File::create(path).map_err(err)?);
        writeln!(w, "# {meta}").map_err(err)?;
        for a in &self.arrivals {
            writeln!(
                w,
                "{},{},{},{},{},{}",
                a.t_ns,
                a.peer,
                a.seq,
                a.interval_ns / 1_000_000,
                u8::from(a.stalled),
                a.sent_ns
            )
            .map_err(err)?;
        }
        w.flush().map_err(err)
    }

    pub fn read(path: &str) -> CmdResult<Trace> {
        let file = std::fs::File::open(path).map_err(|e| runtime(format!("read {path}: {e}")))?;
        let mut lines = std::io::BufReader::new(file).lines();
        let bad = |line: usize, what: &str| runtime(format!("{path}:{line}: {what}"));
        let head = lines.next().transpose().map_err(|e| runtime(format!("read {path}: {e}")))?.unwrap_or_default();
        let meta: serde_json::Value = head
            .strip_prefix("# ")
            .and_then(|j| serde_json::from_str(j).ok())
            .ok_or_else(|| bad(1, "expected a `# {json}` header line (a trace written by bench detection)"))?;
        let u = |k: &str| meta[k].as_u64().ok_or_else(|| bad(1, &format!("header: {k} missing")));
        let pair = |v: &serde_json::Value| Some((v.get(0)?.as_u64()?, v.get(1)?.as_u64()?));
        let mut trace = Trace {
            profile: meta["profile"].as_str().unwrap_or("custom").to_string(),
            network: meta["network"].as_str().unwrap_or("").to_string(),
            interval_ns: u("interval_ns")?,
            peer_ids: meta["peers"]
                .as_array()
                .ok_or_else(|| bad(1, "header: peers missing"))?
                .iter()
                .map(|p| p.as_str().unwrap_or("").to_string())
                .collect(),
            kills: meta["kills"]
                .as_array()
                .map(|k| k.iter().filter_map(pair).map(|(p, t)| (p as u32, t)).collect())
                .unwrap_or_default(),
            partition: pair(&meta["partition"]),
            ready_ns: u("ready_ns")?,
            end_ns: u("end_ns")?,
            arrivals: Vec::new(),
        };
        for (i, line) in lines.enumerate() {
            let line = line.map_err(|e| runtime(format!("read {path}: {e}")))?;
            let f: Vec<u64> = line.split(',').filter_map(|x| x.trim().parse().ok()).collect();
            let [t_ns, peer, seq, interval_ms, stalled, sent_ns] = f[..] else {
                return Err(bad(i + 2, "expected t_ns,peer,seq,interval_ms,stalled,sent_ns"));
            };
            if peer as usize >= trace.peer_ids.len() {
                return Err(bad(i + 2, "peer index beyond the header's peers"));
            }
            trace.arrivals.push(Arrival {
                t_ns,
                peer: peer as u32,
                seq: seq as u32,
                interval_ns: interval_ms * 1_000_000,
                stalled: stalled != 0,
                sent_ns,
            });
        }
        trace.arrivals.sort_by_key(|a| a.t_ns);
        Ok(trace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back_the_same_trace() {
        let a =
            |t, peer, seq| Arrival { t_ns: t, peer, seq, interval_ns: 50_000_000, stalled: seq == 2, sent_ns: t - 7 };
        let trace = Trace {
            profile: "lan".into(),
            network: "delay 500µs".into(),
            interval_ns: 50_000_000,
            peer_ids: vec!["p0".into(), "p1".into()],
            kills: vec![(1, 123_456)],
            partition: Some((10, 20)),
            ready_ns: 5,
            end_ns: 1_000_000_000,
            arrivals: vec![a(100, 0, 1), a(200, 1, 1), a(300, 0, 2)],
        };
        let path = std::env::temp_dir().join(format!("hb-trace-{}.csv", std::process::id()));
        let path = path.to_str().unwrap();
        trace.write(path).unwrap();
        let back = Trace::read(path).unwrap();
        std::fs::remove_file(path).unwrap();
        assert_eq!(back, trace);
        assert_eq!(back.kill_of(1), Some(123_456));
        assert_eq!(back.by_peer()[0].len(), 2);
    }
}

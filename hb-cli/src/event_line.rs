//! One line per event, as `monitor`, `watch`, `elect` and the trials print them.

use std::io::Write;

use hb_core::Event;

use crate::escape;

/// One line per event on stdout, flushed at once so pipes see it live. Every text in it
/// came from a peer or from etcd, so it goes through `escape`.
pub fn print_event(ev: &Event, json: bool) {
    let line = if json { escape::json(&ev.to_json()) } else { text_line(ev) };
    let mut out = std::io::stdout().lock();
    // A closed pipe is the reader's business; keep monitoring.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn text_line(ev: &Event) -> String {
    let mut line = format!(
        "{} {} {} {} -> {} reason={} incarnation={}",
        ev.at_unix_ms,
        escape::field(&ev.service),
        escape::field(&ev.peer),
        ev.from,
        ev.to,
        ev.reason,
        ev.incarnation
    );
    for (k, v) in &ev.labels {
        line.push_str(&format!(" label.{}={}", escape::field(k), escape::field(v)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_core::{Reason, State};

    #[test]
    fn a_hostile_event_prints_as_one_line_with_every_field_distinct() {
        let mut ev = Event::new("web-1", "svc\nfake 1 svc x alive", State::Unknown, State::Alive, Reason::Registered);
        ev.labels.insert("zone".into(), "eu-1".into());
        ev.labels.insert("reason".into(), "a b\u{1b}[2J\u{202e}".into());
        let line = text_line(&ev);
        assert!(!line.chars().any(escape::is_unsafe), "{line:?}");
        assert!(
            line.ends_with(
                " \"svc\\nfake 1 svc x alive\" web-1 unknown -> alive reason=registered incarnation=0 \
                 label.reason=\"a b\\u{1b}[2J\\u{202e}\" label.zone=eu-1"
            ),
            "{line}"
        );
    }
}

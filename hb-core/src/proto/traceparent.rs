//! W3C Trace Context `traceparent`, version 00 only: "00-<trace-id>-<parent-id>-<flags>".
//! Checked both ways so a monitor never surfaces a value a tracer would reject.

/// Exact length of a version-00 traceparent.
pub(super) const LEN: usize = 55;

pub(crate) fn is_valid(value: &[u8]) -> bool {
    let [b'0', b'0', b'-', rest @ ..] = value else {
        return false;
    };
    let Some((trace_id, rest)) = rest.split_first_chunk::<32>() else {
        return false;
    };
    let [b'-', rest @ ..] = rest else {
        return false;
    };
    let Some((parent_id, rest)) = rest.split_first_chunk::<16>() else {
        return false;
    };
    let [b'-', f1, f2] = rest else {
        return false;
    };
    // All-zero ids are invalid per the W3C spec.
    lower_hex(trace_id)
        && lower_hex(parent_id)
        && lower_hex(&[*f1, *f2])
        && trace_id.iter().any(|&b| b != b'0')
        && parent_id.iter().any(|&b| b != b'0')
}

fn lower_hex(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn accepts_the_spec_example() {
        assert_eq!(GOOD.len(), LEN);
        assert!(is_valid(GOOD.as_bytes()));
    }

    #[test]
    fn rejects_malformed() {
        let bad = [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero parent id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",  // short flags
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011", // long
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // separator
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", // non-hex
        ];
        for b in bad {
            assert!(!is_valid(b.as_bytes()), "{b:?}");
        }
    }
}

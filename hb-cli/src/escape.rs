//! Escaping of everything the CLI prints that came from the network or from etcd (peer
//! ids, services, labels, etcd keys and values, error texts that quote them), so that no
//! character of it can start a fake line, move the cursor, recolour the terminal or reorder
//! what follows. One rule for every command (docs/cli.md, "Escaping"):
//!
//! - **Unsafe** characters are those of Unicode general category Other (Cc controls, C0
//!   and C1 and DEL; Cf format, the bidi controls U+202A–202E and U+2066–2069, zero-width
//!   characters, U+FEFF, the soft hyphen; Cs; Co private use; Cn unassigned) or Separator
//!   (Zl U+2028, Zp U+2029, Zs spaces such as NBSP) — except the ASCII space.
//! - Text output writes them as Rust string escapes: `\n`, `\r`, `\t`, `\0`, else
//!   `\u{202e}` (lowercase hex). An event field that is not a plain token (empty, or holding
//!   an unsafe character, a space, `"`, `\`, `,`, `=`, `{` or `}`) is printed in double
//!   quotes with `"` and `\` escaped as well, so a field can never pass for two.
//! - JSON output is serde_json's, with every unsafe character (serde_json leaves DEL, C1,
//!   U+2028 and the bidi controls raw) written `\uXXXX`, a surrogate pair above U+FFFF: the
//!   same JSON value, readable on a terminal.

use std::borrow::Cow;
use std::fmt::Write;

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// True when `c` must not reach a terminal as itself.
pub fn is_unsafe(c: char) -> bool {
    c != ' ' && matches!(c.general_category_group(), GeneralCategoryGroup::Other | GeneralCategoryGroup::Separator)
}

/// Characters that would make a bare field ambiguous in a text line.
fn breaks_token(c: char) -> bool {
    is_unsafe(c) || matches!(c, ' ' | '"' | '\\' | ',' | '=' | '{' | '}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0' => out.push_str("\\0"),
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// A diagnostic text (an error message, a reason) with its unsafe characters escaped; the
/// rest, quotes and backslashes included, is left as it is.
pub fn line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One field of an event's text line: bare when it is a plain token, else quoted.
pub fn field(s: &str) -> Cow<'_, str> {
    if !s.is_empty() && !s.chars().any(breaks_token) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_unsafe(c) => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    out.push('"');
    Cow::Owned(out)
}

/// `value` as one line of JSON with every unsafe character written `\uXXXX`.
pub fn json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if !text.chars().any(is_unsafe) {
        return text;
    }
    // Structure is ASCII and serde_json escapes C0 and `"`: an unsafe character can only
    // stand inside a string, where `\uXXXX` denotes the same character.
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character the rule is about, and a few it must leave alone.
    const HOSTILE: &[char] = &[
        '\n',
        '\r',
        '\t',
        '\0',
        '\u{1b}',
        '\u{7}',
        '\u{8}',
        '\u{7f}',
        '\u{85}',
        '\u{9b}',
        '\u{200b}',
        '\u{200d}',
        '\u{200e}',
        '\u{202a}',
        '\u{202e}',
        '\u{2066}',
        '\u{2069}',
        '\u{2028}',
        '\u{2029}',
        '\u{feff}',
        '\u{ad}',
        '\u{a0}',
        '\u{3000}',
        '\u{e000}',
        '\u{378}',
        '\u{e0001}',
    ];

    #[test]
    fn every_hostile_character_is_unsafe_and_text_is_not() {
        for &c in HOSTILE {
            assert!(is_unsafe(c), "{:?}", c);
        }
        for c in ['a', ' ', 'é', '服', '-', '"', '\\', '\u{301}', '\u{ff57}', '😀'] {
            assert!(!is_unsafe(c), "{:?}", c);
        }
    }

    #[test]
    fn text_escapes_leave_one_line_of_visible_ascii_and_text() {
        let hostile: String = HOSTILE.iter().collect();
        for out in [line(&hostile).into_owned(), field(&hostile).into_owned()] {
            assert!(!out.chars().any(is_unsafe), "{out:?}");
        }
        assert_eq!(line("a\nb\u{1b}[31m\u{202e}c \"q\""), "a\\nb\\u{1b}[31m\\u{202e}c \"q\"");
        assert_eq!(line("plain text: ok"), "plain text: ok");
        assert!(matches!(line("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_field_is_bare_only_when_it_is_a_plain_token() {
        assert_eq!(field("web-1.eu"), "web-1.eu");
        assert_eq!(field("café/服务"), "café/服务");
        assert_eq!(field(""), "\"\"");
        assert_eq!(field("a b"), "\"a b\"");
        assert_eq!(field("x\ny alive -> dead"), "\"x\\ny alive -> dead\"");
        assert_eq!(field("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
        assert_eq!(field("k=v,w"), "\"k=v,w\"");
        assert_eq!(field("evil\u{202e}gnp.exe"), "\"evil\\u{202e}gnp.exe\"");
    }

    #[test]
    fn json_escapes_unsafe_characters_and_keeps_the_value() {
        let hostile: String = HOSTILE.iter().collect();
        let v = serde_json::json!({ "peer": "p", "labels": { "note": hostile.clone(), "k\u{2028}": "é😀" } });
        let out = json(&v);
        assert!(!out.chars().any(is_unsafe), "{out}");
        assert!(out.contains("\\u202e") && out.contains("\\u2028") && out.contains("\\udb40\\udc01"), "{out}");
        assert!(out.contains("é😀"), "{out}");
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, v);
        assert_eq!(json(&serde_json::json!({"a": "b"})), r#"{"a":"b"}"#);
    }
}

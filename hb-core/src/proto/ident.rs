//! Which characters a name may hold: peer ids, services and label keys are printed in
//! events, logs and terminals, and compared by people. A character that is not shown as
//! itself could forge or disguise them: control characters (a newline prints a fake
//! line), format characters (U+202E reverses what follows, U+200B and U+FEFF are
//! invisible), separators (U+2028, NBSP: a space that is not one), unassigned code
//! points, and the fullwidth and halfwidth forms (`ｗｅｂ` beside `web`). Letters, marks,
//! digits, punctuation and symbols of any script remain; look-alikes across scripts
//! (Cyrillic `а` for Latin `a`) are not caught here.

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// The Halfwidth and Fullwidth Forms block: compatibility look-alikes of ASCII and of
/// CJK punctuation.
const WIDTH_FORMS: std::ops::RangeInclusive<char> = '\u{FF00}'..='\u{FFEF}';

/// True when `c` may appear in a name.
pub fn is_name_char(c: char) -> bool {
    let group = c.general_category_group();
    !matches!(group, GeneralCategoryGroup::Other | GeneralCategoryGroup::Separator) && !WIDTH_FORMS.contains(&c)
}

/// True when every character of `s` may appear in a name.
pub fn is_name(s: &str) -> bool {
    // Every beat's names are checked: ASCII (the common case) without the Unicode tables.
    // Its graphic characters are exactly those of the allowed groups.
    if s.is_ascii() {
        return s.bytes().all(|b| b.is_ascii_graphic());
    }
    s.chars().all(is_name_char)
}

/// What a name may hold, for error messages.
pub const NAME_CHARS: &str = "letters, marks, digits, punctuation or symbols (no spaces, control, format or \
     separator characters, unassigned code points or fullwidth forms)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_shortcut_agrees_with_the_unicode_groups() {
        for b in 0u8..128 {
            let c = char::from(b);
            assert_eq!(is_name(c.encode_utf8(&mut [0; 4])), is_name_char(c), "{b:#x}");
        }
    }

    #[test]
    fn names_refuse_what_is_not_shown_as_itself() {
        for ok in ["web-1.eu", "checkout", "zone", "café", "服务-1", "α/β:1@host", "a+b=c", "x_y~z"] {
            assert!(is_name(ok), "{ok:?}");
        }
        for bad in [
            "a b",         // ASCII space
            "a\u{a0}b",    // NBSP
            "a\nb",        // newline
            "a\u{1b}[31m", // ESC
            "evil\u{202e}gnp.exe",
            "zero\u{200b}width",
            "\u{feff}bom",
            "line\u{2028}sep",
            "para\u{2029}sep",
            "\u{ff57}\u{ff45}\u{ff42}", // fullwidth "web"
            "half\u{ff71}",             // halfwidth katakana
            "\u{e000}private",
            "\u{378}unassigned",
            "soft\u{ad}hyphen",
        ] {
            assert!(!is_name(bad), "{bad:?}");
        }
    }
}

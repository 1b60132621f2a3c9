//! Rules for user-supplied text that is shown to others: names and messages.
//!
//! Telegram refuses names and messages that would render as nothing (only spaces and
//! invisible characters) and does not let a name reorder the text around it. Here:
//! - [`has_visible`]: at least one character that renders (not white space, not one of the
//!   invisible characters below);
//! - [`clean_name`]: control characters, line and paragraph separators and bidirectional
//!   formatting characters (overrides, embeddings, isolates, marks) are removed and the rest
//!   trimmed, so a name can neither
//!   break lines nor turn the text after it right-to-left.

/// Characters that take no space and show nothing (beyond `char::is_whitespace`): soft
/// hyphen, grapheme joiner, the Hangul fillers, Mongolian and variation selectors, zero-width
/// spaces and joiners, word joiner and invisible operators, the byte-order mark, the braille
/// blank, musical-notation format characters and Unicode tags.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || is_bidi_control(c)
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2065}'
            | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{2800}'
            | '\u{1D159}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}')
}

/// Bidirectional formatting: marks (LRM, RLM, ALM), embeddings and overrides, isolates.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// True when some character of `s` renders.
pub fn has_visible(s: &str) -> bool {
    s.chars().any(|c| !is_invisible(c))
}

/// A name as it is stored: without control or bidirectional formatting characters, trimmed.
pub fn clean_name(s: &str) -> String {
    let kept: String = s.chars().filter(|&c| !c.is_control() && !is_bidi_control(c) && !matches!(c, '\u{2028}' | '\u{2029}')).collect();
    kept.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_only_text_has_nothing_visible() {
        for blank in ["", "   ", "\u{200b}\u{200b}", "\u{2060}", "\u{3164}", " \u{200e} ", "\u{feff}\n\t", "\u{2800}", "\u{e0041}"] {
            assert!(!has_visible(blank), "{blank:?}");
        }
        for shown in ["a", " x ", "\u{200b}b", "😀", "я", "\u{2066}z\u{2069}"] {
            assert!(has_visible(shown), "{shown:?}");
        }
    }

    #[test]
    fn names_lose_controls_and_direction_overrides() {
        assert_eq!(clean_name("Ev\u{202e}il\u{7}"), "Evil");
        assert_eq!(clean_name("  Bob\n\u{2067}"), "Bob");
        assert_eq!(clean_name("Al\u{2028}ice\u{2029}"), "Alice");
        // joiners inside emoji sequences stay
        assert_eq!(clean_name("👩\u{200d}💻 Ann"), "👩\u{200d}💻 Ann");
    }
}

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

/// `unix` seconds as "YYYY-MM-DD at HH:MM UTC" (the proleptic Gregorian calendar; civil
/// date from day number after Howard Hinnant's `civil_from_days`).
pub fn utc_date_time(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} at {:02}:{:02} UTC", secs / 3600, secs % 3600 / 60)
}

#[cfg(test)]
mod date_tests {
    #[test]
    fn utc_date_time_known_answers() {
        assert_eq!(super::utc_date_time(0), "1970-01-01 at 00:00 UTC");
        assert_eq!(super::utc_date_time(951_782_400), "2000-02-29 at 00:00 UTC");
        assert_eq!(super::utc_date_time(1_795_651_200 + 8 * 3600 + 6 * 60), "2026-11-26 at 08:06 UTC");
        assert_eq!(super::utc_date_time(-1), "1969-12-31 at 23:59 UTC");
    }
}

//! Numbers a record's data cannot be stored with. The data is jsonb, whose numbers are Postgres
//! `numeric`: at most 131,072 digits before the decimal point and 16,383 after. One such number
//! fails its whole batch's COPY, every time the record is sent again, so it is refused up front.

/// Most digits before the decimal point a `numeric` holds.
const MAX_INTEGER_DIGITS: i64 = 131_072;
/// Most digits after it.
const MAX_SCALE: i64 = 16_383;
/// A number literal shorter than this, without an exponent, is always storable.
const SHORT_LITERAL: usize = 16_000;

/// The first number in a JSON text that Postgres cannot store: its byte offset, and why.
pub(crate) fn unstorable_number(json: &str) -> Option<(usize, String)> {
    let bytes = json.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = after_string(bytes, i + 1),
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                if let Some(reason) = number_problem(&json[start..i]) {
                    return Some((start, reason));
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The index just past the closing quote of a string whose content starts at `i`.
fn after_string(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
            None => break,
            Some(at) if bytes[i + at] == b'\\' => i += at + 2,
            Some(at) => return i + at + 1,
        }
    }
    bytes.len()
}

/// Why a valid JSON number literal does not fit `numeric`, if it does not.
fn number_problem(literal: &str) -> Option<String> {
    let exponent_at = literal.find(['e', 'E']);
    if exponent_at.is_none() && literal.len() < SHORT_LITERAL {
        return None;
    }
    let shown = clip(literal);
    let (mantissa, exponent) = match exponent_at {
        Some(at) => match literal[at + 1..].parse::<i64>() {
            Ok(exponent) => (&literal[..at], exponent),
            Err(_) => {
                return Some(format!(
                    "the number {shown} has an exponent Postgres cannot store"
                ));
            }
        },
        None => (literal, 0),
    };
    let mantissa = mantissa.trim_start_matches('-');
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let scale = (fraction.len() as i64).saturating_sub(exponent);
    if scale > MAX_SCALE {
        return Some(format!(
            "the number {shown} has {scale} digits after the decimal point; Postgres stores at most {MAX_SCALE}"
        ));
    }
    let significant = integer.trim_start_matches('0');
    let integer_digits = if significant.is_empty() {
        let zeros = fraction.len() - fraction.trim_start_matches('0').len();
        if zeros == fraction.len() {
            return None;
        }
        exponent.saturating_sub(zeros as i64)
    } else {
        (significant.len() as i64).saturating_add(exponent)
    };
    (integer_digits > MAX_INTEGER_DIGITS).then(|| {
        format!(
            "the number {shown} has {integer_digits} digits before the decimal point; Postgres stores at most {MAX_INTEGER_DIGITS}"
        )
    })
}

fn clip(literal: &str) -> String {
    if literal.len() <= 40 {
        literal.to_owned()
    } else {
        // A number literal is ASCII.
        format!("{}…", &literal[..40])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each pair was checked against Postgres 15: `SELECT '{"n": N}'::jsonb`.
    #[test]
    fn the_limits_are_postgres_own() {
        for (number, storable) in [
            ("1e131071", true),
            ("1e131072", false),
            ("0.5e131072", true),
            ("123e131070", false),
            ("10e131071", false),
            ("0.01e131073", true),
            ("1e-16383", true),
            ("1e-16384", false),
            ("1.0e-16382", true),
            ("1.0e-16383", false),
            ("100e-16385", false),
            ("0e200000", true),
            ("0e-16384", false),
            ("-1E+131072", false),
            ("1e99999999999999999999", false),
            ("12.5", true),
            ("-0", true),
        ] {
            let json = format!(r#"{{"s": "1e999999 in a string", "n": {number}}}"#);
            assert_eq!(
                unstorable_number(&json).is_none(),
                storable,
                "{number}: {:?}",
                unstorable_number(&json)
            );
        }
    }

    #[test]
    fn strings_are_skipped_escapes_and_all() {
        assert_eq!(
            unstorable_number(r#"{"a": "x\"1e999999\\", "b": [1, 2.5e3]}"#),
            None
        );
        let json = r#"{"a": "\\", "b": {"c": [true, 1e999999]}}"#;
        let (at, why) = unstorable_number(json).unwrap();
        assert_eq!(&json[at..at + 8], "1e999999");
        assert!(why.contains("1e999999"), "{why}");
        assert_eq!(unstorable_number(r#"{"a": "unterminated\"#), None);
        let long = format!(r#"{{"n": 0.{}}}"#, "1".repeat(16_384));
        assert!(unstorable_number(&long).is_some());
    }
}

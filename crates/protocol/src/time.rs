//! Timestamp conversions between the native dialect (RFC 3339 strings) and the Airbyte dialect
//! and Stripe (epoch milliseconds, epoch seconds).

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// The current time as the native protocol writes it: RFC 3339, UTC, millisecond precision.
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 timestamp into epoch milliseconds.
pub fn rfc3339_to_epoch_ms(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Formats epoch milliseconds as RFC 3339 with millisecond precision.
pub fn epoch_ms_to_rfc3339(ms: i64) -> Option<String> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Formats epoch seconds as RFC 3339 with second precision (the form ranges use).
pub fn unix_to_rfc3339(secs: i64) -> Option<String> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Parses an RFC 3339 timestamp into epoch seconds (fractions truncated toward the past).
pub fn rfc3339_to_unix(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip() {
        let ms = 1_713_614_400_123;
        let text = epoch_ms_to_rfc3339(ms).unwrap();
        assert_eq!(text, "2024-04-20T12:00:00.123Z");
        assert_eq!(rfc3339_to_epoch_ms(&text), Some(ms));
    }

    #[test]
    fn seconds_round_trip() {
        assert_eq!(unix_to_rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_to_unix("2019-08-21T20:19:01.000Z"),
            Some(1_566_418_741)
        );
        assert_eq!(rfc3339_to_unix("not a time"), None);
    }
}

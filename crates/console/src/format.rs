//! Numbers and durations as the pages show them.

/// `1234567` → `1,234,567`.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// A duration in its two largest units: `42 s`, `3 min 5 s`, `2 h 10 min`, `4 d 2 h`.
pub fn age(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 1.0 {
        return "< 1 s".to_owned();
    }
    let s = seconds as u64;
    let (d, h, m, s) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// Records per second, rounded.
pub fn rate(per_second: f64) -> String {
    if per_second.is_finite() && per_second > 0.0 {
        format!("{}/s", count(per_second.round() as i64))
    } else {
        "—".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(-1234567), "-1,234,567");
    }

    #[test]
    fn ages_use_two_units() {
        assert_eq!(age(0.2), "< 1 s");
        assert_eq!(age(42.9), "42 s");
        assert_eq!(age(185.0), "3 min 5 s");
        assert_eq!(age(7_800.0), "2 h 10 min");
        assert_eq!(age(352_800.0), "4 d 2 h");
        assert_eq!(rate(0.0), "—");
        assert_eq!(rate(1234.4), "1,234/s");
    }
}

//! The bounds of a run's time limit, one rule for the CLI, the HTTP bodies and the runtime.

/// The longest time limit, in seconds (a week): a longer run is better left to a rerun, which
/// continues where it stopped. Beyond what a clock can add, a limit would panic.
pub const MAX_TIME_LIMIT_SECS: f64 = 604_800.0;

/// Whether `secs` can be a time limit: above zero and at most [`MAX_TIME_LIMIT_SECS`].
pub fn is_time_limit(secs: f64) -> bool {
    secs.is_finite() && secs > 0.0 && secs <= MAX_TIME_LIMIT_SECS
}

/// A time limit in seconds, as [`is_time_limit`] takes it.
pub fn time_limit_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if is_time_limit(secs) => Ok(secs),
        _ => Err(format!(
            "{text:?} is not a number of seconds above 0 and at most {MAX_TIME_LIMIT_SECS}"
        )),
    }
}

/// The largest request body a route of `sync-engine serve` takes (axum's default is 2 MB).
/// sync-service sizes its webhook batches by it: one webhook event may be 2 MB, so a batch of
/// them needs more.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

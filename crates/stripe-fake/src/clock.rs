use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The simulator's notion of "now": an anchor (the configured `now`, or the real time at start)
/// that advances with the real clock, so a pinned anchor gives reproducible data while new
/// objects and events still get increasing timestamps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    anchor: i64,
    started: Instant,
}

impl Clock {
    pub(crate) fn new(anchor: Option<i64>) -> Clock {
        Clock {
            anchor: anchor.unwrap_or_else(real_unix_now),
            started: Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> i64 {
        self.anchor + self.started.elapsed().as_secs() as i64
    }

    /// The anchor: generated history ends here.
    pub(crate) fn anchor(&self) -> i64 {
        self.anchor
    }
}

/// Wall-clock seconds since the epoch (webhook signatures are checked against real time).
pub fn real_unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

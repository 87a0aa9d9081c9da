use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The simulator's notion of "now": an anchor (the configured `now`, or the real time at start)
/// that advances with the real clock, so a pinned anchor gives reproducible data while new
/// objects and events still get increasing timestamps. Tests can stop it (to make things happen
/// within one second on purpose) and move it forward.
#[derive(Debug)]
pub(crate) struct Clock {
    anchor: i64,
    started: Instant,
    state: Mutex<ClockState>,
}

#[derive(Debug, Clone, Copy)]
struct ClockState {
    /// Seconds added to the running clock (forward moves, time spent stopped subtracted).
    offset: i64,
    /// The second the clock is stopped at.
    stopped_at: Option<i64>,
}

impl Clock {
    pub(crate) fn new(anchor: Option<i64>) -> Clock {
        Clock {
            anchor: anchor.unwrap_or_else(real_unix_now),
            started: Instant::now(),
            state: Mutex::new(ClockState {
                offset: 0,
                stopped_at: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn running(&self, offset: i64) -> i64 {
        self.anchor + self.started.elapsed().as_secs() as i64 + offset
    }

    pub(crate) fn now(&self) -> i64 {
        let state = *self.state();
        state
            .stopped_at
            .unwrap_or_else(|| self.running(state.offset))
    }

    /// Stops the clock at the current second; returns it.
    pub(crate) fn stop(&self) -> i64 {
        let mut state = self.state();
        let now = state
            .stopped_at
            .unwrap_or_else(|| self.running(state.offset));
        state.stopped_at = Some(now);
        now
    }

    /// Starts a stopped clock again from the second it shows.
    pub(crate) fn resume(&self) -> i64 {
        let mut state = self.state();
        if let Some(at) = state.stopped_at.take() {
            state.offset = at - self.running(0);
        }
        self.running(state.offset)
    }

    /// Moves the clock forward (it stays stopped if it was).
    pub(crate) fn advance(&self, secs: i64) -> i64 {
        let mut state = self.state();
        let secs = secs.max(0);
        match &mut state.stopped_at {
            Some(at) => {
                *at += secs;
                *at
            }
            None => {
                state.offset += secs;
                self.running(state.offset)
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_resumes_and_advances() {
        let clock = Clock::new(Some(1_000));
        let at = clock.stop();
        assert_eq!(clock.now(), at);
        assert_eq!(clock.advance(5), at + 5);
        assert_eq!(clock.now(), at + 5);
        let resumed = clock.resume();
        assert!(resumed >= at + 5 && resumed <= at + 6, "{resumed}");
        assert!(clock.advance(10) >= at + 15);
    }
}

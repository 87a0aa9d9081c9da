//! The one retry pacing of every crate (the Stripe client, the destination's flushes,
//! stripe-sync's supervisor): waits from `first` doubling to `ceiling`, each a random 50–100 %
//! of that nominal wait, so clients that failed together do not retry together. backon's
//! iterator, with its jitter (between a wait and twice it) applied to half the nominal.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// The waits before each retry, without end: the caller counts its attempts.
pub fn backoff(first: Duration, ceiling: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::new()
        .with_min_delay(first / 2)
        .with_max_delay(ceiling / 2)
        .without_max_times()
        .with_jitter()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_to_the_ceiling_each_half_to_all_of_its_nominal() {
        let waits: Vec<_> = backoff(Duration::from_millis(500), Duration::from_secs(30))
            .take(20)
            .collect();
        for (i, wait) in waits.iter().enumerate() {
            let nominal = (0.5 * 2f64.powi(i as i32)).min(30.0);
            let secs = wait.as_secs_f64();
            assert!(
                (nominal * 0.5..=nominal).contains(&secs),
                "wait {i}: {secs}s, nominal {nominal}s"
            );
        }
    }
}

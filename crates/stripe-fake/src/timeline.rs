//! `created` timestamps of generated objects: spread from 2019 to now, with deliberate clusters
//! of objects sharing one second at the places a pager tends to split a range (midpoints,
//! quarter points, a year boundary, a UTC midnight, an hour boundary, the newest second), and
//! one cluster larger than a page of 100 so paging inside a single second is exercised.

use rand::RngExt;
use rand::rngs::StdRng;

/// 2019-01-01T00:00:00Z: the oldest generated object.
pub(crate) const HISTORY_START: i64 = 1_546_300_800;
/// 2022-01-01T00:00:00Z.
const YEAR_BOUNDARY: i64 = 1_640_995_200;
const DAY: i64 = 86_400;
/// Objects and events younger than this have history events (some older than the 30 days
/// `/v1/events` keeps, so the retention limit is visible).
pub(crate) const RECENT_WINDOW: i64 = 40 * DAY;
/// The newest generated object is this much older than the anchor, so objects created through
/// the API are strictly newer than all generated ones.
const NEWEST_AGE: i64 = 120;

/// `n` timestamps in ascending order (the creation order).
pub(crate) fn created_timestamps(rng: &mut StdRng, n: usize, now: i64) -> Vec<i64> {
    let end = (now - NEWEST_AGE).max(HISTORY_START + 1);
    let span = end - HISTORY_START;
    let mut out: Vec<i64> = Vec::with_capacity(n);
    if n >= 4 {
        let clustered_at_most = n / 2;
        let clamp = |v: usize, lo: usize, hi: usize| v.clamp(lo, hi);
        let mut clusters = vec![
            (HISTORY_START + span / 2, clamp(n / 25, 2, 40)),
            (YEAR_BOUNDARY.min(end), clamp(n / 40, 2, 30)),
            (((now - 10 * DAY) / DAY) * DAY, clamp(n / 50, 2, 25)),
            (((now - 2 * DAY) / 3600) * 3600, clamp(n / 80, 2, 20)),
            (HISTORY_START + span / 4, clamp(n / 60, 2, 20)),
            (end, clamp(n / 100, 2, 12)),
        ];
        if n >= 400 {
            clusters.push((HISTORY_START + span / 4 * 3, (n / 6).min(150)));
        }
        for (second, size) in clusters {
            let second = second.clamp(HISTORY_START, end);
            let size = size.min(clustered_at_most.saturating_sub(out.len()));
            out.extend(std::iter::repeat_n(second, size));
        }
    }
    let recent_start = (now - RECENT_WINDOW).max(HISTORY_START);
    while out.len() < n {
        let t = if rng.random_bool(0.08) {
            rng.random_range(recent_start..=end)
        } else {
            rng.random_range(HISTORY_START..=end)
        };
        out.push(t);
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn clusters_share_a_second_and_order_is_ascending() {
        let now = 1_800_000_000;
        let mut rng = StdRng::seed_from_u64(3);
        let ts = created_timestamps(&mut rng, 1000, now);
        assert_eq!(ts.len(), 1000);
        assert!(ts.windows(2).all(|w| w[0] <= w[1]));
        let mut best = 0;
        let mut run = 1;
        for w in ts.windows(2) {
            run = if w[0] == w[1] { run + 1 } else { 1 };
            best = best.max(run);
        }
        assert!(best > 100, "largest same-second cluster is {best}");
        assert!(ts.iter().all(|&t| (HISTORY_START..now).contains(&t)));
        assert!(created_timestamps(&mut rng, 0, now).is_empty());
        assert_eq!(created_timestamps(&mut rng, 3, now).len(), 3);
    }
}

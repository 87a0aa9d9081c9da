//! Splitting a stream's `created` range so that many pages are in flight at once (pure).
//!
//! Stripe lists newest first. After a full page of a range whose oldest object was created at
//! second `t` (and is the cursor), what is left is `[gte, t + 1)` read after the cursor: the
//! objects of second `t` not yet seen, and everything older. That remainder can be cut into
//! independent pieces: `[gte, b1)`, `[b1, b2)`, …, each read from its start without a cursor,
//! and a newest piece `[bn, t + 1)` that keeps the cursor, so objects sharing the boundary
//! second are neither lost nor read twice (a piece of its own for that second would cost a
//! request for the few objects, usually none, it holds). Dense ranges are cut (by the density
//! the page showed); sparse ones are not.

use crate::state::Range;

/// The pages the remainder probably holds, from the density the last page showed.
pub(crate) fn estimated_pages(range: &Range, oldest: i64, page_len: usize, limit: usize) -> f64 {
    let covered = (range.lt - oldest).max(1) as f64;
    let density = page_len as f64 / covered;
    let remaining_seconds = (oldest - range.gte).max(0) as f64;
    density * remaining_seconds / limit.max(1) as f64
}

/// The remainder of `range` after a full page ending with `cursor` created at `oldest`, cut
/// into at most `max_pieces` ranges (the newest, ending at `oldest + 1`, keeps the cursor).
pub(crate) fn remainder(
    range: &Range,
    oldest: i64,
    cursor: String,
    max_pieces: usize,
) -> Vec<Range> {
    let oldest = oldest.clamp(range.gte, range.lt - 1);
    let lt = oldest + 1;
    let older_seconds = oldest - range.gte;
    let pieces = max_pieces.min(older_seconds.max(1) as usize).max(1) as i64;
    let mut bounds: Vec<i64> = (0..pieces)
        .map(|i| range.gte + older_seconds * i / pieces)
        .collect();
    bounds.dedup();
    bounds
        .iter()
        .enumerate()
        .map(|(i, &gte)| match bounds.get(i + 1) {
            Some(&next) => Range {
                gte,
                lt: next,
                cursor: None,
            },
            None => Range {
                gte,
                lt,
                cursor: Some(cursor.clone()),
            },
        })
        .collect()
}

/// A range not yet read, cut into at most `pieces` ranges of equal time: the first round of
/// a stream, before any page has shown its density.
pub(crate) fn even(range: &Range, pieces: usize) -> Vec<Range> {
    let seconds = range.lt - range.gte;
    if range.cursor.is_some() || seconds < 2 {
        return vec![range.clone()];
    }
    let pieces = pieces.clamp(1, seconds as usize) as i64;
    let mut bounds: Vec<i64> = (0..=pieces)
        .map(|i| range.gte + seconds * i / pieces)
        .collect();
    bounds.dedup();
    bounds
        .windows(2)
        .map(|w| Range {
            gte: w[0],
            lt: w[1],
            cursor: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(pieces: &[Range], gte: i64, lt: i64) {
        let mut at = gte;
        for p in pieces {
            assert_eq!(p.gte, at, "{pieces:?}");
            assert!(p.lt > p.gte, "{pieces:?}");
            at = p.lt;
        }
        assert_eq!(at, lt, "{pieces:?}");
    }

    #[test]
    fn remainder_covers_the_rest_exactly_and_keeps_the_cursor_on_the_newest_piece() {
        let range = Range {
            gte: 100,
            lt: 1000,
            cursor: None,
        };
        for max in [1, 2, 3, 8, 50, 5000] {
            let pieces = remainder(&range, 700, "cus_x".into(), max);
            covers(&pieces, 100, 701);
            assert!(pieces.len() <= max.max(1));
            let last = pieces.last().unwrap();
            assert_eq!(last.cursor.as_deref(), Some("cus_x"));
            assert!(
                pieces[..pieces.len() - 1]
                    .iter()
                    .all(|p| p.cursor.is_none())
            );
            assert_eq!(last.lt, 701);
            if max > 1 {
                assert_eq!(pieces.len(), max.min(600), "{pieces:?}");
                assert!(last.gte < 700, "the boundary second is no piece of its own");
            }
        }
    }

    #[test]
    fn a_page_within_one_second_keeps_paging_by_cursor() {
        let range = Range {
            gte: 500,
            lt: 501,
            cursor: Some("a".into()),
        };
        assert_eq!(
            remainder(&range, 500, "b".into(), 10),
            vec![Range {
                gte: 500,
                lt: 501,
                cursor: Some("b".into())
            }]
        );
    }

    #[test]
    fn density_drives_the_estimate() {
        let range = Range {
            gte: 0,
            lt: 1000,
            cursor: None,
        };
        // 100 objects in the newest 10 seconds: about 99 pages remain.
        assert!((estimated_pages(&range, 990, 100, 100) - 99.0).abs() < 1.0);
        // 100 objects over 900 seconds: sparse, about a page left.
        assert!(estimated_pages(&range, 100, 100, 100) < 0.2);
    }

    #[test]
    fn an_even_cut_covers_the_range_and_keeps_a_cursor_whole() {
        let range = Range {
            gte: 100,
            lt: 1000,
            cursor: None,
        };
        for n in [0, 1, 2, 7, 900, 5000] {
            let pieces = even(&range, n);
            covers(&pieces, 100, 1000);
            assert_eq!(pieces.len(), n.clamp(1, 900), "{n}");
        }
        let resumed = Range {
            cursor: Some("cus_x".into()),
            ..range.clone()
        };
        assert_eq!(even(&resumed, 8), vec![resumed]);
        let one_second = Range {
            gte: 5,
            lt: 6,
            cursor: None,
        };
        assert_eq!(even(&one_second, 8), vec![one_second]);
    }
}

//! How big each part of a multipart upload is, within the provider's
//! limits ([`super::Limits`]). S3 allows 10,000 parts of 5 MiB to 5 GiB,
//! all but the last at least 5 MiB, and they need not be equal (Azure:
//! 50,000 blocks of up to 4,000 MiB). Fixed parts would make memory and the largest object rise
//! together (10,000 x 8 MiB is 78 GiB), so the size grows with the upload:
//! the first `part_doubling` parts are `part_size`, and the size doubles
//! after every `part_doubling` parts more, up to 5 GiB.
//!
//! With the defaults (8 MiB, 900) the first 7 GiB go in 8 MiB parts, and
//! 10,000 parts reach past S3's 5 TiB limit. Every part up to part `n` is
//! at most the one being filled, so an upload holds at most
//! `(upload_streams + 1) x size(n)`; once it has sent `S` bytes past the
//! first step, `size(n) <= 2 x S / part_doubling`. Memory per upload is
//! therefore at most `3 x max(part_size, 2 x S / part_doubling)` with the
//! default 2 streams: 24 MiB until 7 GiB at the defaults, 3 x S / 450
//! beyond (68 MiB at 10 GiB, 15 GiB, three 5 GiB parts, near 5 TiB). `part_doubling = 10000` never
//! grows (equal parts, for stores that need them, such as R2).

/// The sizes of an upload's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSchedule {
    /// The first part's size (`part_size`).
    pub first: u64,
    /// Parts between two doublings (`part_doubling`), at least 1.
    pub every: u64,
    /// The provider's largest part ([`super::Limits::max_part_size`]).
    pub max_part_size: u64,
    /// The provider's most parts ([`super::Limits::max_parts`]).
    pub max_parts: u64,
}

impl PartSchedule {
    /// The size of part `index` (from 0).
    pub fn size(&self, index: u64) -> u64 {
        let steps = index / self.every.max(1);
        // 5 MiB doubled 10 times is 5 GiB: more steps change nothing.
        let shift = steps.min(32) as u32;
        self.first
            .saturating_mul(1u64 << shift)
            .min(self.max_part_size)
    }

    /// The largest object that the most parts make.
    pub fn largest_object(&self) -> u64 {
        let (mut total, mut i) = (0u64, 0u64);
        let (max_parts, max_part_size) = (self.max_parts, self.max_part_size);
        while i < max_parts {
            let size = self.size(i);
            let run = if size >= max_part_size {
                max_parts - i
            } else {
                (self.every - i % self.every).min(max_parts - i)
            };
            total = total.saturating_add(size.saturating_mul(run));
            i += run;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::s3::{
        DEFAULT_PART_DOUBLING, DEFAULT_PART_SIZE, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE,
    };

    /// S3's schedule (the limits of its provider).
    fn sched(first: u64, every: u64) -> PartSchedule {
        PartSchedule {
            first,
            every,
            max_part_size: MAX_PART_SIZE,
            max_parts: MAX_PARTS,
        }
    }

    const TIB: u64 = 1 << 40;

    /// The sum of the sizes, part by part (what `largest_object` shortens).
    fn summed(s: &PartSchedule) -> u64 {
        (0..MAX_PARTS).map(|i| s.size(i)).sum()
    }

    #[test]
    fn reaches_five_tib_within_10000_parts_at_every_part_size() {
        for first in [
            MIN_PART_SIZE,
            DEFAULT_PART_SIZE,
            64 << 20,
            525 << 20,
            MAX_PART_SIZE,
        ] {
            let s = sched(first, DEFAULT_PART_DOUBLING);
            assert!(summed(&s) >= 5 * TIB, "{first}: {}", summed(&s));
            assert_eq!(s.largest_object(), summed(&s), "{first}");
        }
    }

    #[test]
    fn parts_stay_within_s3s_limits_and_never_shrink() {
        for every in [1, 2, 7, DEFAULT_PART_DOUBLING, 9_999, MAX_PARTS] {
            for first in [MIN_PART_SIZE, DEFAULT_PART_SIZE, 3 << 30, MAX_PART_SIZE] {
                let s = sched(first, every);
                let mut last = 0;
                for i in 0..MAX_PARTS {
                    let n = s.size(i);
                    assert!(
                        (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&n),
                        "{s:?} {i}: {n}"
                    );
                    assert!(n >= last, "{s:?} {i}: shrank");
                    last = n;
                }
                assert_eq!(s.largest_object(), summed(&s), "{s:?}");
            }
        }
    }

    #[test]
    fn the_default_schedule() {
        let s = sched(DEFAULT_PART_SIZE, DEFAULT_PART_DOUBLING);
        assert_eq!(s.size(0), 8 << 20);
        assert_eq!(s.size(899), 8 << 20);
        assert_eq!(s.size(900), 16 << 20);
        assert_eq!(s.size(1800), 32 << 20);
        assert_eq!(s.size(9_999), MAX_PART_SIZE);
        // Fixed parts: never grows.
        let fixed = sched(DEFAULT_PART_SIZE, MAX_PARTS);
        assert_eq!(fixed.size(9_999), 8 << 20);
        assert_eq!(fixed.largest_object(), 10_000 * (8 << 20));
    }

    /// Another provider's limits (Azure's: 50,000 blocks of at most
    /// 4,000 MiB) bound the schedule the same way.
    #[test]
    fn the_providers_limits_bound_the_parts() {
        let azure = |first, every| PartSchedule {
            first,
            every,
            max_part_size: 4000 << 20,
            max_parts: 50_000,
        };
        for every in [1, 900, 50_000] {
            for first in [MIN_PART_SIZE, DEFAULT_PART_SIZE, 4000 << 20] {
                let s = azure(first, every);
                let sizes: Vec<u64> = (0..s.max_parts).map(|i| s.size(i)).collect();
                assert!(sizes.iter().all(|&n| n <= 4000 << 20), "{s:?}");
                assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{s:?}");
                assert_eq!(s.largest_object(), sizes.iter().sum::<u64>(), "{s:?}");
            }
        }
        // Growing parts take an upload past 5 TiB within 50,000 blocks.
        assert!(azure(DEFAULT_PART_SIZE, DEFAULT_PART_DOUBLING).largest_object() > 5 << 40);
    }

    /// The memory bound of the module's header: the part being filled is
    /// at most max(part_size, 2 x the bytes sent before it / part_doubling).
    #[test]
    fn part_size_is_bounded_by_the_size_reached() {
        for every in [1, 2, DEFAULT_PART_DOUBLING] {
            for first in [MIN_PART_SIZE, DEFAULT_PART_SIZE] {
                let s = sched(first, every);
                let mut sent = 0u64;
                for i in 0..MAX_PARTS {
                    let n = s.size(i);
                    assert!(n <= first.max(2 * sent / every), "{s:?} part {i}");
                    sent += n;
                }
            }
        }
    }
}

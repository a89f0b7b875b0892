//! Workload pacing shared by every system's clients: when the next operation is due (a mean
//! rate with uniform jitter) and which kind it is (a weighted draw). Both draw from the
//! client node's own random stream, so a fault schedule never reshuffles the workload.
//!
//! Depends on: nothing of the crate (a random generator is passed in).

use rand::Rng;

/// The gap before a client's next operation at `ops_per_s` on average: uniform in
/// [mean/2, 3 mean/2], never zero (a zero rate counts as one per second).
pub fn interval_ns(rng: &mut impl Rng, ops_per_s: u32) -> u64 {
    let mean = 1_000_000_000 / u64::from(ops_per_s.max(1));
    rng.gen_range(mean / 2..=mean + mean / 2).max(1)
}

/// Draws an index with probability proportional to its weight; None when every weight is
/// zero (nothing is drawn from `rng` then).
pub fn pick_weighted(rng: &mut impl Rng, weights: &[u32]) -> Option<usize> {
    let total: u32 = weights.iter().sum();
    if total == 0 {
        return None;
    }
    let mut pick = rng.gen_range(0..total);
    let mut kind = 0;
    while pick >= weights[kind] {
        pick -= weights[kind];
        kind += 1;
    }
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn weighted_draw_skips_zero_weights_and_stays_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut counts = [0u32; 4];
        for _ in 0..1000 {
            counts[pick_weighted(&mut rng, &[2, 0, 1, 0]).unwrap()] += 1;
        }
        assert_eq!((counts[1], counts[3]), (0, 0));
        assert!(counts[0] > counts[2] && counts[2] > 0, "{counts:?}");
        assert_eq!(pick_weighted(&mut rng, &[0, 0]), None);
    }

    #[test]
    fn interval_is_within_half_a_mean_of_the_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..200 {
            let gap = interval_ns(&mut rng, 10);
            assert!((50_000_000..=150_000_000).contains(&gap), "{gap}");
        }
        assert!(interval_ns(&mut rng, 0) >= 500_000_000);
    }
}

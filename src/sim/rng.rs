//! Seeded random streams and exact probabilities.
//!
//! One root seed is turned into independent, named ChaCha8 streams ("network", "disk",
//! "faults", "workload", "node/3"), so that a change in how often one stream is drawn (say, a
//! fault removed from the schedule) does not reshuffle any other stream. ChaCha8 is portable
//! and specified, unlike `StdRng`, so a seed means the same run on every machine and release.
//!
//! Depends on nothing else in the crate.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// SplitMix64 finaliser: a fixed, well-mixed 64-bit permutation.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The stream `name` of the run with root seed `seed`.
pub fn stream(seed: u64, name: &str) -> ChaCha8Rng {
    // FNV-1a over the name, then mixed with the seed into four independent words.
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    let mut key = [0u8; 32];
    let mut state = mix64(seed ^ mix64(h));
    for chunk in key.chunks_mut(8) {
        state = mix64(state);
        chunk.copy_from_slice(&state.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// The stream of one node.
pub fn node_stream(seed: u64, node: u32) -> ChaCha8Rng {
    stream(seed, &format!("node/{node}"))
}

/// An exact probability `num / den`. No floating point reaches a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(deny_unknown_fields)]
pub struct Ratio {
    pub num: u32,
    pub den: u32,
}

impl Ratio {
    pub const NEVER: Ratio = Ratio { num: 0, den: 1 };
    pub const ALWAYS: Ratio = Ratio { num: 1, den: 1 };

    pub fn new(num: u32, den: u32) -> Ratio {
        assert!(den > 0, "ratio denominator is zero");
        assert!(num <= den, "ratio above one");
        Ratio { num, den }
    }

    pub fn is_valid(self) -> bool {
        self.den > 0 && self.num <= self.den
    }

    /// True with probability num/den. Draws nothing when the outcome is certain, so a ratio
    /// of zero leaves the stream untouched.
    pub fn chance(self, rng: &mut ChaCha8Rng) -> bool {
        if self.num == 0 {
            return false;
        }
        if self.num >= self.den {
            return true;
        }
        rng.gen_range(0..self.den) < self.num
    }
}

impl Default for Ratio {
    fn default() -> Self {
        Ratio::NEVER
    }
}

/// A value uniformly drawn from `mean - jitter ..= mean + jitter`, never below `min`.
pub fn jittered(rng: &mut ChaCha8Rng, mean: u64, jitter: u64, min: u64) -> u64 {
    let value = if jitter == 0 {
        mean
    } else {
        let low = mean.saturating_sub(jitter);
        rng.gen_range(low..=mean.saturating_add(jitter))
    };
    value.max(min)
}

/// [`jittered`] with its bounds fixed once: the kernel draws a network delay per message
/// and an fsync latency per fsync from the same few ranges all run long. It draws exactly
/// what `jittered` draws, value for value (rand 0.8's single-sample inclusive integer range:
/// one `u64` per try, a widening multiply, the same rejection zone), with the range and
/// the zone computed once instead of per draw.
#[derive(Clone, Copy, Debug)]
pub struct Jitter {
    low: u64,
    /// Values in the range, 0 for the whole of `u64`; unused when `fixed`.
    range: u64,
    /// Rejection bound on the low word of the product.
    zone: u64,
    min: u64,
    /// `jitter == 0`: the mean, with nothing drawn.
    fixed: bool,
}

impl Jitter {
    pub fn new(mean: u64, jitter: u64, min: u64) -> Jitter {
        let low = mean.saturating_sub(jitter);
        let high = mean.saturating_add(jitter);
        let range = high.wrapping_sub(low).wrapping_add(1);
        Jitter {
            low: if jitter == 0 { mean } else { low },
            range,
            // Unused for the whole of `u64` (range 0), where rand draws without a zone.
            zone: range
                .checked_shl(range.leading_zeros())
                .map_or(0, |r| r.wrapping_sub(1)),
            min,
            fixed: jitter == 0,
        }
    }

    #[inline]
    pub fn draw(&self, rng: &mut ChaCha8Rng) -> u64 {
        use rand::RngCore;
        if self.fixed {
            return self.low.max(self.min);
        }
        if self.range == 0 {
            return rng.next_u64().max(self.min);
        }
        loop {
            let wide = u128::from(rng.next_u64()) * u128::from(self.range);
            if wide as u64 <= self.zone {
                return self.low.wrapping_add((wide >> 64) as u64).max(self.min);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn named_streams_are_independent_and_reproducible() {
        let a1 = stream(7, "network").next_u64();
        let a2 = stream(7, "network").next_u64();
        let b = stream(7, "disk").next_u64();
        let c = stream(8, "network").next_u64();
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_ne!(a1, c);
    }

    /// A precomputed `Jitter` draws what `jittered` draws, and leaves the stream where
    /// `jittered` leaves it, over ranges that reject often, never, or cover all of `u64`.
    #[test]
    fn jitter_draws_exactly_what_jittered_draws() {
        let cases = [
            (500_000, 250_000, 50_000),
            (2_000_000, 1_000_000, 1),
            (10, 0, 1),
            (0, 0, 5),
            (3, 5, 0),
            (u64::MAX / 2 + 7, u64::MAX / 2 - 3, 0),
            (u64::MAX / 2, u64::MAX, 0),
            (1 << 63, (1 << 63) - 1, 9),
        ];
        for (mean, jitter, min) in cases {
            let mut a = stream(3, "jitter");
            let mut b = stream(3, "jitter");
            let j = Jitter::new(mean, jitter, min);
            for _ in 0..2000 {
                assert_eq!(j.draw(&mut a), jittered(&mut b, mean, jitter, min));
            }
            assert_eq!(a.next_u64(), b.next_u64(), "{mean} {jitter} {min}");
        }
    }

    #[test]
    fn ratio_extremes_never_draw() {
        let mut rng = stream(1, "x");
        let mut untouched = stream(1, "x");
        assert!(!Ratio::NEVER.chance(&mut rng));
        assert!(Ratio::ALWAYS.chance(&mut rng));
        assert_eq!(rng.next_u64(), untouched.next_u64());
    }
}

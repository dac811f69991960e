//! Deterministic randomness that does not depend on call patterns.
//!
//! Two kinds of randomness drive the world:
//!
//! - **Counter-based noise** ([`hash`], [`unit()`], [`value_noise`]): a pure function of the
//!   seed, a device or site key and a time index. Cloud cover, house load and daily driving
//!   plans use it, so reading the world more or less often never changes what happens.
//! - **Streams** ([`SimRng`]): SplitMix64, seeded from the world seed and a key, for draws
//!   caused by calls (command latency, wake-up delay, plug-in decisions). Same calls in the
//!   same order give the same draws.
//!
//! Both are implemented here rather than taken from `rand`'s generators so that the
//! numbers do not change when `rand` changes its algorithms.

use rand::RngCore;

/// SplitMix64's finalizer: a strong 64-bit mixer.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Hashes a sequence of words into one (order matters).
pub fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x6A09_E667_F3BC_C908, |acc, &p| mix(acc ^ mix(p)))
}

/// FNV-1a of a string: stable keys for ids and vendor names.
pub fn hash_str(s: &str) -> u64 {
    s.bytes()
        .fold(0xCBF2_9CE4_8422_2325, |acc, b| (acc ^ u64::from(b)).wrapping_mul(0x100_0000_01B3))
}

/// A uniform number in `[0, 1)` from a hash.
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Smooth noise in `[0, 1)`: uniform values at knots every `period_secs`, blended with a
/// smoothstep so it has no jumps. `t_secs` is any time axis (e.g. Unix seconds).
pub fn value_noise(key: u64, t_secs: f64, period_secs: f64) -> f64 {
    let period = if period_secs > 0.0 { period_secs } else { 1.0 };
    let x = t_secs / period;
    let k = x.floor();
    let frac = x - k;
    // Knot indices fit in i64 for any plausible time; the cast wraps harmlessly otherwise.
    let k = k as i64;
    let a = unit(hash(&[key, k as u64]));
    let b = unit(hash(&[key, k.wrapping_add(1) as u64]));
    let s = frac * frac * (3.0 - 2.0 * frac);
    a + (b - a) * s
}

/// A small, reproducible random stream (SplitMix64).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    /// A stream from a seed.
    pub fn new(seed: u64) -> Self {
        Self { state: mix(seed) }
    }

    /// A stream for `key` under `seed` (e.g. a vendor name or device id).
    pub fn keyed(seed: u64, key: &str) -> Self {
        Self::new(hash(&[seed, hash_str(key)]))
    }

    /// A uniform number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// A uniform number in `[lo, hi)` (or `lo` when the range is empty).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        if hi > lo { lo + (hi - lo) * self.unit() } else { lo }
    }

    /// A standard normal sample (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

impl RngCore for SimRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible() {
        let mut a = SimRng::keyed(7, "tesla");
        let mut b = SimRng::keyed(7, "tesla");
        let mut c = SimRng::keyed(7, "enphase");
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn value_noise_is_continuous_and_bounded() {
        let mut prev = value_noise(3, 0.0, 600.0);
        for i in 1..10_000 {
            let v = value_noise(3, f64::from(i), 600.0);
            assert!((0.0..1.0).contains(&v));
            assert!((v - prev).abs() < 0.01, "jump at {i}");
            prev = v;
        }
    }
}

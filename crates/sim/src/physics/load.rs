//! House load: a base load shaped by a daily pattern with morning and evening peaks.

use crate::rng::{hash, value_noise};

fn bump(hour: f64, center: f64, width: f64) -> f64 {
    let d = (hour - center) / width;
    (-0.5 * d * d).exp()
}

/// The daily shape as a multiple of the base load (1.0 at night): a morning peak around
/// 07:00 (09:00 on weekends), a midday plateau and a larger evening peak around 19:00.
pub fn daily_profile(local_hour: f64, weekend: bool) -> f64 {
    let h = local_hour.rem_euclid(24.0);
    let morning = if weekend { bump(h, 9.0, 1.5) * 1.2 } else { bump(h, 7.0, 0.9) * 1.5 };
    let midday = if weekend { bump(h, 13.0, 3.0) * 0.8 } else { bump(h, 13.0, 3.0) * 0.3 };
    let evening = bump(h, 19.0, 1.6) * 2.5;
    1.0 + morning + midday + evening
}

/// House load in W (excluding EV charging and HVAC, which the world adds separately).
/// `noise` in `[0, 1)` scales it between 75% and 125% of the pattern.
pub fn house_load_w(base_w: f64, local_hour: f64, weekend: bool, noise: f64) -> f64 {
    let base = if base_w.is_finite() { base_w.max(0.0) } else { 0.0 };
    base * daily_profile(local_hour, weekend) * (0.75 + 0.5 * noise.clamp(0.0, 1.0))
}

/// Seeded noise for the house load of a site at Unix time `t_secs` (15-minute correlation),
/// in `[0, 1)`.
pub fn load_noise(site_key: u64, t_secs: f64) -> f64 {
    value_noise(hash(&[site_key, 0x10AD]), t_secs, 900.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn evening_peak_beats_night() {
        assert!(daily_profile(19.0, false) > 3.0);
        assert!(daily_profile(3.0, false) < 1.1);
        assert!(daily_profile(7.0, false) > daily_profile(10.5, false));
    }

    proptest! {
        #[test]
        fn load_is_positive_and_bounded(base in 0.0f64..2000.0, h in 0.0f64..24.0, n in 0.0f64..1.0, we: bool) {
            let w = house_load_w(base, h, we, n);
            prop_assert!(w >= 0.0);
            prop_assert!(w <= base * 6.0 + 1e-9);
        }
    }
}

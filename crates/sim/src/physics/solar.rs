//! PV output from a simple clear-sky model and seeded cloud cover.
//!
//! The sun's elevation comes from the textbook declination/hour-angle formulas (good to a
//! degree or so, which is plenty for a simulator). Times are *local solar* hours
//! (`UTC + longitude / 15`), so noon is when the sun is highest whatever the time zone.

use std::f64::consts::PI;

use crate::rng::{hash, unit, value_noise};

/// Solar declination in degrees for a day of the year (1–366).
pub fn declination_deg(day_of_year: u32) -> f64 {
    23.44 * (2.0 * PI * (284.0 + f64::from(day_of_year)) / 365.0).sin()
}

/// The sun's elevation above the horizon in degrees.
pub fn solar_elevation_deg(latitude: f64, day_of_year: u32, solar_hour: f64) -> f64 {
    let lat = latitude.clamp(-90.0, 90.0).to_radians();
    let dec = declination_deg(day_of_year).to_radians();
    let hour_angle = (15.0 * (solar_hour - 12.0)).to_radians();
    let sin_el = lat.sin() * dec.sin() + lat.cos() * dec.cos() * hour_angle.cos();
    sin_el.clamp(-1.0, 1.0).asin().to_degrees()
}

/// Sunrise and sunset in local solar hours; `None` during polar night, `(0, 24)` during
/// polar day.
pub fn sunrise_sunset(latitude: f64, day_of_year: u32) -> Option<(f64, f64)> {
    let lat = latitude.clamp(-89.9, 89.9).to_radians();
    let dec = declination_deg(day_of_year).to_radians();
    let cos_h0 = -lat.tan() * dec.tan();
    if cos_h0 >= 1.0 {
        return None;
    }
    if cos_h0 <= -1.0 {
        return Some((0.0, 24.0));
    }
    let h0 = cos_h0.acos().to_degrees() / 15.0;
    Some((12.0 - h0, 12.0 + h0))
}

/// PV output in W of an array with peak `capacity_w` at a sun position, with `cloudiness`
/// in `[0, 1]` (0 clear, 1 overcast: overcast still yields a quarter of clear sky, as
/// diffuse light does). Zero when the sun is below the horizon.
pub fn solar_output_w(
    capacity_w: f64,
    latitude: f64,
    day_of_year: u32,
    solar_hour: f64,
    cloudiness: f64,
) -> f64 {
    let elevation = solar_elevation_deg(latitude, day_of_year, solar_hour);
    if elevation <= 0.0 || !capacity_w.is_finite() || capacity_w <= 0.0 {
        return 0.0;
    }
    // Panels are tilted, so the response is flatter than sin(elevation); the 1.15 factor
    // lets a high summer sun reach the nameplate before the clamp.
    let clear = (elevation.to_radians().sin() * 1.15).min(1.0);
    let cloud = cloudiness.clamp(0.0, 1.0);
    (capacity_w * clear * (1.0 - 0.75 * cloud)).clamp(0.0, capacity_w)
}

/// Cloud cover in `[0, 1]` at Unix time `t_secs` for a site key: a seeded weather type per
/// day (clear, mixed, overcast) plus passing clouds (noise with a 20-minute correlation).
pub fn cloudiness(site_key: u64, t_secs: f64) -> f64 {
    let day = (t_secs / 86_400.0).floor();
    // Weather of the day, blended across midnight by value noise on a one-day period.
    let base = value_noise(hash(&[site_key, 0xC10D]), t_secs, 86_400.0);
    let base = base * base; // skew towards clear days
    let passing = value_noise(hash(&[site_key, 0xC10E]), t_secs, 1_200.0);
    let gusty = unit(hash(&[site_key, 0xC10F, day as u64])) < 0.5;
    let passing = if gusty { passing * 0.5 } else { passing * 0.2 };
    (base * 0.8 + passing).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn noon_in_summer_beats_winter_in_oslo() {
        let summer = solar_output_w(5000.0, 59.9, 172, 12.0, 0.0);
        let winter = solar_output_w(5000.0, 59.9, 355, 12.0, 0.0);
        assert!(summer > 3500.0, "{summer}");
        assert!(winter < 1500.0, "{winter}");
        assert!(winter > 0.0);
    }

    #[test]
    fn sunrise_and_sunset_are_symmetric_around_noon() {
        let (rise, set) = sunrise_sunset(48.0, 100).unwrap();
        assert!((rise + set - 24.0).abs() < 1e-9);
        assert!(rise > 4.0 && rise < 7.0);
        assert_eq!(sunrise_sunset(80.0, 355), None);
        assert_eq!(sunrise_sunset(80.0, 172), Some((0.0, 24.0)));
    }

    proptest! {
        #[test]
        fn pv_is_zero_at_night_and_bounded(
            lat in -70.0f64..70.0,
            doy in 1u32..=366,
            hour in 0.0f64..24.0,
            cloud in 0.0f64..=1.0,
            cap in 0.0f64..20_000.0,
        ) {
            let w = solar_output_w(cap, lat, doy, hour, cloud);
            prop_assert!(w >= 0.0 && w <= cap + 1e-9);
            match sunrise_sunset(lat, doy) {
                None => prop_assert_eq!(w, 0.0),
                Some((rise, set)) => {
                    // Outside daylight (with a small margin for the formulas' rounding)
                    // there is no output.
                    if hour < rise - 0.01 || hour > set + 0.01 {
                        prop_assert_eq!(w, 0.0);
                    }
                }
            }
        }

        #[test]
        fn cloudiness_is_a_fraction(key in any::<u64>(), t in 0.0f64..4.0e9) {
            let c = cloudiness(key, t);
            prop_assert!((0.0..=1.0).contains(&c));
        }
    }
}

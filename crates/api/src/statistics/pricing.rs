//! Pricing charged energy with a location's tariff schedule (pure: no I/O, no clock).
//!
//! A [`RateSchedule`] is a location's weekly tariff schedule with each interval's rate cost
//! resolved: intervals in the location's local time (`from` inclusive, `to` exclusive, in
//! minutes of the day, weekdays 0 = Monday). Energy is priced by walking a stretch of
//! constant power through the schedule's rate periods ([`RateSchedule::rate_at`]), so a
//! charge that spans a rate change pays each rate for the energy charged under it. Time no
//! interval covers has no rate.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, TimeZone, Timelike, Utc};

use super::compute::Piece;

/// One interval of a schedule with its rate's cost per kWh.
#[derive(Clone, Debug, PartialEq)]
pub struct RateInterval {
    /// Weekdays it applies on (0 = Monday).
    pub weekdays: Vec<u32>,
    /// Start, minutes after local midnight (inclusive).
    pub from: u32,
    /// End, minutes after local midnight (exclusive; 1440 is midnight).
    pub to: u32,
    /// Cost per kWh, in the tariff's own unit of money.
    pub cost: f64,
}

/// A location's tariff schedule with resolved rate costs.
#[derive(Clone, Debug, PartialEq)]
pub struct RateSchedule {
    /// The location's time zone, in which the intervals are given.
    pub zone: chrono_tz::Tz,
    /// Non-overlapping intervals.
    pub intervals: Vec<RateInterval>,
}

impl RateSchedule {
    /// The local wall time `minutes` after the start of `date`, as an instant; a wall time a
    /// DST change skips counts from the moment the clocks jump.
    fn instant(&self, date: chrono::NaiveDate, minutes: u32) -> Option<DateTime<Utc>> {
        let naive: NaiveDateTime =
            date.and_time(chrono::NaiveTime::MIN) + Duration::minutes(i64::from(minutes));
        // The first wall time at or after `naive` that exists (gaps last at most a few hours).
        (0..=240)
            .find_map(|m| self.zone.from_local_datetime(&(naive + Duration::minutes(m))).earliest())
            .map(|t| t.with_timezone(&Utc))
    }

    /// The cost per kWh in force at `t` (`None` where no interval covers it) and the instant
    /// it may change next (always after `t`).
    pub fn rate_at(&self, t: DateTime<Utc>) -> (Option<f64>, DateTime<Utc>) {
        let local = t.with_timezone(&self.zone);
        let day = local.weekday().num_days_from_monday();
        let minute = local.hour() * 60 + local.minute();
        let date = local.date_naive();
        let today = || self.intervals.iter().filter(move |i| i.weekdays.contains(&day));
        let (rate, change) = match today().find(|i| i.from <= minute && minute < i.to) {
            Some(interval) => (Some(interval.cost), interval.to),
            None => {
                (None, today().map(|i| i.from).filter(|from| *from > minute).min().unwrap_or(1440))
            }
        };
        let next = self.instant(date, change).filter(|next| *next > t);
        // A wall time repeated or skipped by a DST change could map to or before `t`: step a
        // minute, which always makes progress.
        (rate, next.unwrap_or(t + Duration::minutes(1)))
    }

    /// The energy of `piece` inside `[start, end)` split by the rate in force, in time order:
    /// `(kWh, cost per kWh)`.
    pub fn split(
        &self,
        piece: &Piece,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Vec<(f64, Option<f64>)> {
        let mut out = Vec::new();
        let (mut t, end) = (piece.from.max(start), piece.to.min(end));
        while t < end {
            let (rate, change) = self.rate_at(t);
            let stop = change.min(end);
            out.push((piece.kwh_within(t, stop), rate));
            t = stop;
        }
        out
    }
}

/// What charged energy cost: the priced part of the energy, its cost and the rates applied.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    /// Energy a rate applied to, in kWh.
    pub priced_kwh: f64,
    /// Its cost.
    pub cost: f64,
    /// The lowest and highest rate applied to some energy.
    pub rates: Option<(f64, f64)>,
}

impl Cost {
    /// Adds `kwh` charged at `rate` (nothing when no rate applied or nothing was charged).
    pub fn add(&mut self, kwh: f64, rate: Option<f64>) {
        let Some(rate) = rate else { return };
        if kwh <= 0.0 {
            return;
        }
        self.priced_kwh += kwh;
        self.cost += kwh * rate;
        self.rates = Some(match self.rates {
            Some((min, max)) => (min.min(rate), max.max(rate)),
            None => (rate, rate),
        });
    }

    /// Adds the energy of `piece` within `[start, end)` priced by `schedule` (none: unpriced).
    pub fn add_piece(
        &mut self,
        schedule: Option<&RateSchedule>,
        piece: &Piece,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) {
        let Some(schedule) = schedule else { return };
        for (kwh, rate) in schedule.split(piece, start, end) {
            self.add(kwh, rate);
        }
    }

    /// Per-kWh price statistics: the lowest and highest rate applied and the mean price of
    /// the priced energy (its cost over its kWh). `None` when no energy was priced.
    pub fn price(&self) -> Option<super::compute::Aggregates> {
        let (min, max) = self.rates?;
        (self.priced_kwh > 0.0).then(|| super::compute::Aggregates {
            min,
            max,
            mean: self.cost / self.priced_kwh,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_default()
    }

    /// Oslo: off-peak 1.0 before 07:00 and from 22:00, peak 3.0 from 07:00 to 22:00 on
    /// weekdays; weekends have no interval.
    fn oslo() -> RateSchedule {
        let weekdays = vec![0, 1, 2, 3, 4];
        RateSchedule {
            zone: chrono_tz::Europe::Oslo,
            intervals: vec![
                RateInterval { weekdays: weekdays.clone(), from: 0, to: 420, cost: 1.0 },
                RateInterval { weekdays: weekdays.clone(), from: 420, to: 1320, cost: 3.0 },
                RateInterval { weekdays, from: 1320, to: 1440, cost: 1.0 },
            ],
        }
    }

    #[test]
    fn rates_follow_local_time() {
        // 2030-02-20 is a Wednesday; Oslo is UTC+1. 05:30 UTC is 06:30 local: off-peak until
        // 07:00 local = 06:00 UTC.
        let schedule = oslo();
        assert_eq!(
            schedule.rate_at(at("2030-02-20T05:30:00Z")),
            (Some(1.0), at("2030-02-20T06:00:00Z"))
        );
        assert_eq!(
            schedule.rate_at(at("2030-02-20T06:00:00Z")),
            (Some(3.0), at("2030-02-20T21:00:00Z"))
        );
        // Saturday: no interval all day, until Sunday's midnight, also without one.
        assert_eq!(
            schedule.rate_at(at("2030-02-23T12:00:00Z")),
            (None, at("2030-02-23T23:00:00Z"))
        );
    }

    #[test]
    fn a_piece_across_a_rate_change_pays_both_rates() {
        let schedule = oslo();
        let piece =
            Piece { from: at("2030-02-20T05:30:00Z"), to: at("2030-02-20T06:30:00Z"), kw: 4.0 };
        let split = schedule.split(&piece, piece.from, piece.to);
        assert_eq!(split, [(2.0, Some(1.0)), (2.0, Some(3.0))]);
        let mut cost = Cost::default();
        cost.add_piece(Some(&schedule), &piece, piece.from, piece.to);
        assert_eq!(cost.cost, 8.0);
        let price = cost.price().unwrap_or_else(|| unreachable!());
        assert_eq!((price.min, price.max, price.mean), (1.0, 3.0, 2.0));
        // Without a schedule nothing is priced.
        let mut none = Cost::default();
        none.add_piece(None, &piece, piece.from, piece.to);
        assert_eq!((none.price(), none.cost), (None, 0.0));
    }

    #[test]
    fn dst_changes_make_progress() {
        // Oslo springs forward on 2030-03-31 at 02:00 local (01:00 UTC).
        let schedule = RateSchedule {
            zone: chrono_tz::Europe::Oslo,
            intervals: vec![RateInterval {
                weekdays: (0..7).collect(),
                from: 150,
                to: 1440,
                cost: 2.0,
            }],
        };
        // 01:30 local: no rate until 02:30, which is skipped: the rate starts when the clocks
        // jump to 03:00 (01:00 UTC).
        let (rate, next) = schedule.rate_at(at("2030-03-31T00:30:00Z"));
        assert_eq!((rate, next), (None, at("2030-03-31T01:00:00Z")));
        assert_eq!(schedule.rate_at(next), (Some(2.0), at("2030-03-31T22:00:00Z")));
        let piece =
            Piece { from: at("2030-03-30T23:00:00Z"), to: at("2030-03-31T03:00:00Z"), kw: 1.0 };
        let total: f64 = schedule.split(&piece, piece.from, piece.to).iter().map(|p| p.0).sum();
        assert!((total - 4.0).abs() < 1e-9, "{total}");
    }
}

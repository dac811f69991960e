//! Pure statistics over a device's history samples (no I/O, no clock): inverter production
//! per bucket from the lifetime counter, charged energy from the charge rate, charging
//! sessions, and time buckets.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use oemgate_store::Sample;

/// Consecutive samples further apart than this are not integrated: the device was not
/// observed in between, so what it did there is unknown.
pub const MAX_GAP: Duration = Duration::hours(1);

/// Energy produced in each bucket `[edges[i], edges[i+1])`, from the cumulative counter
/// (`kwh`) of `samples` (oldest first, possibly starting before the first edge): the counter at
/// the bucket's last sample minus the counter at the last sample before the bucket (or, with
/// none before, the bucket's first sample). `None` where the bucket holds no counter sample.
/// A counter that went down (reset, replaced inverter) counts as zero, not negative.
pub fn production(samples: &[Sample], edges: &[DateTime<Utc>]) -> Vec<Option<f64>> {
    let counters: Vec<(DateTime<Utc>, f64)> =
        samples.iter().filter_map(|s| s.kwh.map(|k| (s.at, k))).collect();
    edges
        .windows(2)
        .map(|w| {
            let (start, end) = (w[0], w[1]);
            let inside: Vec<&(DateTime<Utc>, f64)> =
                counters.iter().filter(|(at, _)| *at >= start && *at < end).collect();
            let last = inside.last()?;
            let baseline =
                counters.iter().rev().find(|(at, _)| *at < start).or(inside.first().copied())?;
            Some((last.1 - baseline.1).max(0.0))
        })
        .collect()
}

/// A stretch of constant charging power: `kw` from `from` to `to`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Piece {
    /// Start.
    pub from: DateTime<Utc>,
    /// End (exclusive).
    pub to: DateTime<Utc>,
    /// Power in kW (0 when not charging).
    pub kw: f64,
}

impl Piece {
    /// Energy of the part of the piece inside `[start, end)`, in kWh.
    pub fn kwh_within(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> f64 {
        let from = self.from.max(start);
        let to = self.to.min(end);
        if to <= from {
            return 0.0;
        }
        self.kw * (to - from).num_milliseconds() as f64 / 3_600_000.0
    }
}

/// The charging power over time: each sample's rate holds until the next sample (a step
/// function, the rate last seen), unless they are more than [`MAX_GAP`] apart. A sample that
/// says the device is not charging counts as 0 kW whatever its rate.
pub fn pieces(samples: &[Sample]) -> Vec<Piece> {
    samples
        .windows(2)
        .filter(|w| w[1].at - w[0].at <= MAX_GAP && w[1].at > w[0].at)
        .map(|w| {
            let kw = if w[0].active == Some(false) { 0.0 } else { w[0].kw.unwrap_or(0.0).max(0.0) };
            Piece { from: w[0].at, to: w[1].at, kw }
        })
        .collect()
}

/// Minimum, maximum and mean of some values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aggregates {
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// Aggregates of `values`; `None` when empty.
pub fn aggregates(values: impl IntoIterator<Item = f64>) -> Option<Aggregates> {
    let (mut min, mut max, mut sum, mut n) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0u64);
    for v in values {
        min = min.min(v);
        max = max.max(v);
        sum += v;
        n += 1;
    }
    (n > 0).then(|| Aggregates { min, max, mean: sum / n as f64 })
}

/// The bucket sizes of the charging statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// 15 minutes.
    QuarterHour,
    /// 30 minutes.
    HalfHour,
    /// An hour.
    Hour,
    /// A calendar day.
    Day,
    /// A week from Monday.
    Week,
    /// A calendar month.
    Month,
    /// A calendar year.
    Year,
}

impl Resolution {
    /// Parses the API's name ("QUARTER_HOUR").
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "QUARTER_HOUR" => Self::QuarterHour,
            "HALF_HOUR" => Self::HalfHour,
            "HOUR" => Self::Hour,
            "DAY" => Self::Day,
            "WEEK" => Self::Week,
            "MONTH" => Self::Month,
            "YEAR" => Self::Year,
            _ => return None,
        })
    }
}

/// The start of the bucket holding `t`. Sub-day buckets are aligned in UTC; days, weeks,
/// months and years at midnight in `offset` (the document's deprecated `utcOffset`; UTC by
/// default).
pub fn bucket_start(
    t: DateTime<Utc>,
    resolution: Resolution,
    offset: FixedOffset,
) -> DateTime<Utc> {
    let minutes = match resolution {
        Resolution::QuarterHour => Some(15),
        Resolution::HalfHour => Some(30),
        Resolution::Hour => Some(60),
        _ => None,
    };
    if let Some(m) = minutes {
        let step = m * 60;
        let secs = t.timestamp().div_euclid(step) * step;
        return DateTime::from_timestamp(secs, 0).unwrap_or(t);
    }
    let local = t.with_timezone(&offset).date_naive();
    let day: NaiveDate = match resolution {
        Resolution::Week => {
            local - Duration::days(i64::from(local.weekday().num_days_from_monday()))
        }
        Resolution::Month => local.with_day(1).unwrap_or(local),
        Resolution::Year => local.with_ordinal(1).unwrap_or(local),
        _ => local,
    };
    offset
        .from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
        .single()
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(t)
}

/// The start of the bucket after the one starting at `start`.
pub fn bucket_end(
    start: DateTime<Utc>,
    resolution: Resolution,
    offset: FixedOffset,
) -> DateTime<Utc> {
    match resolution {
        Resolution::QuarterHour => start + Duration::minutes(15),
        Resolution::HalfHour => start + Duration::minutes(30),
        Resolution::Hour => start + Duration::hours(1),
        Resolution::Day => start + Duration::days(1),
        Resolution::Week => start + Duration::weeks(1),
        // Past the end of the month or year, then back to its start.
        Resolution::Month => bucket_start(start + Duration::days(32), resolution, offset),
        Resolution::Year => bucket_start(start + Duration::days(366), resolution, offset),
    }
}

/// One bucket of charging statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct ChargingBucket {
    /// Bucket start.
    pub start: DateTime<Utc>,
    /// Charge rates seen in the bucket.
    pub kw: Option<Aggregates>,
    /// Energy charged in the bucket.
    pub kwh: f64,
    /// What the energy cost, where a tariff applied.
    pub cost: super::pricing::Cost,
}

/// Charging statistics over `[from, to)` in buckets of `resolution`, from the histories of
/// several devices (each oldest first), the energy of `histories[i]` priced by
/// `schedules[i]` (unpriced where that is `None` or missing). Only buckets with a sample or
/// some charged energy appear, oldest first.
pub fn charging_buckets(
    histories: &[Vec<Sample>],
    schedules: &[Option<&super::pricing::RateSchedule>],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    resolution: Resolution,
    offset: FixedOffset,
) -> Vec<ChargingBucket> {
    use std::collections::BTreeMap;
    type Bucket = (Vec<f64>, f64, super::pricing::Cost);
    let mut buckets: BTreeMap<DateTime<Utc>, Bucket> = BTreeMap::new();
    for (i, samples) in histories.iter().enumerate() {
        let schedule = schedules.get(i).copied().flatten();
        for sample in samples.iter().filter(|s| s.at >= from && s.at < to) {
            let entry = buckets.entry(bucket_start(sample.at, resolution, offset)).or_default();
            if let Some(kw) = sample.kw {
                let kw = if sample.active == Some(false) { 0.0 } else { kw };
                entry.0.push(kw);
            }
        }
        for piece in pieces(samples) {
            let mut start = bucket_start(piece.from.max(from), resolution, offset);
            while start < piece.to.min(to) {
                let end = bucket_end(start, resolution, offset);
                let (within_from, within_to) = (start.max(from), end.min(to));
                let kwh = piece.kwh_within(within_from, within_to);
                if kwh > 0.0 {
                    let bucket = buckets.entry(start).or_default();
                    bucket.1 += kwh;
                    bucket.2.add_piece(schedule, &piece, within_from, within_to);
                }
                start = end;
            }
        }
    }
    buckets
        .into_iter()
        .map(|(start, (kws, kwh, cost))| ChargingBucket { start, kw: aggregates(kws), kwh, cost })
        .collect()
}

/// One charging session of a device.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// The first sample that saw it charging.
    pub from: DateTime<Utc>,
    /// The first sample that saw it stopped, or the last that saw it charging when it still
    /// charges (or the history broke off).
    pub to: DateTime<Utc>,
    /// Charge rates seen while charging.
    pub kw: Option<Aggregates>,
    /// Energy charged.
    pub kwh: f64,
}

/// The charging sessions in a device's history (oldest first): maximal runs of samples saying
/// it charges. A gap over [`MAX_GAP`] ends a session at its last charging sample.
pub fn sessions(samples: &[Sample]) -> Vec<Session> {
    let mut out = Vec::new();
    let mut current: Option<(DateTime<Utc>, DateTime<Utc>, Vec<f64>)> = None;
    let pieces = pieces(samples);
    let close = |from: DateTime<Utc>, to: DateTime<Utc>, kws: Vec<f64>| Session {
        from,
        to,
        kw: aggregates(kws),
        kwh: pieces.iter().map(|p| p.kwh_within(from, to)).sum(),
    };
    for sample in samples {
        let charging = sample.active == Some(true);
        current = match current.take() {
            Some((from, last, kws)) if sample.at - last > MAX_GAP => {
                out.push(close(from, last, kws));
                charging.then(|| (sample.at, sample.at, sample.kw.into_iter().collect()))
            }
            Some((from, _, mut kws)) if charging => {
                kws.extend(sample.kw);
                Some((from, sample.at, kws))
            }
            Some((from, _, kws)) => {
                out.push(close(from, sample.at, kws));
                None
            }
            None => charging.then(|| (sample.at, sample.at, sample.kw.into_iter().collect())),
        };
    }
    if let Some((from, last, kws)) = current {
        out.push(close(from, last, kws));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        "2030-06-10T00:00:00Z".parse::<DateTime<Utc>>().unwrap_or_default()
            + Duration::minutes(minutes)
    }

    fn counter(minutes: i64, kwh: f64) -> Sample {
        Sample { at: t(minutes), kw: None, kwh: Some(kwh), active: None }
    }

    fn charge(minutes: i64, kw: f64, charging: bool) -> Sample {
        Sample { at: t(minutes), kw: Some(kw), kwh: None, active: Some(charging) }
    }

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn production_is_the_counter_difference_per_bucket() {
        let samples =
            [counter(-5, 100.0), counter(5, 101.0), counter(14, 102.5), counter(20, 103.0)];
        let edges = [t(0), t(15), t(30), t(45)];
        // First bucket: 102.5 - 100 (baseline before the bucket); second: 103 - 102.5; third:
        // no sample.
        assert_eq!(production(&samples, &edges), [Some(2.5), Some(0.5), None]);
        // With no sample before, the first in the bucket is the baseline.
        assert_eq!(production(&samples[1..], &edges[..2]), [Some(1.5)]);
        // A counter reset yields zero, not a negative value.
        assert_eq!(
            production(&[counter(0, 50.0), counter(20, 3.0)], &edges[..3]),
            [Some(0.0), Some(0.0)]
        );
    }

    #[test]
    fn energy_is_the_rate_held_until_the_next_sample() {
        let samples = [
            charge(0, 6.0, true),
            charge(30, 12.0, true),
            charge(60, 12.0, false),
            charge(200, 7.0, true), // after a gap over an hour: not integrated from 60
            charge(210, 7.0, true),
        ];
        let buckets =
            charging_buckets(&[samples.to_vec()], &[], t(0), t(300), Resolution::Hour, utc());
        let got: Vec<(DateTime<Utc>, f64)> = buckets.iter().map(|b| (b.start, b.kwh)).collect();
        // 6 kW for 30 min + 12 kW for 30 min = 9 kWh in the first hour; the second hour holds
        // the stop sample only; 7 kW for 10 min in the fourth hour.
        assert_eq!(got, [(t(0), 9.0), (t(60), 0.0), (t(180), 7.0 / 6.0)]);
        let first = buckets[0].kw.unwrap_or_else(|| unreachable!());
        assert_eq!((first.min, first.max, first.mean), (6.0, 12.0, 9.0));
        // The requested range clips the energy.
        let clipped =
            charging_buckets(&[samples.to_vec()], &[], t(15), t(45), Resolution::Day, utc());
        assert_eq!(clipped.len(), 1);
        assert_eq!(clipped[0].kwh, 6.0 * 0.25 + 12.0 * 0.25);
        assert_eq!(clipped[0].start, t(0));
    }

    #[test]
    fn pieces_split_across_buckets() {
        let samples = [charge(50, 6.0, true), charge(70, 6.0, false)];
        let buckets =
            charging_buckets(&[samples.to_vec()], &[], t(0), t(120), Resolution::Hour, utc());
        let got: Vec<f64> = buckets.iter().map(|b| b.kwh).collect();
        assert_eq!(got, [1.0, 1.0]);
    }

    #[test]
    fn calendar_buckets_follow_the_offset() {
        let at: DateTime<Utc> = "2030-06-12T23:30:00Z".parse().unwrap_or_default();
        let plus2 = FixedOffset::east_opt(7200).unwrap_or_else(|| unreachable!());
        // 01:30 on the 13th at +02:00: that day starts at 22:00 UTC on the 12th.
        assert_eq!(
            bucket_start(at, Resolution::Day, plus2),
            "2030-06-12T22:00:00Z".parse::<DateTime<Utc>>().unwrap_or_default()
        );
        // The 12th of June 2030 is a Wednesday: the week starts on Monday the 10th.
        assert_eq!(bucket_start(at, Resolution::Week, utc()), t(0));
        let month = bucket_start(at, Resolution::Month, utc());
        assert_eq!(month, "2030-06-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap_or_default());
        assert_eq!(
            bucket_end(month, Resolution::Month, utc()),
            "2030-07-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap_or_default()
        );
        assert_eq!(
            bucket_start(at, Resolution::Year, utc()),
            "2030-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap_or_default()
        );
        assert_eq!(bucket_start(t(44), Resolution::QuarterHour, utc()), t(30));
        assert_eq!(bucket_start(t(44), Resolution::HalfHour, utc()), t(30));
    }

    #[test]
    fn sessions_are_runs_of_charging_samples() {
        let samples = [
            charge(0, 0.0, false),
            charge(10, 6.0, true),
            charge(40, 8.0, true),
            charge(70, 0.0, false),
            charge(80, 5.0, true),
            charge(200, 5.0, true), // gap: the second session ended at 80
            charge(230, 5.0, true), // still charging
        ];
        let got = sessions(&samples);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!((got[0].from, got[0].to), (t(10), t(70)));
        assert_eq!(got[0].kwh, 6.0 * 0.5 + 8.0 * 0.5);
        let kw = got[0].kw.unwrap_or_else(|| unreachable!());
        assert_eq!((kw.min, kw.max, kw.mean), (6.0, 8.0, 7.0));
        assert_eq!((got[1].from, got[1].to, got[1].kwh), (t(80), t(80), 0.0));
        assert_eq!((got[2].from, got[2].to, got[2].kwh), (t(200), t(230), 2.5));
        assert!(sessions(&[charge(0, 0.0, false)]).is_empty());
    }

    #[test]
    fn aggregates_of_nothing_are_none() {
        assert_eq!(aggregates([]), None);
    }
}

//! Time as the rest of oemgate sees it.
//!
//! Everything that decides "when" (the scheduler, the simulated world, the executor's
//! timeouts) reads time through [`Clock`], never from the OS directly. That lets the demo and
//! the loadtest run the world N times faster ([`ScaledClock`]) and lets tests step time by hand
//! ([`ManualClock`]) instead of sleeping.

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// A source of the current (possibly simulated) wall-clock time.
pub trait Clock: Send + Sync + Debug {
    /// The current time on this clock.
    fn now(&self) -> DateTime<Utc>;

    /// How many clock seconds pass per real second (1.0 for the system clock).
    ///
    /// Code that has to wait converts a clock duration into a real one with
    /// [`Clock::to_real`] before sleeping.
    fn speed(&self) -> f64 {
        1.0
    }

    /// The real duration that corresponds to `clock` on this clock.
    fn to_real(&self, clock: Duration) -> Duration {
        let speed = self.speed();
        if speed <= 0.0 || !speed.is_finite() {
            return clock;
        }
        clock.div_f64(speed)
    }
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that starts at `origin` and runs `speed` times faster than real time.
#[derive(Debug)]
pub struct ScaledClock {
    origin: DateTime<Utc>,
    started: Instant,
    speed: f64,
}

impl ScaledClock {
    /// A clock reading `origin` now and advancing `speed` clock seconds per real second.
    /// A non-finite or non-positive speed is treated as 1.0.
    pub fn new(origin: DateTime<Utc>, speed: f64) -> Self {
        let speed = if speed.is_finite() && speed > 0.0 { speed } else { 1.0 };
        Self { origin, started: Instant::now(), speed }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.started.elapsed().mul_f64(self.speed);
        self.origin + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
    }

    fn speed(&self) -> f64 {
        self.speed
    }
}

/// A clock that only moves when told to: for tests and step-wise simulations.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A manual clock reading `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { now: Mutex::new(start) }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }

    /// Sets the clock to `to` (which may be in the past).
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now(), start + chrono::Duration::seconds(90));
    }

    #[test]
    fn scaled_clock_converts_durations() {
        let clock = ScaledClock::new(Utc::now(), 60.0);
        assert_eq!(clock.to_real(Duration::from_secs(120)), Duration::from_secs(2));
        assert!(clock.now() >= clock.origin);
        let bad = ScaledClock::new(Utc::now(), f64::NAN);
        assert_eq!(bad.speed(), 1.0);
    }
}

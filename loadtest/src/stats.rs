//! Latency histograms and error counters.
//!
//! Each generator thread owns one [`Stats`] (no sharing on the hot path); the
//! runner merges them at the end and turns the result into a [`Summary`].

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Highest latency the histogram tracks exactly (larger values are clamped).
const MAX_TRACKED_NS: u64 = 120_000_000_000;

/// Raw counters of one thread (or of a merged run).
#[derive(Clone, Debug)]
pub struct Stats {
    /// Latency of every measured response, in nanoseconds.
    pub hist: Histogram<u64>,
    /// Responses per status code (index = code, 0..600).
    pub status: Vec<u64>,
    /// Responses whose status was not 2xx.
    pub non_2xx: u64,
    /// Failed connects.
    pub connect_errors: u64,
    /// Read/write failures and connections closed mid-response.
    pub io_errors: u64,
    /// Unparseable responses.
    pub parse_errors: u64,
    /// Requests that exceeded the per-request timeout.
    pub timeouts: u64,
    /// Connections opened (first connect and reconnects).
    pub connects: u64,
    /// Requests still waiting for a response when the run was cut off.
    pub unfinished: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// Empty counters.
    pub fn new() -> Self {
        Stats {
            hist: Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).expect("valid histogram bounds"),
            status: vec![0; 600],
            non_2xx: 0,
            connect_errors: 0,
            io_errors: 0,
            parse_errors: 0,
            timeouts: 0,
            connects: 0,
            unfinished: 0,
        }
    }

    /// Records one complete response.
    #[inline]
    pub fn record(&mut self, latency: Duration, status: u16) {
        let ns = (latency.as_nanos() as u64).clamp(1, MAX_TRACKED_NS);
        self.hist.saturating_record(ns);
        if let Some(c) = self.status.get_mut(status as usize) {
            *c += 1;
        }
        if !(200..300).contains(&status) {
            self.non_2xx += 1;
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        self.hist.add(&other.hist).expect("same histogram bounds");
        for (a, b) in self.status.iter_mut().zip(&other.status) {
            *a += b;
        }
        self.non_2xx += other.non_2xx;
        self.connect_errors += other.connect_errors;
        self.io_errors += other.io_errors;
        self.parse_errors += other.parse_errors;
        self.timeouts += other.timeouts;
        self.connects += other.connects;
        self.unfinished += other.unfinished;
    }

    /// Completed responses.
    pub fn responses(&self) -> u64 {
        self.hist.len()
    }

    /// Everything that went wrong (non-2xx included).
    pub fn errors(&self) -> u64 {
        self.non_2xx + self.connect_errors + self.io_errors + self.parse_errors + self.timeouts
    }

    /// Summarizes over a measurement window of `window`.
    pub fn summary(&self, window: Duration) -> Summary {
        let h = &self.hist;
        let us = |ns: u64| ns as f64 / 1e3;
        let secs = window.as_secs_f64().max(1e-9);
        let n = h.len();
        let pct = |q: f64| {
            if n == 0 {
                0.0
            } else {
                us(h.value_at_quantile(q))
            }
        };
        Summary {
            responses: n,
            seconds: window.as_secs_f64(),
            rps: n as f64 / secs,
            latency_us: Latency {
                mean: if n == 0 { 0.0 } else { h.mean() / 1e3 },
                p50: pct(0.50),
                p90: pct(0.90),
                p99: pct(0.99),
                p999: pct(0.999),
                max: if n == 0 { 0.0 } else { us(h.max()) },
            },
            errors: Errors {
                total: self.errors(),
                non_2xx: self.non_2xx,
                connect: self.connect_errors,
                io: self.io_errors,
                parse: self.parse_errors,
                timeout: self.timeouts,
                unfinished: self.unfinished,
            },
            connects: self.connects,
            status: self
                .status
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(code, &c)| (code as u16, c))
                .collect(),
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// Error breakdown.
#[derive(Clone, Debug, Serialize)]
pub struct Errors {
    pub total: u64,
    pub non_2xx: u64,
    pub connect: u64,
    pub io: u64,
    pub parse: u64,
    pub timeout: u64,
    pub unfinished: u64,
}

/// The printable/serializable result of one measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub responses: u64,
    pub seconds: f64,
    pub rps: f64,
    pub latency_us: Latency,
    pub errors: Errors,
    pub connects: u64,
    pub status: BTreeMap<u16, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_merge_summary() {
        let mut a = Stats::new();
        let mut b = Stats::new();
        for i in 1..=100u64 {
            a.record(Duration::from_micros(i), 200);
        }
        b.record(Duration::from_millis(5), 500);
        b.io_errors += 2;
        a.merge(&b);
        let s = a.summary(Duration::from_secs(1));
        assert_eq!(s.responses, 101);
        assert!((s.rps - 101.0).abs() < 1e-6);
        assert_eq!(s.errors.non_2xx, 1);
        assert_eq!(s.errors.total, 3);
        assert_eq!(s.status[&200], 100);
        assert!(
            (s.latency_us.p50 - 51.0).abs() < 0.5,
            "{}",
            s.latency_us.p50
        );
        assert!((s.latency_us.max - 5000.0).abs() < 5.0);
    }
}

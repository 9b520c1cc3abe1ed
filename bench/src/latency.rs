//! Latency samples and their summary (nearest-rank percentiles, in ms).

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<f64>);

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Samples {
    pub fn push(&mut self, elapsed: Duration) {
        self.push_ms(elapsed.as_secs_f64() * 1000.0);
    }

    pub fn push_ms(&mut self, ms: f64) {
        self.0.push(ms);
    }

    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Samples longer than `limit`.
    pub fn count_over(&self, limit: Duration) -> u64 {
        let limit_ms = limit.as_secs_f64() * 1000.0;
        self.0.iter().filter(|&&ms| ms > limit_ms).count() as u64
    }

    /// `None` without samples: no figure is better than a made-up zero.
    pub fn summary(&self) -> Option<Summary> {
        if self.0.is_empty() {
            return None;
        }
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
            sorted[index.clamp(1, sorted.len()) - 1]
        };
        Some(Summary {
            count: sorted.len(),
            p50_ms: micros(rank(50.0)),
            p95_ms: micros(rank(95.0)),
            p99_ms: micros(rank(99.0)),
            max_ms: micros(sorted[sorted.len() - 1]),
            mean_ms: micros(sorted.iter().sum::<f64>() / sorted.len() as f64),
        })
    }
}

/// Milliseconds rounded to whole microseconds: finer is noise, and the
/// results files stay readable.
pub fn micros(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples = Samples::default();
        for ms in (1..=100).rev() {
            samples.push_ms(ms as f64);
        }
        let s = samples.summary().unwrap();
        assert_eq!(
            (s.count, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms),
            (100, 50.0, 95.0, 99.0, 100.0)
        );
        assert_eq!(s.mean_ms, 50.5);
        let mut one = Samples::default();
        one.push(Duration::from_millis(3));
        assert_eq!(one.summary().unwrap().p99_ms, 3.0);
        assert!(Samples::default().summary().is_none());
        assert_eq!(samples.count_over(Duration::from_millis(97)), 3);
        assert_eq!(samples.count_over(Duration::from_millis(100)), 0);
    }
}

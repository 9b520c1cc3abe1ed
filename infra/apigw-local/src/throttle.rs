//! Stage throttling as API Gateway applies it: a token bucket per route,
//! holding `ThrottlingBurstLimit` tokens and refilled at `ThrottlingRateLimit`
//! per second; a request that finds no token is refused (HTTP 429, or the
//! WebSocket API's "Too Many Requests" frame) and never reaches its function.
//! The buckets are shared by every client: this is the stage's protection,
//! not a per-user limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::template::{RouteThrottle, StageThrottling};

pub(crate) struct Throttle {
    settings: StageThrottling,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    capacity: f64,
    rate: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl Bucket {
    fn new(capacity: u64, rate: f64, now: Instant) -> Self {
        Bucket {
            capacity: capacity as f64,
            rate,
            tokens: capacity as f64,
            refilled_at: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Throttle {
    pub fn new(settings: StageThrottling) -> Self {
        Throttle {
            settings,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token from `route_key`'s bucket; `false` when it is empty. A
    /// route with no burst or no rate set (on it or as the stage's default)
    /// is not throttled.
    pub fn admit(&self, route_key: &str) -> bool {
        self.admit_at(route_key, Instant::now())
    }

    fn admit_at(&self, route_key: &str, now: Instant) -> bool {
        let RouteThrottle {
            burst: Some(burst),
            rate: Some(rate),
        } = self.settings.for_route(route_key)
        else {
            return true;
        };
        let mut buckets = self.buckets.lock().expect("throttle lock");
        buckets
            .entry(route_key.to_string())
            .or_insert_with(|| Bucket::new(burst, rate, now))
            .take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn throttle() -> Throttle {
        Throttle::new(StageThrottling {
            default: RouteThrottle {
                burst: Some(2),
                rate: Some(1.0),
            },
            routes: BTreeMap::from([
                (
                    "slow".to_string(),
                    RouteThrottle {
                        burst: Some(1),
                        rate: None,
                    },
                ),
                (
                    "closed".to_string(),
                    RouteThrottle {
                        burst: Some(0),
                        rate: Some(0.0),
                    },
                ),
            ]),
        })
    }

    #[test]
    fn burst_then_rate_per_route() {
        let t = throttle();
        let start = Instant::now();
        assert!(t.admit_at("a", start));
        assert!(t.admit_at("a", start));
        assert!(!t.admit_at("a", start), "the burst is spent");
        // Another route has its own bucket.
        assert!(t.admit_at("b", start));
        // One token a second comes back, never more than the burst.
        assert!(!t.admit_at("a", start + Duration::from_millis(500)));
        assert!(t.admit_at("a", start + Duration::from_millis(1000)));
        assert!(!t.admit_at("a", start + Duration::from_millis(1000)));
        let later = start + Duration::from_secs(60);
        assert!(t.admit_at("a", later) && t.admit_at("a", later) && !t.admit_at("a", later));
    }

    #[test]
    fn route_settings_override_the_defaults_field_by_field() {
        let t = throttle();
        let start = Instant::now();
        // burst 1 of its own, the default rate of 1/s.
        assert!(t.admit_at("slow", start));
        assert!(!t.admit_at("slow", start));
        assert!(t.admit_at("slow", start + Duration::from_secs(1)));
        // Burst 0 refuses everything, as on API Gateway.
        assert!(!t.admit_at("closed", start));
        let open = Throttle::new(StageThrottling::default());
        assert!((0..10_000).all(|_| open.admit_at("x", start)));
    }
}

//! Per-device rate limit: a token bucket per device ID (EST is rare per device: enroll once, renew yearly).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Buckets kept before idle full ones are dropped.
const MAX_BUCKETS: usize = 100_000;

/// How many requests a device may make: `burst` at once, then one per `refill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Bucket size.
    pub burst: u32,
    /// Time to earn one more request.
    pub refill: Duration,
}

impl RateLimit {
    /// `burst` requests, then one per `refill`.
    pub fn new(burst: u32, refill: Duration) -> Self {
        Self { burst, refill }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::new(10, Duration::from_secs(60))
    }
}

#[derive(Debug)]
pub(crate) struct Limiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one request for `key`, or say how long to wait.
    pub(crate) fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.limit.burst.max(1));
        let per = self.limit.refill.as_secs_f64().max(1e-3);
        let mut map = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_BUCKETS {
            map.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() / per < burst
            });
        }
        let (tokens, at) = map.entry(key.to_owned()).or_insert((burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() / per).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) * per).max(Duration::from_secs(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket() {
        let l = Limiter::new(RateLimit::new(2, Duration::from_secs(10)));
        let t = Instant::now();
        assert!(l.take("a", t).is_ok());
        assert!(l.take("a", t).is_ok());
        let wait = l.take("a", t).unwrap_err();
        assert!(wait >= Duration::from_secs(9), "{wait:?}");
        assert!(l.take("b", t).is_ok());
        assert!(l.take("a", t + Duration::from_secs(10)).is_ok());
    }
}

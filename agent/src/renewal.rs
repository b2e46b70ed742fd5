//! When to renew: at two thirds of the certificate's lifetime (so a device that misses a few attempts still
//! renews well before expiry).

use std::time::{Duration, SystemTime};

/// The moment renewal is due for a certificate valid from `not_before` to `not_after`:
/// `not_before + 2/3 * (not_after - not_before)`.
pub fn renewal_due_at(not_before: SystemTime, not_after: SystemTime) -> SystemTime {
    let life = not_after
        .duration_since(not_before)
        .unwrap_or(Duration::ZERO);
    not_before + life * 2 / 3
}

/// Whether a certificate valid from `not_before` to `not_after` should be renewed at `now`.
pub fn renewal_due(not_before: SystemTime, not_after: SystemTime, now: SystemTime) -> bool {
    now >= renewal_due_at(not_before, not_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_thirds() {
        let nb = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let na = nb + Duration::from_secs(300);
        assert_eq!(renewal_due_at(nb, na), nb + Duration::from_secs(200));
        assert!(!renewal_due(nb, na, nb + Duration::from_secs(199)));
        assert!(renewal_due(nb, na, nb + Duration::from_secs(200)));
    }
}

//! When to fetch credentials again: ahead of their expiry (with jitter, so
//! a fleet of gateways does not call the source in the same second), and
//! after a failure with capped exponential backoff (with jitter). Pure: the
//! clock and the random seed are arguments.

/// Refresh this long before the expiry (the AWS SDKs prefetch 5 to 15
/// minutes ahead) ...
pub const REFRESH_AHEAD_SECONDS: u64 = 15 * 60;
/// ... but never earlier than halfway through what is left, so short-lived
/// credentials are still used for a while ...
const MIN_USE_FRACTION: u64 = 2;
/// ... and never later than this before the expiry: the fetch (up to four
/// calls) and the 1 s tick must fit before [`EXPIRY_MARGIN_SECONDS`] ends
/// the credentials' use. Only lifetimes under 20 s (no AWS source hands
/// those out) cannot get both.
pub const MIN_LEAD_SECONDS: u64 = EXPIRY_MARGIN_SECONDS + 5;
/// Credentials this close to their expiry are not used to sign: the
/// request could reach AWS after they expired.
pub const EXPIRY_MARGIN_SECONDS: u64 = 5;
/// Backoff after failures: 1 s, 2 s, 4 s … up to a minute. Never Envoy's
/// hour-long wait.
pub const BACKOFF_FIRST_SECONDS: u64 = 1;
pub const BACKOFF_MAX_SECONDS: u64 = 60;

/// Whether credentials expiring at `expires_at` may sign a request at `now`.
pub fn usable(now: u64, expires_at: u64) -> bool {
    now.saturating_add(EXPIRY_MARGIN_SECONDS) < expires_at
}

/// When to refresh credentials fetched at `fetched_at` that expire at
/// `expires_at`. `seed` is any random number; it moves the time earlier by
/// up to a fifth of the lead.
pub fn refresh_at(fetched_at: u64, expires_at: u64, seed: u64) -> u64 {
    let lifetime = expires_at.saturating_sub(fetched_at);
    let lead = REFRESH_AHEAD_SECONDS
        .min(lifetime / MIN_USE_FRACTION)
        .max(MIN_LEAD_SECONDS)
        .min(lifetime);
    let jitter = fraction_of(lead / 5, seed);
    expires_at
        .saturating_sub(lead)
        .saturating_sub(jitter)
        .max(fetched_at)
}

/// Seconds to wait after the `failures`-th failure in a row (1-based):
/// between half and all of the capped exponential step ("equal jitter").
pub fn backoff_seconds(failures: u32, seed: u64) -> u64 {
    let step = BACKOFF_FIRST_SECONDS
        .checked_shl(failures.saturating_sub(1))
        .unwrap_or(BACKOFF_MAX_SECONDS)
        .min(BACKOFF_MAX_SECONDS);
    let half = step / 2;
    (step - half) + fraction_of(half, seed)
}

/// A number in `0..=max` picked by `seed`.
fn fraction_of(max: u64, seed: u64) -> u64 {
    // Mix the seed so nearby seeds (timestamps) spread out.
    let mixed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    mixed % max.saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_long_credentials_refresh_a_quarter_hour_ahead_with_jitter() {
        let (fetched, expires) = (1_000_000, 1_000_000 + 3_600);
        let times: Vec<u64> = (0..500).map(|s| refresh_at(fetched, expires, s)).collect();
        let latest = expires - REFRESH_AHEAD_SECONDS;
        assert!(
            times.iter().all(|&t| t <= latest && t >= latest - 180),
            "{times:?}"
        );
        let distinct: std::collections::BTreeSet<_> = times.iter().collect();
        assert!(distinct.len() > 50, "jitter spreads: {}", distinct.len());
    }

    #[test]
    fn short_lived_credentials_are_used_for_half_their_life_at_least() {
        // 60 s credentials: refreshed 24 to 30 s before expiry.
        for seed in 0..100 {
            let t = refresh_at(100, 160, seed);
            assert!((124..=130).contains(&t), "{t}");
        }
        // The tests' 20 s credentials: 10 to 12 s before expiry, which
        // leaves at least 5 s to fetch before they stop signing.
        for seed in 0..100 {
            let t = refresh_at(100, 120, seed);
            assert!((108..=110).contains(&t), "{t}");
            assert!(usable(t + 4, 120));
        }
        assert_eq!(refresh_at(100, 108, 0), 100, "under the lead: at once");
        assert_eq!(refresh_at(100, 100, 7), 100, "already expired: now");
        assert_eq!(
            refresh_at(100, 50, 7),
            100,
            "expired before it was fetched: now"
        );
    }

    #[test]
    fn credentials_about_to_expire_do_not_sign() {
        assert!(usable(100, 106));
        assert!(!usable(100, 105));
        assert!(!usable(u64::MAX, u64::MAX));
    }

    #[test]
    fn backoff_doubles_to_a_minute_with_equal_jitter() {
        for seed in 0..200 {
            assert_eq!(backoff_seconds(1, seed), 1);
            assert!((1..=2).contains(&backoff_seconds(2, seed)));
            assert!((4..=8).contains(&backoff_seconds(4, seed)));
            assert!((30..=60).contains(&backoff_seconds(7, seed)));
            assert!((30..=60).contains(&backoff_seconds(40, seed)));
            assert!((30..=60).contains(&backoff_seconds(u32::MAX, seed)));
        }
        assert_eq!(backoff_seconds(0, 3), 1, "0 counts as the first failure");
    }
}

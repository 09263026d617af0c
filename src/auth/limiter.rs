//! Slowing down password and second-factor guessing without letting an attacker lock a real user out
//! (ASVS 6.1.1, 6.3.1, 6.6.3). In memory, per process; keys are keyed hashes of the account name and the
//! client address, so the limiter never holds an email or IP address in clear.
//!
//! Failed attempts are counted in three buckets, each with exponential backoff once its free allowance is
//! used up (the wait doubles with each further failure, up to a cap), forgotten after a quiet period:
//! - **account and address together** (5 free, cap 15 min): an attacker guessing one account from one place
//!   is slowed hard, and only that pair is — the real user, elsewhere, is not affected;
//! - **address** (20 free, cap 15 min): one place spraying many accounts;
//! - **account** (30 free, cap 1 min): many places guessing one account. The low cap is what keeps a
//!   distributed attacker from locking the real user out: at worst they wait a minute.
//!
//! Second-factor failures (the password was right) also count against the account: at most 5 per
//! 5 minutes (R3), after which codes are refused until the window passes — only someone who knows the
//! password can cause that.
//!
//! Several instances behind a load balancer each keep their own counts: the limits then apply per instance.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore as _;

/// One bucket's rules.
#[derive(Debug, Clone, Copy)]
struct Rule {
    free: u32,
    base: Duration,
    cap: Duration,
}

const PAIR: Rule = Rule {
    free: 5,
    base: Duration::from_secs(1),
    cap: Duration::from_secs(15 * 60),
};
const ADDRESS: Rule = Rule {
    free: 20,
    base: Duration::from_secs(1),
    cap: Duration::from_secs(15 * 60),
};
const ACCOUNT: Rule = Rule {
    free: 30,
    base: Duration::from_secs(1),
    cap: Duration::from_secs(60),
};
/// Second-factor failures allowed per account in [`MFA_WINDOW`].
pub const MFA_FAILURES_ALLOWED: u32 = 5;
/// The second-factor window.
pub const MFA_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Counts are forgotten after this long without a failure.
const QUIET: Duration = Duration::from_secs(30 * 60);
/// Past this many tracked keys, stale ones are pruned.
const PRUNE_AT: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    failures: u32,
    last_failure: Instant,
    mfa_failures: u32,
    mfa_window_start: Instant,
}

impl Bucket {
    fn fresh(now: Instant) -> Self {
        Bucket {
            failures: 0,
            last_failure: now,
            mfa_failures: 0,
            mfa_window_start: now,
        }
    }

    fn wait(&self, rule: Rule, now: Instant) -> Option<Duration> {
        if self.failures < rule.free || now.duration_since(self.last_failure) >= QUIET {
            return None;
        }
        let over = self.failures - rule.free;
        let delay = rule.base.saturating_mul(1_u32 << over.min(20)).min(rule.cap);
        let ready = self.last_failure + delay;
        (ready > now).then(|| ready - now)
    }
}

/// The key of one login attempt (hashed).
#[derive(Debug, Clone)]
pub struct AttemptKey {
    account: [u8; 32],
    address: [u8; 32],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Slot {
    Pair([u8; 32], [u8; 32]),
    Address([u8; 32]),
    Account([u8; 32]),
}

/// The login limiter. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct LoginLimiter {
    secret: [u8; 32],
    buckets: Mutex<HashMap<Slot, Bucket>>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl LoginLimiter {
    /// A limiter with a fresh random hashing key.
    pub fn new() -> Self {
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        LoginLimiter {
            secret,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn digest(&self, domain: &str, value: &str) -> [u8; 32] {
        crate::crypto::keyed_digest(&self.secret, domain, value)
    }

    /// The hashed key for an account name (normalised) and a client address.
    pub fn key(&self, account: &str, address: &str) -> AttemptKey {
        AttemptKey {
            account: self.digest("account", &account.trim().to_lowercase()),
            address: self.digest("address", address),
        }
    }

    fn slots(key: &AttemptKey) -> [(Slot, Rule); 3] {
        [
            (Slot::Pair(key.account, key.address), PAIR),
            (Slot::Address(key.address), ADDRESS),
            (Slot::Account(key.account), ACCOUNT),
        ]
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<Slot, Bucket>) -> T) -> T {
        let mut guard = match self.buckets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// How long this attempt must wait before it may be tried, if at all.
    pub fn check(&self, key: &AttemptKey) -> Option<Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &AttemptKey, now: Instant) -> Option<Duration> {
        self.with(|buckets| {
            Self::slots(key)
                .iter()
                .filter_map(|(slot, rule)| buckets.get(slot).and_then(|b| b.wait(*rule, now)))
                .max()
        })
    }

    /// Records a failed attempt (wrong password, unknown account, wrong code).
    pub fn failed(&self, key: &AttemptKey) {
        self.failed_at(key, Instant::now());
    }

    fn failed_at(&self, key: &AttemptKey, now: Instant) {
        self.with(|buckets| {
            if buckets.len() > PRUNE_AT {
                buckets.retain(|_, b| now.duration_since(b.last_failure) < QUIET);
            }
            for (slot, _) in Self::slots(key) {
                let bucket = buckets.entry(slot).or_insert_with(|| Bucket::fresh(now));
                if now.duration_since(bucket.last_failure) >= QUIET {
                    bucket.failures = 0;
                }
                bucket.failures = bucket.failures.saturating_add(1);
                bucket.last_failure = now;
            }
        });
    }

    /// True when the account may try another second-factor code now.
    pub fn mfa_allowed(&self, key: &AttemptKey) -> bool {
        let now = Instant::now();
        self.with(|buckets| {
            buckets.get(&Slot::Account(key.account)).is_none_or(|b| {
                now.duration_since(b.mfa_window_start) >= MFA_WINDOW || b.mfa_failures < MFA_FAILURES_ALLOWED
            })
        })
    }

    /// Records a wrong or replayed second-factor code.
    pub fn mfa_failed(&self, key: &AttemptKey) {
        let now = Instant::now();
        self.with(|buckets| {
            let bucket = buckets
                .entry(Slot::Account(key.account))
                .or_insert_with(|| Bucket::fresh(now));
            if now.duration_since(bucket.mfa_window_start) >= MFA_WINDOW {
                bucket.mfa_failures = 0;
                bucket.mfa_window_start = now;
            }
            bucket.mfa_failures = bucket.mfa_failures.saturating_add(1);
        });
    }

    /// Forgets the failures of this account from this address after a successful login (the account-wide
    /// and address-wide counts stay: an attacker elsewhere is not forgiven by the real user's success).
    pub fn succeeded(&self, key: &AttemptKey) {
        self.with(|buckets| {
            buckets.remove(&Slot::Pair(key.account, key.address));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_per_pair_and_spares_the_real_user_elsewhere() {
        let limiter = LoginLimiter::new();
        let attacker = limiter.key("aida@x.org", "203.0.113.9");
        let real_user = limiter.key("Aida@X.org ", "198.51.100.7");
        let start = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.check_at(&attacker, start), None);
            limiter.failed_at(&attacker, start);
        }
        let wait = limiter.check_at(&attacker, start);
        assert!(wait.is_some_and(|w| w <= Duration::from_secs(1)), "{wait:?}");
        for _ in 0..5 {
            limiter.failed_at(&attacker, start);
        }
        assert!(
            limiter
                .check_at(&attacker, start)
                .is_some_and(|w| w >= Duration::from_secs(32))
        );
        assert_eq!(
            limiter.check_at(&real_user, start),
            None,
            "the real user elsewhere is not slowed"
        );
        // A distributed attack on the account slows the real user by at most a minute.
        for i in 0..40 {
            limiter.failed_at(&limiter.key("aida@x.org", &format!("10.0.0.{i}")), start);
        }
        let wait = limiter.check_at(&real_user, start);
        assert!(wait.is_some_and(|w| w <= ACCOUNT.cap), "{wait:?}");
        assert_eq!(
            limiter.check_at(&real_user, start + QUIET),
            None,
            "forgotten after a quiet period"
        );
    }

    #[test]
    fn second_factor_attempts_are_capped_per_window() {
        let limiter = LoginLimiter::new();
        let key = limiter.key("a@x.org", "1");
        for _ in 0..MFA_FAILURES_ALLOWED {
            assert!(limiter.mfa_allowed(&key));
            limiter.mfa_failed(&key);
        }
        assert!(!limiter.mfa_allowed(&key));
        assert!(limiter.mfa_allowed(&limiter.key("b@x.org", "1")));
    }
}

//! Capped exponential backoff between attempts, with optional jitter: one schedule for readiness
//! probes, waits on the engine and retried Secret Manager requests.

use std::time::Duration;

use rand::Rng;

/// Waits between attempts: `first`, doubling up to `cap` (by default 10 ms to 250 ms). With
/// jitter, each wait is drawn from the upper half of that schedule, so that clients retrying
/// together spread out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    jitter: bool,
    /// Waits handed out so far.
    waits: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(10), Duration::from_millis(250))
    }
}

impl Backoff {
    pub const fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff {
            first,
            cap,
            jitter: false,
            waits: 0,
        }
    }

    /// The same schedule, each wait drawn at random from its upper half.
    pub const fn with_jitter(self) -> Backoff {
        Backoff {
            jitter: true,
            ..self
        }
    }

    /// For readiness probes from the host: 10 ms doubling to 50 ms. A failed attempt costs one
    /// loopback connect, while every millisecond slept after the service became ready is
    /// waited for nothing (with a 250 ms cap, 125 ms on average on each service's last wait).
    pub fn probe() -> Self {
        Backoff::new(Duration::from_millis(10), Duration::from_millis(50))
    }

    /// The longest wait.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// The wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.waits = self.waits.saturating_add(1);
        let draw = if self.jitter {
            rand::rng().random()
        } else {
            1.0
        };
        self.delay(self.waits, draw)
    }

    /// The wait before retry number `retry` (1-based): `first * 2^(retry-1)`, capped. With
    /// jitter, its upper half is scaled by `draw` (0..=1); without, `draw` is not used.
    pub fn delay(&self, retry: u32, draw: f64) -> Duration {
        let exp = self
            .first
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.cap);
        if self.jitter {
            exp / 2 + exp.mul_f64(draw.clamp(0.0, 1.0) / 2.0)
        } else {
            exp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        let mut b = Backoff::default();
        let delays: Vec<u128> = (0..7).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 250, 250]);
    }

    #[test]
    fn probe_backoff_caps_at_50_ms() {
        let mut b = Backoff::probe();
        let delays: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [10, 20, 40, 50, 50]);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500)).with_jitter();
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(b.delay(2, 1.0), Duration::from_millis(200));
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(300));
        assert_eq!(b.delay(4, 1.0), Duration::from_millis(500));
        assert_eq!(b.delay(30, 1.0), Duration::from_millis(500));
        assert_eq!(b.delay(30, 0.0), Duration::from_millis(250));
    }

    #[test]
    fn jittered_waits_stay_in_the_upper_half_of_the_schedule() {
        let mut b =
            Backoff::new(Duration::from_millis(100), Duration::from_millis(400)).with_jitter();
        for exp in [100, 200, 400, 400, 400] {
            let d = b.next_delay();
            let exp = Duration::from_millis(exp);
            assert!(
                d >= exp / 2 && d <= exp,
                "{d:?} outside {:?}..={exp:?}",
                exp / 2
            );
        }
    }

    #[test]
    fn without_jitter_the_draw_changes_nothing() {
        let b = Backoff::default();
        assert_eq!(b.delay(3, 0.0), b.delay(3, 1.0));
        assert_eq!(b.delay(3, 0.0), Duration::from_millis(40));
    }
}

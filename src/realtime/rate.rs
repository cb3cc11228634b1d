//! A fixed-window rate limit, pure: the caller passes the monotonic time in.

/// Counts events per one-second window.
#[derive(Debug, Clone, Default)]
pub struct RateWindow {
    /// Start of the current window, monotonic nanoseconds.
    window_start_ns: u64,
    /// Events allowed in the current window.
    count: u32,
}

/// One second in nanoseconds.
const SECOND_NS: u64 = 1_000_000_000;

impl RateWindow {
    /// Whether one more event at `now_ns` stays within `max_per_second`; counts it if so.
    pub fn allow(&mut self, now_ns: u64, max_per_second: u32) -> bool {
        if now_ns.saturating_sub(self.window_start_ns) >= SECOND_NS || self.count == 0 {
            self.window_start_ns = now_ns;
            self.count = 0;
        }
        if self.count >= max_per_second {
            return false;
        }
        self.count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::RateWindow;

    #[test]
    fn allows_max_per_second_then_refuses_until_the_window_moves() {
        let mut w = RateWindow::default();
        let t0 = 5_000_000_000;
        for _ in 0..10 {
            assert!(w.allow(t0, 10));
        }
        assert!(!w.allow(t0 + 999_999_999, 10));
        assert!(w.allow(t0 + 1_000_000_000, 10));
    }
}

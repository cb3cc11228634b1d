//! SLOWLOG as Redis 7.0.15 keeps it: every command that runs for at least
//! `slowlog-log-slower-than` microseconds (0: every command; negative: none) is kept with an
//! increasing id, the unix time it finished, its run time, its arguments (at most
//! [`ENTRY_ARGS_MAX`], each cut at [`ENTRY_ARG_BYTES_MAX`] bytes, as Redis marks the cuts), the
//! client's `ip:port` and name; the newest `slowlog-max-len` entries are kept.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

/// Arguments kept per entry (Redis's `SLOWLOG_ENTRY_MAX_ARGC`); the last says how many more.
pub(crate) const ENTRY_ARGS_MAX: usize = 32;
/// Bytes kept per argument (Redis's `SLOWLOG_ENTRY_MAX_STRING`); the rest is counted.
pub(crate) const ENTRY_ARG_BYTES_MAX: usize = 128;
/// Largest `slowlog-max-len`: an entry holds up to about 4.5 KB of arguments, so the log is
/// bounded at about 450 MB (Redis has no bound of its own).
pub(crate) const MAX_LEN_MAX: u32 = 100_000;
/// `slowlog-log-slower-than` and `slowlog-max-len` defaults, as Redis's.
pub(crate) const SLOWER_THAN_US_DEFAULT: i64 = 10_000;
pub(crate) const MAX_LEN_DEFAULT: usize = 128;

/// Who ran a command, asked only when the command is logged: its `ip:port` and name.
pub(crate) type Caller<'a> = Option<&'a dyn Fn() -> (String, Bytes)>;

/// One logged command.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) id: u64,
    pub(crate) time_s: u64,
    pub(crate) micros: u64,
    pub(crate) args: Vec<Bytes>,
    pub(crate) peer: String,
    pub(crate) name: Bytes,
}

/// The slow log.
#[derive(Debug)]
pub(crate) struct Slowlog {
    entries: Mutex<VecDeque<Entry>>,
    next_id: AtomicU64,
    slower_than_us: AtomicI64,
    max_len: AtomicUsize,
}

impl Default for Slowlog {
    fn default() -> Self {
        Self {
            entries: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(0),
            slower_than_us: AtomicI64::new(SLOWER_THAN_US_DEFAULT),
            max_len: AtomicUsize::new(MAX_LEN_DEFAULT),
        }
    }
}

/// `args` as an entry keeps them.
fn kept_args(args: &[&[u8]]) -> Vec<Bytes> {
    let kept = args.len().min(ENTRY_ARGS_MAX);
    (0..kept)
        .map(|j| {
            if kept != args.len() && j == kept - 1 {
                return Bytes::from(format!("... ({} more arguments)", args.len() - kept + 1));
            }
            let a = args.get(j).copied().unwrap_or_default();
            match a.get(..ENTRY_ARG_BYTES_MAX) {
                Some(head) if a.len() > ENTRY_ARG_BYTES_MAX => {
                    let mut s = head.to_vec();
                    s.extend_from_slice(
                        format!("... ({} more bytes)", a.len() - ENTRY_ARG_BYTES_MAX).as_bytes(),
                    );
                    Bytes::from(s)
                }
                _ => Bytes::copy_from_slice(a),
            }
        })
        .collect()
}

impl Slowlog {
    fn entries(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `slowlog-log-slower-than`.
    pub(crate) fn set_slower_than_us(&self, us: i64) {
        self.slower_than_us.store(us, Ordering::Relaxed);
    }

    /// `slowlog-max-len`: also drops the oldest entries past it.
    pub(crate) fn set_max_len(&self, len: usize) {
        self.max_len.store(len, Ordering::Relaxed);
        let mut entries = self.entries();
        while entries.len() > len {
            entries.pop_back();
        }
    }

    /// Whether a command that ran `nanos` is slow enough to log.
    pub(crate) fn wants(&self, nanos: u64) -> bool {
        let slower_than = self.slower_than_us.load(Ordering::Relaxed);
        slower_than >= 0 && i64::try_from(nanos / 1000).unwrap_or(i64::MAX) >= slower_than
    }

    /// Logs a command that ran `nanos` and finished at unix second `time_s`, when that is slow
    /// enough (`slowlogPushEntryIfNeeded`).
    pub(crate) fn observe(&self, args: &[&[u8]], nanos: u64, time_s: u64, caller: Caller<'_>) {
        if !self.wants(nanos) {
            return;
        }
        let micros = nanos / 1000;
        // EXEC's commands are logged one by one, as Redis flags EXEC `skip_slowlog`.
        if args
            .first()
            .is_some_and(|name| name.eq_ignore_ascii_case(b"exec"))
        {
            return;
        }
        let (peer, name) = caller.map(|c| c()).unwrap_or_default();
        let entry = Entry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            time_s,
            micros,
            args: kept_args(args),
            peer,
            name,
        };
        let max_len = self.max_len.load(Ordering::Relaxed);
        let mut entries = self.entries();
        entries.push_front(entry);
        while entries.len() > max_len {
            entries.pop_back();
        }
    }

    /// The newest `count` entries, newest first.
    pub(crate) fn newest(&self, count: usize) -> Vec<Entry> {
        self.entries().iter().take(count).cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries().len()
    }

    pub(crate) fn reset(&self) {
        self.entries().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_cut_as_redis_cuts_them() {
        let long = vec![b'x'; ENTRY_ARG_BYTES_MAX + 5];
        let kept = kept_args(&[b"set", b"k", &long]);
        assert_eq!(kept.len(), 3);
        let mut want = vec![b'x'; ENTRY_ARG_BYTES_MAX];
        want.extend_from_slice(b"... (5 more bytes)");
        assert_eq!(&kept[2][..], &want[..]);
        let exact = vec![b'y'; ENTRY_ARG_BYTES_MAX];
        assert_eq!(&kept_args(&[&exact])[0][..], &exact[..]);

        let many: Vec<Vec<u8>> = (0..40).map(|i| i.to_string().into_bytes()).collect();
        let refs: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
        let kept = kept_args(&refs);
        assert_eq!(kept.len(), ENTRY_ARGS_MAX);
        assert_eq!(&kept[30][..], b"30");
        assert_eq!(&kept[31][..], b"... (9 more arguments)");
        let max: Vec<&[u8]> = refs[..ENTRY_ARGS_MAX].to_vec();
        assert_eq!(&kept_args(&max)[31][..], b"31");
    }

    #[test]
    fn the_log_keeps_the_newest_entries_over_the_threshold() {
        let log = Slowlog::default();
        log.set_slower_than_us(1000);
        log.observe(&[b"get", b"a"], 999_999, 5, None);
        assert_eq!(log.len(), 0);
        log.set_max_len(2);
        for i in 0..3u64 {
            log.observe(&[b"get", i.to_string().as_bytes()], 1_000_000, 5 + i, None);
        }
        let entries = log.newest(10);
        assert_eq!(entries.len(), 2);
        assert_eq!(
            (entries[0].id, entries[0].time_s, entries[0].micros),
            (2, 7, 1000)
        );
        assert_eq!(entries[1].id, 1);
        log.observe(&[b"exec"], 1_000_000, 9, None);
        assert_eq!(log.len(), 2, "EXEC itself is not logged");
        log.set_slower_than_us(-1);
        log.observe(&[b"get", b"a"], u64::MAX, 9, None);
        assert_eq!(log.len(), 2, "negative turns the log off");
        log.set_max_len(1);
        assert_eq!(log.len(), 1);
        log.reset();
        assert_eq!(log.len(), 0);
    }
}

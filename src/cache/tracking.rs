//! Client-side caching, as Redis 7.0.15's `tracking.c`: CLIENT TRACKING's table of the keys each
//! client read, its broadcast (BCAST) prefixes, and the `invalidate` messages a change sends.
//!
//! - **Default mode.** After a read-only command of a tracking client, the keys it read are
//!   remembered with the client's id (in OPTIN mode only after `CLIENT CACHING yes`, in OPTOUT
//!   mode unless `CLIENT CACHING no`; a script's declared keys once it called a read-only
//!   command). The first change of such a key sends each of those clients one message naming
//!   it and forgets the key: the client reads it again to be told again.
//! - **BCAST mode.** No table: every change of a key under one of the client's prefixes (the
//!   empty prefix: every key) is sent to it, one message per prefix per command, its keys
//!   sorted.
//! - **Delivery.** Through the client's own [`Outbox`] (a RESP3 push `invalidate`, written
//!   after the reply of the command that caused it), or with `REDIRECT id` through the other
//!   client's (a push in RESP3, a `message` on `__redis__:invalidate` to a RESP2 subscriber;
//!   the receiving connection chooses by its protocol). When the redirect target is gone,
//!   the tracking client gets `tracking-redir-broken` instead (RESP3). NOLOOP leaves out the
//!   keys the client changed itself. A flush sends every tracking client a null key list and
//!   empties the table.
//! - **Bounds.** The table holds at most `tracking-table-max-keys` keys (0: no limit, as
//!   Redis): past it, keys are forgotten with an invalidation to their readers until it is
//!   under the limit again. A client's prefixes are bounded by its command's arguments.
//!   Entries of clients that turned tracking off or left stay until their key changes or
//!   is forgotten, as in Redis; messages to a client that is gone are not sent.
//!
//! Invariant: `items` is the sum of the id sets' lengths in `table`; `on` is the number of
//! clients in `clients`.
//!
//! Reads are remembered while the command still holds its shards' locks ([`Tracking::remember`]
//! is called before the context is released), and changes are sent after the writer released
//! them: a write to a key that a concurrent read just read therefore finds that read in the
//! table, so no reader misses the invalidation of a value it got.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use hashbrown::{HashMap, HashSet};

use crate::cache::EventKind;
use crate::cache::keyspace::Effect;
use crate::cache::pubsub::{Message, ObufLimit, Outbox};

/// Who a command runs for: the client's id (0: none, e.g. the HTTP API or a flow) and whether
/// the keys its read-only commands read are to be remembered for that client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RunFor {
    /// The client's id (0: not a RESP client).
    pub(crate) client: u64,
    /// Remember the keys this command reads (tracking on, not BCAST, OPTIN/OPTOUT allowing).
    pub(crate) remember_reads: bool,
}

impl RunFor {
    /// A command run for no client.
    pub(crate) const NONE: Self = Self {
        client: 0,
        remember_reads: false,
    };
}

/// CLIENT TRACKING ON's options.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// REDIRECT's client id and outbox.
    pub(crate) redirect: Option<(u64, Arc<Outbox>)>,
    pub(crate) bcast: bool,
    pub(crate) optin: bool,
    pub(crate) optout: bool,
    pub(crate) noloop: bool,
    /// PREFIX arguments, in order.
    pub(crate) prefixes: Vec<Bytes>,
}

/// A tracking client's state, as CLIENT TRACKINGINFO reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Info {
    pub(crate) bcast: bool,
    pub(crate) optin: bool,
    pub(crate) optout: bool,
    pub(crate) noloop: bool,
    /// Its redirect target went away.
    pub(crate) broken_redirect: bool,
    /// REDIRECT's id (0: none).
    pub(crate) redirect: u64,
    /// Its prefixes, sorted.
    pub(crate) prefixes: Vec<Bytes>,
}

impl Info {
    /// REDIRECT's id as CLIENT GETREDIR, TRACKINGINFO and LIST report it.
    pub(crate) fn redirect_id(&self) -> i64 {
        // Client ids are counted up from 1, far below `i64::MAX`.
        i64::try_from(self.redirect).unwrap_or(i64::MAX)
    }
}

/// One tracking client.
#[derive(Debug)]
struct Client {
    outbox: Arc<Outbox>,
    redirect: Option<(u64, Arc<Outbox>)>,
    bcast: bool,
    optin: bool,
    optout: bool,
    noloop: bool,
    broken_redirect: bool,
    prefixes: BTreeSet<Bytes>,
}

#[derive(Debug, Default)]
struct State {
    clients: HashMap<u64, Client>,
    /// Key → ids of the clients that read it (Redis's `TrackingTable`).
    table: HashMap<Bytes, HashSet<u64>>,
    /// Sum of the id sets' lengths (INFO `tracking_total_items`).
    items: usize,
    /// BCAST prefix → ids of the clients registered for it (Redis's `PrefixTable`).
    prefixes: BTreeMap<Bytes, HashSet<u64>>,
}

/// The registry.
#[derive(Debug)]
pub(crate) struct Tracking {
    /// Clients with tracking on: 0 keeps the command path from taking the lock.
    on: AtomicUsize,
    /// `tracking-table-max-keys` (0: no limit).
    max_keys: AtomicU64,
    state: Mutex<State>,
}

impl Default for Tracking {
    fn default() -> Self {
        Self {
            on: AtomicUsize::new(0),
            max_keys: AtomicU64::new(TRACKING_TABLE_MAX_KEYS_DEFAULT),
            state: Mutex::default(),
        }
    }
}

/// `tracking-table-max-keys`'s default, as Redis's.
pub(crate) const TRACKING_TABLE_MAX_KEYS_DEFAULT: u64 = 1_000_000;

/// What invalidation messages are held to: the tracking client's own output buffer class, its
/// redirect target's, and the wall clock ([`crate::cache::Inner::tracking_limits`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) own: ObufLimit,
    pub(crate) redirect: ObufLimit,
    pub(crate) now_ms: u64,
}

impl Tracking {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether any client has tracking on.
    pub(crate) fn is_active(&self) -> bool {
        self.on.load(Ordering::Relaxed) > 0
    }

    /// Turns tracking on for `client` (again: its flags and redirect are replaced, BCAST
    /// prefixes added), after Redis's checks of the options against each other and against
    /// its current mode.
    ///
    /// # Errors
    /// Redis's error text.
    pub(crate) fn enable(
        &self,
        client: u64,
        outbox: &Arc<Outbox>,
        options: Options,
    ) -> Result<(), String> {
        if !options.bcast && !options.prefixes.is_empty() {
            return Err("ERR PREFIX option requires BCAST mode to be enabled".into());
        }
        let mut st = self.state();
        let current = st.clients.get(&client);
        if current.is_some_and(|c| c.bcast != options.bcast) {
            return Err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.".into());
        }
        if options.bcast && (options.optin || options.optout) {
            return Err("ERR OPTIN and OPTOUT are not compatible with BCAST".into());
        }
        if options.optin && options.optout {
            return Err("ERR You can't use both OPTIN and OPTOUT".into());
        }
        if current.is_some_and(|c| (options.optin && c.optout) || (options.optout && c.optin)) {
            return Err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.".into());
        }
        if options.bcast {
            let held = current.map(|c| &c.prefixes);
            check_prefixes(held, &options.prefixes)?;
        }
        let mut added = options.prefixes;
        if options.bcast && added.is_empty() {
            // Redis's `enableTracking`: BCAST without PREFIX registers the empty prefix.
            added.push(Bytes::new());
        }
        let entry = st.clients.entry(client).or_insert_with(|| {
            self.on.fetch_add(1, Ordering::Relaxed);
            Client {
                outbox: outbox.clone(),
                redirect: None,
                bcast: false,
                optin: false,
                optout: false,
                noloop: false,
                broken_redirect: false,
                prefixes: BTreeSet::new(),
            }
        });
        entry.redirect = options.redirect;
        entry.bcast = options.bcast;
        entry.optin = options.optin;
        entry.optout = options.optout;
        entry.noloop = options.noloop;
        entry.broken_redirect = false;
        entry.prefixes.extend(added.iter().cloned());
        for prefix in added {
            st.prefixes.entry(prefix).or_default().insert(client);
        }
        Ok(())
    }

    /// Turns tracking off for `client` (its entries in the table stay until their keys change).
    pub(crate) fn disable(&self, client: u64) {
        let mut st = self.state();
        let Some(c) = st.clients.remove(&client) else {
            return;
        };
        self.on.fetch_sub(1, Ordering::Relaxed);
        for prefix in c.prefixes {
            if let Some(ids) = st.prefixes.get_mut(&prefix) {
                ids.remove(&client);
                if ids.is_empty() {
                    st.prefixes.remove(&prefix);
                }
            }
        }
    }

    /// `client`'s state, `None` when its tracking is off.
    pub(crate) fn info(&self, client: u64) -> Option<Info> {
        let st = self.state();
        st.clients.get(&client).map(|c| Info {
            bcast: c.bcast,
            optin: c.optin,
            optout: c.optout,
            noloop: c.noloop,
            broken_redirect: c.broken_redirect,
            redirect: c.redirect.as_ref().map_or(0, |(id, _)| *id),
            prefixes: c.prefixes.iter().cloned().collect(),
        })
    }

    /// INFO's `tracking_clients`, `tracking_total_keys`, `tracking_total_items` and
    /// `tracking_total_prefixes`.
    pub(crate) fn stats(&self) -> [usize; 4] {
        let st = self.state();
        [
            st.clients.len(),
            st.table.len(),
            st.items,
            st.prefixes.len(),
        ]
    }

    /// Remembers that `client` read `keys` (called while the reading command still holds
    /// its shards), then forgets keys past `tracking-table-max-keys`.
    pub(crate) fn remember<'k>(
        &self,
        client: u64,
        keys: impl IntoIterator<Item = &'k [u8]>,
        limits: Limits,
    ) {
        let mut st = self.state();
        let st = &mut *st;
        for key in keys {
            let ids = match st.table.get_mut(key) {
                Some(ids) => ids,
                None => st.table.entry(Bytes::copy_from_slice(key)).or_default(),
            };
            if ids.insert(client) {
                st.items += 1;
            }
        }
        self.limit_keys(st, &limits);
    }

    /// Sets `tracking-table-max-keys` and forgets keys past it.
    pub(crate) fn set_max_keys(&self, max: u64, limits: Limits) {
        self.max_keys.store(max, Ordering::Relaxed);
        if self.is_active() || max > 0 {
            let mut st = self.state();
            self.limit_keys(&mut st, &limits);
        }
    }

    /// Forgets keys, each with an invalidation to its readers, until the table is within
    /// `tracking-table-max-keys` (Redis's `trackingLimitUsedSlots`, there spread over calls).
    fn limit_keys(&self, st: &mut State, limits: &Limits) {
        let max = usize::try_from(self.max_keys.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        if max == 0 {
            return;
        }
        let excess = st.table.len().saturating_sub(max);
        // Taken in one pass over the table (the first keys of its iteration, an arbitrary
        // choice as Redis's random walk is).
        let victims: Vec<Bytes> = st.table.keys().take(excess).cloned().collect();
        for key in victims {
            // Forgetting is not a change by any client, so NOLOOP does not hold it back.
            invalidate_key(st, &key, 0, limits);
        }
    }

    /// Sends the invalidations of a command's changes: `by` (0: no client) changed the keys of
    /// `effects`; `flushed` empties the table and tells every tracking client.
    pub(crate) fn changed(&self, by: u64, effects: &[Effect], flushed: bool, limits: Limits) {
        let mut st = self.state();
        let st = &mut *st;
        if flushed {
            st.table.clear();
            st.items = 0;
            let ids: Vec<u64> = st.clients.keys().copied().collect();
            for id in ids {
                send(st, id, None, &limits);
            }
        }
        for e in effects {
            invalidate_key(st, &e.key, by, &limits);
        }
        if st.prefixes.is_empty() || effects.is_empty() {
            return;
        }
        // BCAST: per prefix, the keys under it and who changed each (the last change wins; an
        // expiry or eviction is no client's change, as Redis's lazy expiry is nobody's).
        let mut per_prefix: Vec<(u64, Vec<Bytes>)> = Vec::new();
        for (prefix, ids) in &st.prefixes {
            let mut keys: BTreeMap<&Bytes, u64> = BTreeMap::new();
            for e in effects {
                if e.key.starts_with(prefix) {
                    let changer = match e.kind {
                        EventKind::Expired | EventKind::Evicted => 0,
                        _ => by,
                    };
                    keys.insert(&e.key, changer);
                }
            }
            if keys.is_empty() {
                continue;
            }
            for &id in ids {
                let noloop = st.clients.get(&id).is_some_and(|c| c.noloop);
                let for_it: Vec<Bytes> = keys
                    .iter()
                    .filter(|(_, changer)| !(noloop && **changer == id && id != 0))
                    .map(|(k, _)| (*k).clone())
                    .collect();
                if !for_it.is_empty() {
                    per_prefix.push((id, for_it));
                }
            }
        }
        for (id, keys) in per_prefix {
            send(st, id, Some(keys), &limits);
        }
    }
}

/// Redis's `checkPrefixCollisionsOrReply`: no new prefix may be a prefix of, or start with, a
/// prefix the client holds or another new one.
fn check_prefixes(held: Option<&BTreeSet<Bytes>>, new: &[Bytes]) -> Result<(), String> {
    let overlaps = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
    for (i, p) in new.iter().enumerate() {
        if let Some(h) = held.and_then(|h| h.iter().find(|h| overlaps(h, p))) {
            return Err(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(h)
            ));
        }
        if let Some(q) = new.iter().skip(i + 1).find(|q| overlaps(p, q)) {
            return Err(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(q)
            ));
        }
    }
    Ok(())
}

/// Redis's `trackingInvalidateKey` for the table: tells the clients that read `key` (not one
/// in BCAST mode, nor `by` itself when it asked for NOLOOP) and forgets the key.
fn invalidate_key(st: &mut State, key: &[u8], by: u64, limits: &Limits) {
    let Some(ids) = st.table.remove(key) else {
        return;
    };
    st.items = st.items.saturating_sub(ids.len());
    let key = Bytes::copy_from_slice(key);
    for id in ids {
        let Some(c) = st.clients.get(&id) else {
            continue;
        };
        if c.bcast || (c.noloop && id == by) {
            continue;
        }
        send(st, id, Some(vec![key.clone()]), limits);
    }
}

/// Redis's `sendTrackingMessage`: `keys` (`None`: every key) to client `id`, or to its
/// redirect target; a target that is gone marks the redirect broken and tells the client.
fn send(st: &mut State, id: u64, keys: Option<Vec<Bytes>>, limits: &Limits) {
    let Some(c) = st.clients.get_mut(&id) else {
        return;
    };
    match &c.redirect {
        Some((target, outbox)) => {
            let msg = Message::Invalidate {
                keys,
                redirected: true,
            };
            if !outbox.deliver(msg, limits.now_ms, limits.redirect) {
                c.broken_redirect = true;
                let broken = Message::RedirectBroken(*target);
                c.outbox.deliver(broken, limits.now_ms, limits.own);
            }
        }
        None => {
            let msg = Message::Invalidate {
                keys,
                redirected: false,
            };
            c.outbox.deliver(msg, limits.now_ms, limits.own);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use tokio::sync::mpsc;

    use super::*;
    use crate::cache::pubsub::{Kill, ObufClass};

    fn limits() -> Limits {
        let l = ObufLimit::default_for(ObufClass::Normal);
        Limits {
            own: l,
            redirect: l,
            now_ms: 0,
        }
    }

    fn client(id: u64) -> (Arc<Outbox>, mpsc::Receiver<Message>) {
        Outbox::new(id, Arc::new(Kill::default()))
    }

    fn effect(key: &str) -> Effect {
        Effect {
            db: 0,
            key: Bytes::copy_from_slice(key.as_bytes()),
            kind: EventKind::Set,
        }
    }

    /// Every message queued, as (keys, redirected); `None` keys for a flush.
    fn drain(rx: &mut mpsc::Receiver<Message>) -> Vec<(Option<Vec<String>>, bool)> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            match m {
                Message::Invalidate { keys, redirected } => out.push((
                    keys.map(|k| {
                        k.iter()
                            .map(|k| String::from_utf8_lossy(k).into_owned())
                            .collect()
                    }),
                    redirected,
                )),
                other => panic!("unexpected {other:?}"),
            }
        }
        out
    }

    fn keys(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn a_read_key_is_invalidated_once_and_then_forgotten() {
        let t = Tracking::default();
        let (outbox, mut rx) = client(1);
        t.enable(1, &outbox, Options::default()).unwrap();
        t.remember(1, [&b"a"[..], b"b"], limits());
        assert_eq!(t.stats(), [1, 2, 2, 0]);
        t.changed(2, &[effect("a"), effect("c")], false, limits());
        assert_eq!(drain(&mut rx), vec![(keys(&["a"]), false)]);
        t.changed(2, &[effect("a")], false, limits());
        assert!(drain(&mut rx).is_empty());
        assert_eq!(t.stats(), [1, 1, 1, 0]);
    }

    #[test]
    fn noloop_skips_the_clients_own_changes_only() {
        let t = Tracking::default();
        let (outbox, mut rx) = client(1);
        let options = Options {
            noloop: true,
            ..Options::default()
        };
        t.enable(1, &outbox, options).unwrap();
        t.remember(1, [&b"a"[..], b"b"], limits());
        t.changed(1, &[effect("a")], false, limits());
        t.changed(2, &[effect("b")], false, limits());
        assert_eq!(drain(&mut rx), vec![(keys(&["b"]), false)]);
    }

    #[test]
    fn bcast_sends_one_sorted_message_per_prefix() {
        let t = Tracking::default();
        let (outbox, mut rx) = client(1);
        let options = Options {
            bcast: true,
            prefixes: vec![Bytes::from_static(b"a:"), Bytes::from_static(b"b:")],
            ..Options::default()
        };
        t.enable(1, &outbox, options).unwrap();
        let changes = [effect("b:2"), effect("a:1"), effect("c:1"), effect("b:1")];
        t.changed(0, &changes, false, limits());
        assert_eq!(
            drain(&mut rx),
            vec![(keys(&["a:1"]), false), (keys(&["b:1", "b:2"]), false)]
        );
        assert_eq!(t.stats(), [1, 0, 0, 2]);
    }

    #[test]
    fn overlapping_prefixes_and_mixed_modes_are_refused() {
        let t = Tracking::default();
        let (outbox, _rx) = client(1);
        let prefixes = |p: &[&'static str]| Options {
            bcast: true,
            prefixes: p.iter().map(|p| Bytes::from_static(p.as_bytes())).collect(),
            ..Options::default()
        };
        let err = t
            .enable(1, &outbox, prefixes(&["FOOBAR", "FOO"]))
            .unwrap_err();
        assert!(err.starts_with("ERR Prefix 'FOOBAR' overlaps with another provided prefix 'FOO'"));
        t.enable(1, &outbox, prefixes(&["FOO", "BAR"])).unwrap();
        let err = t.enable(1, &outbox, prefixes(&["FO"])).unwrap_err();
        assert!(err.starts_with("ERR Prefix 'FO' overlaps with an existing prefix 'FOO'"));
        let err = t.enable(1, &outbox, Options::default()).unwrap_err();
        assert!(err.contains("switch BCAST mode"));
        t.disable(1);
        assert_eq!(t.stats(), [0, 0, 0, 0]);
        let both = Options {
            optin: true,
            optout: true,
            ..Options::default()
        };
        assert!(t.enable(1, &outbox, both).is_err());
        let no_bcast = Options {
            prefixes: vec![Bytes::from_static(b"x")],
            ..Options::default()
        };
        assert!(t.enable(1, &outbox, no_bcast).is_err());
    }

    #[test]
    fn a_flush_tells_every_tracking_client_and_empties_the_table() {
        let t = Tracking::default();
        let (o1, mut rx1) = client(1);
        let (o2, mut rx2) = client(2);
        t.enable(1, &o1, Options::default()).unwrap();
        let bcast = Options {
            bcast: true,
            ..Options::default()
        };
        t.enable(2, &o2, bcast).unwrap();
        t.remember(1, [&b"a"[..]], limits());
        t.changed(0, &[], true, limits());
        assert_eq!(drain(&mut rx1), vec![(None, false)]);
        assert_eq!(drain(&mut rx2), vec![(None, false)]);
        assert_eq!(t.stats(), [2, 0, 0, 1]);
    }

    #[test]
    fn the_table_keeps_at_most_max_keys_and_tells_readers_of_the_rest() {
        let t = Tracking::default();
        let (outbox, mut rx) = client(1);
        t.enable(1, &outbox, Options::default()).unwrap();
        t.set_max_keys(3, limits());
        let names: Vec<String> = (0..3).map(|i| format!("k{i}")).collect();
        t.remember(1, names.iter().map(|k| k.as_bytes()), limits());
        // At the limit: nothing forgotten.
        assert_eq!(t.stats()[1], 3);
        assert!(drain(&mut rx).is_empty());
        // One past it: one key forgotten, with its invalidation.
        t.remember(1, [&b"k3"[..]], limits());
        assert_eq!(t.stats()[1], 3);
        assert_eq!(drain(&mut rx).len(), 1);
        // Lowering the limit forgets down to it at once.
        t.set_max_keys(1, limits());
        assert_eq!(t.stats()[1], 1);
        assert_eq!(drain(&mut rx).len(), 2);
    }

    #[test]
    fn a_gone_redirect_target_marks_the_redirect_broken() {
        let t = Tracking::default();
        let (own, mut own_rx) = client(1);
        let (target, target_rx) = client(2);
        let options = Options {
            redirect: Some((2, target)),
            ..Options::default()
        };
        t.enable(1, &own, options).unwrap();
        t.remember(1, [&b"a"[..]], limits());
        drop(target_rx);
        t.changed(0, &[effect("a")], false, limits());
        assert!(matches!(own_rx.try_recv(), Ok(Message::RedirectBroken(2))));
        let info = t.info(1).unwrap();
        assert!(info.broken_redirect);
        assert_eq!(info.redirect, 2);
    }

    #[test]
    fn a_redirected_message_goes_to_the_target() {
        let t = Tracking::default();
        let (own, mut own_rx) = client(1);
        let (target, mut target_rx) = client(2);
        let options = Options {
            redirect: Some((2, target)),
            ..Options::default()
        };
        t.enable(1, &own, options).unwrap();
        t.remember(1, [&b"a"[..]], limits());
        t.changed(0, &[effect("a")], false, limits());
        assert_eq!(drain(&mut target_rx), vec![(keys(&["a"]), true)]);
        assert!(drain(&mut own_rx).is_empty());
    }
}

//! The RESP server: the listener (connection limit through a semaphore), and the per-connection
//! loop — pipelined decode, dispatch, AUTH, HELLO/RESP3, SELECT, MULTI/EXEC/WATCH, pub/sub,
//! CLIENT, blocking list pops, the output buffer limit, and SAVE, BGSAVE and SHUTDOWN (which
//! fires the shutdown trigger the server was given). (Active expiry and periodic snapshots are
//! the engine's housekeeping task, so they run with or without this server.)
//!
//! Invariant: replies are written in request order; a protocol error is answered with Redis's
//! text after the replies before it, then the connection is closed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use hashbrown::HashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::cache::cmd::{SYNTAX, is, keys::db_index};
use crate::cache::pause;
use crate::cache::pubsub::{Kill, Kind, Message, ObufClass, Outbox};
use crate::cache::resp::command::{self, Mode};
use crate::cache::resp::frame::{DecodeLimits, Frame, Request, decode_request_spans};
use crate::cache::tracking::{self, RunFor};
use crate::cache::{
    CONNECTIONS_MAX, Cache, MULTI_QUEUE_LEN_MAX, OUTPUT_BUFFER_BYTES_MAX, RESP_INLINE_BYTES_MAX,
    RESP_MULTIBULK_LEN_MAX, SUBSCRIPTIONS_MAX, WATCHED_KEYS_MAX,
};
use crate::shutdown::{Shutdown, ShutdownSignal};

/// Most bytes read ahead from a client while it is blocked in a pop.
const BLOCKED_READ_BYTES_MAX: usize = 1024 * 1024;
/// How often a blocked command with a timeout reads the injected clock: its timeout is reached
/// by whichever comes first, the runtime's timer or the clock (the same instant on the system
/// clock; a manual clock moved past the deadline ends the wait at the next check).
const BLOCKED_CLOCK_CHECK: Duration = Duration::from_millis(50);

/// Writes `out` to `socket`, giving up when `kill` fires first (a subscriber that stopped
/// reading is dropped even while a write to it is stuck). Returns whether the write completed.
/// Biased towards the write, so a write that completes at once never registers with `kill`.
async fn write_unless_killed(socket: &mut TcpStream, out: &[u8], kill: &Kill) -> bool {
    tokio::select! {
        biased;
        r = socket.write_all(out) => r.is_ok(),
        () = kill.fired() => false,
    }
}

/// Bytes read from a socket at a time.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Largest query or reply buffer a connection keeps once it is empty. A request or reply
/// bigger than this (a bulk value can be 512 MiB) grows its buffer; the buffer goes back to
/// [`READ_CHUNK_BYTES`] when it has been consumed or written, as Redis resizes the query
/// buffers of its clients, so a connection does not hold its largest request's memory for its
/// lifetime.
const BUFFER_KEEP_BYTES: usize = 1024 * 1024;

/// Spare room a query buffer may hold before the clients cron resizes it (Redis's
/// `clientsCronResizeQueryBuffer`: "wasting at least a few kbytes").
const QUERY_BUFFER_SLACK_BYTES: usize = 4 * 1024;

/// Whole seconds a client may be idle before the clients cron cuts its query buffer to what it
/// holds — to nothing, the reply buffer with it, when empty (Redis's idle time `> 2`).
const QUERY_BUFFER_IDLE_S: u64 = 2;

/// A query buffer bigger than this is cut to its recent peak when that is under half its size,
/// however busy its client (Redis's `PROTO_RESIZE_THRESHOLD`).
const QUERY_BUFFER_RESIZE_BYTES: usize = 32 * 1024;

/// Consecutive polls of the sockets that find no new request before the RESP thread goes back
/// to sleeping in the kernel (see [`poll_while_busy`]): ≈ 0.7 µs each, so an isolated request
/// costs ≈ 70 µs of polling after it (docs/benchmarks.md, "Polling while busy").
const IDLE_POLLS_BEFORE_PARK: u32 = 100;

/// How long the accept loop pauses after `accept` fails for want of a resource — descriptors
/// (EMFILE, ENFILE) or memory — as hyper's and axum's servers pause: such an error repeats at
/// once until some connection closes, so retrying at once would spin the RESP thread.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// The pause after a failed `accept`: none for an error of that one connection (it was reset
/// or aborted before it was taken), which the next `accept` does not repeat, else
/// [`ACCEPT_ERROR_PAUSE`].
fn accept_error_pause(e: &std::io::Error) -> Option<Duration> {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused
        | ErrorKind::ConnectionAborted
        | ErrorKind::ConnectionReset => None,
        _ => Some(ACCEPT_ERROR_PAUSE),
    }
}

/// What the RESP server needs besides the cache.
#[derive(Debug, Clone)]
pub struct RespConfig {
    /// Password for `AUTH` (and `HELLO … AUTH`); `None` leaves the server open.
    pub auth_token: Option<String>,
    /// Most simultaneous connections (capped at [`CONNECTIONS_MAX`]).
    pub connections_max: usize,
    /// Reply bytes buffered for one client before it is disconnected (capped at
    /// [`OUTPUT_BUFFER_BYTES_MAX`]).
    pub output_buffer_bytes_max: usize,
}

impl RespConfig {
    /// The cache's own limits with an optional password.
    #[must_use]
    pub fn from_cache(cache: &Cache, auth_token: Option<String>) -> Self {
        let c = &cache.inner().config;
        Self {
            auth_token,
            connections_max: c.connections_max,
            output_buffer_bytes_max: c.output_buffer_bytes_max,
        }
    }
}

/// A connected client as CLIENT LIST shows it.
#[derive(Debug)]
struct ClientEntry {
    addr: SocketAddr,
    /// The server address the client connected to (CLIENT KILL LADDR).
    laddr: Option<SocketAddr>,
    name: Bytes,
    db: usize,
    /// Channels, patterns and shard channels subscribed to (CLIENT LIST `sub`, `psub`,
    /// `ssub`; with any, the client is in Redis's `CLIENT_PUBSUB` state: flag `P`, CLIENT KILL
    /// TYPE `pubsub`).
    sub: usize,
    psub: usize,
    ssub: usize,
    /// Commands queued since MULTI (`None`: not in MULTI; CLIENT LIST `multi`, flag `x`).
    multi: Option<usize>,
    /// The protocol HELLO chose (CLIENT LIST `resp`).
    proto: u8,
    /// Where a tracking client redirecting here sends its invalidations.
    outbox: Arc<Outbox>,
    kill: Arc<Kill>,
    unblock: Arc<Notify>,
    unblock_error: Arc<AtomicBool>,
    blocked: Arc<AtomicBool>,
    created_ms: u64,
    /// Wall-clock ms of the client's last batch of commands (CLIENT LIST `idle`).
    active_ms: Arc<AtomicU64>,
    /// Its query buffer, as of its connection's last wait for a request.
    qbuf: Arc<QueryBufSize>,
    /// The last command it ran, as of its previous batch (CLIENT LIST `cmd`; `NULL` before
    /// any). The client itself shows the command running.
    last_cmd: &'static str,
    /// Whether it is a MONITOR (CLIENT LIST flag `O`).
    monitor: bool,
    /// CLIENT NO-EVICT ON (CLIENT LIST flag `e`); nothing evicts clients here, so it is only
    /// reported.
    no_evict: bool,
}

impl ClientEntry {
    /// Whether it has any subscription (Redis's `CLIENT_PUBSUB` flag).
    fn is_pubsub(&self) -> bool {
        self.sub + self.psub + self.ssub > 0
    }
}

/// A connection's query buffer as others see it (CLIENT LIST `qbuf` and `qbuf-free`, the
/// clients cron): the bytes it holds and its spare room, published by the connection each
/// time it waits for a request.
#[derive(Debug, Default)]
struct QueryBufSize {
    len: AtomicUsize,
    free: AtomicUsize,
}

impl QueryBufSize {
    fn publish(&self, buf: &BytesMut) {
        self.len.store(buf.len(), Ordering::Relaxed);
        self.free
            .store(buf.capacity() - buf.len(), Ordering::Relaxed);
    }

    fn get(&self) -> (usize, usize) {
        (
            self.len.load(Ordering::Relaxed),
            self.free.load(Ordering::Relaxed),
        )
    }
}

/// State shared by every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    busy: Arc<Busy>,
    cache: Cache,
    config: RespConfig,
    next_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, ClientEntry>>,
    /// Fired by a SHUTDOWN that succeeds: it stops this server and whatever else its owner
    /// started with it (the whole process, under `serve`).
    shutdown: Shutdown,
}

impl Shared {
    fn clients(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, ClientEntry>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes the clients idle for more than `timeout_s` whole seconds at `now_ms` (Redis's
    /// `clientsCronHandleTimeout`, which compares unix seconds): each leaves the client table
    /// at once and its connection closes without a reply, as CLIENT KILL does. Blocked
    /// clients, subscribers and MONITORs (replicas to Redis) are skipped, as Redis skips them.
    /// Returns how many were closed.
    pub(crate) fn close_idle(&self, now_ms: u64, timeout_s: u64) -> usize {
        let now_s = now_ms / 1000;
        let mut clients = self.clients();
        let idle: Vec<u64> = clients
            .iter()
            .filter(|(_, c)| {
                !c.monitor
                    && !c.is_pubsub()
                    && !c.blocked.load(Ordering::SeqCst)
                    && now_s.saturating_sub(c.active_ms.load(Ordering::Relaxed) / 1000) > timeout_s
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &idle {
            self.kill(&mut clients, *id);
        }
        idle.len()
    }

    /// Nudges every client whose query buffer may need resizing at `now_ms` — more than
    /// [`QUERY_BUFFER_SLACK_BYTES`] of spare room, and idle for more than
    /// [`QUERY_BUFFER_IDLE_S`] seconds or bigger than [`QUERY_BUFFER_RESIZE_BYTES`] — so that
    /// its connection applies Redis's rules ([`Connection::resize_query_buffer`]) when it next
    /// waits for a request. Returns how many were nudged (one whose last nudge is still
    /// waiting to be taken, as a blocked client's is, is not nudged again).
    pub(crate) fn nudge_query_buffers(&self, now_ms: u64) -> usize {
        let now_s = now_ms / 1000;
        let clients = self.clients();
        let mut nudged = 0;
        for c in clients.values() {
            let (len, free) = c.qbuf.get();
            let idle_s = now_s.saturating_sub(c.active_ms.load(Ordering::Relaxed) / 1000);
            if may_resize(len, len + free, idle_s) && c.kill.nudge() {
                nudged += 1;
            }
        }
        nudged
    }

    /// Takes client `id` out of `clients` (the locked table), uncounts it and tells its
    /// connection to close without a reply: CLIENT KILL's and `timeout`'s way to end a client
    /// (a connection that ends by itself finds its entry gone and leaves the count alone).
    fn kill(&self, clients: &mut BTreeMap<u64, ClientEntry>, id: u64) {
        if let Some(c) = clients.remove(&id) {
            c.kill.fire();
            self.cache
                .inner()
                .stats
                .connected_clients
                .fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Serves RESP on `listener` until `shutdown` fires; a client's SHUTDOWN fires it.
///
/// The connections are served by one dedicated thread running a single-threaded runtime, as
/// Redis serves them from one event loop: on a small machine this keeps the RESP work from
/// competing with the caller's runtime and avoids cross-thread task wake-ups on every request.
/// If the thread cannot be started the connections are served on the caller's runtime instead.
pub async fn serve_resp(
    listener: TcpListener,
    cache: Cache,
    config: RespConfig,
    shutdown: Shutdown,
) {
    let std_listener = match listener.into_std() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "RESP listener cannot be detached; not serving RESP");
            return;
        }
    };
    let (handoff_tx, handoff_rx) = std::sync::mpsc::channel::<std::net::TcpListener>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let (c, cfg, sig) = (cache.clone(), config.clone(), shutdown.clone());
    let spawned = std::thread::Builder::new()
        .name("resp".to_owned())
        .spawn(move || {
            let Ok(std_listener) = handoff_rx.recv() else {
                return;
            };
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(async move {
                    match TcpListener::from_std(std_listener) {
                        Ok(l) => serve_connections(l, c, cfg, sig).await,
                        Err(e) => tracing::error!(error = %e, "RESP listener cannot be registered"),
                    }
                }),
                Err(e) => tracing::error!(error = %e, "RESP runtime cannot start"),
            }
            let _ = done_tx.send(());
        });
    match spawned {
        Ok(_) => match handoff_tx.send(std_listener) {
            Ok(()) => {
                let _ = done_rx.await;
            }
            Err(std::sync::mpsc::SendError(l)) => fallback(l, cache, config, shutdown).await,
        },
        Err(e) => {
            tracing::warn!(error = %e, "RESP thread cannot start; serving on the shared runtime");
            fallback(std_listener, cache, config, shutdown).await;
        }
    }
}

/// Serves on the caller's runtime (when the dedicated thread is unavailable).
async fn fallback(
    listener: std::net::TcpListener,
    cache: Cache,
    config: RespConfig,
    shutdown: Shutdown,
) {
    match TcpListener::from_std(listener) {
        Ok(l) => serve_connections(l, cache, config, shutdown).await,
        Err(e) => tracing::error!(error = %e, "RESP listener cannot be registered"),
    }
}

/// The accept loop and the connection tasks, until `shutdown` fires.
async fn serve_connections(
    listener: TcpListener,
    cache: Cache,
    config: RespConfig,
    trigger: Shutdown,
) {
    let mut shutdown = trigger.signal();
    let config = RespConfig {
        connections_max: config.connections_max.clamp(1, CONNECTIONS_MAX),
        output_buffer_bytes_max: config
            .output_buffer_bytes_max
            .clamp(1, OUTPUT_BUFFER_BYTES_MAX),
        ..config
    };
    if let Ok(addr) = listener.local_addr() {
        cache.inner().port.store(addr.port(), Ordering::Relaxed);
        let settings = &cache.inner().settings;
        settings.record("port", addr.port().to_string());
        settings.record("bind", addr.ip().to_string());
    }
    let limit = Arc::new(Semaphore::new(config.connections_max));
    let shared = Arc::new(Shared {
        busy: Arc::default(),
        cache: cache.clone(),
        config,
        next_id: AtomicU64::new(1),
        clients: Mutex::new(BTreeMap::new()),
        shutdown: trigger,
    });
    cache
        .inner()
        .resp_clients
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Arc::downgrade(&shared));
    let mut tasks = JoinSet::new();
    let poller = tokio::spawn(poll_while_busy(shared.busy.clone()));
    loop {
        tokio::select! {
            () = shutdown.wait() => break,
            accepted = listener.accept() => {
                let (mut socket, addr) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Logged once per pause, so at most once a second while it lasts.
                        if let Some(pause) = accept_error_pause(&e) {
                            tracing::warn!(error = %e, pause_ms = pause.as_millis(), "RESP accept failed; pausing before the next accept");
                            tokio::select! {
                                () = shutdown.wait() => break,
                                () = tokio::time::sleep(pause) => {}
                            }
                        }
                        continue;
                    }
                };
                let _ = socket.set_nodelay(true);
                // `maxclients` may lower the limit at run time: the permits in use are the
                // connections open, counted as they are accepted.
                let in_use = shared.config.connections_max - limit.available_permits();
                let maxclients = cache.inner().maxclients.load(Ordering::Relaxed);
                let permit = if in_use < maxclients {
                    limit.clone().try_acquire_owned().ok()
                } else {
                    None
                };
                let Some(permit) = permit else {
                    let _ = socket.write_all(b"-ERR max number of clients reached\r\n").await;
                    continue;
                };
                let shared = shared.clone();
                let signal = shutdown.clone();
                tasks.spawn(async move {
                    let _permit = permit;
                    let laddr = socket.local_addr().ok();
                    Connection::new(shared, addr, laddr).run(socket, signal).await;
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    poller.abort();
    while tasks.join_next().await.is_some() {}
}

/// Request activity on the RESP thread, for [`poll_while_busy`].
#[derive(Debug, Default)]
struct Busy {
    /// Batches of requests read so far.
    batches: AtomicU64,
    /// Whether the poller waits for the next batch.
    parked: AtomicBool,
    wake: Notify,
}

impl Busy {
    /// Called by a connection after each batch of requests it read.
    fn note_batch(&self) {
        self.batches.fetch_add(1, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }
}

/// While requests keep arriving, keeps the RESP thread polling its sockets instead of sleeping
/// in `epoll_wait`: a yielded task makes the runtime poll the sockets without blocking. A
/// sleeping thread must be woken by each arriving request, and on loopback the client pays for
/// that wake-up inside its own `send`; Redis's event loop is rarely asleep under load, so its
/// clients rarely pay it. After [`IDLE_POLLS_BEFORE_PARK`] polls without a new batch the task
/// waits for one, and the thread sleeps as before.
async fn poll_while_busy(busy: Arc<Busy>) {
    let mut seen = busy.batches.load(Ordering::Relaxed);
    loop {
        busy.parked.store(true, Ordering::SeqCst);
        // A batch noted between the last poll and `parked` becoming visible sent no wake-up:
        // look once more before waiting for one.
        if busy.batches.load(Ordering::SeqCst) == seen {
            busy.wake.notified().await;
        }
        busy.parked.store(false, Ordering::Relaxed);
        seen = busy.batches.load(Ordering::Relaxed);
        let mut idle = 0;
        while idle < IDLE_POLLS_BEFORE_PARK {
            tokio::task::yield_now().await;
            let now = busy.batches.load(Ordering::Relaxed);
            if now == seen {
                idle += 1;
            } else {
                seen = now;
                idle = 0;
            }
        }
    }
}

/// The distinct names among a command's arguments (after its name) that `held` does not hold
/// yet: what WATCH or a subscription would add, counted against its limit before anything is.
fn new_names<'a>(args: &[&'a [u8]], held: impl Fn(&[u8]) -> bool) -> Vec<&'a [u8]> {
    let mut new: Vec<&[u8]> = args
        .iter()
        .skip(1)
        .copied()
        .filter(|name| !held(name))
        .collect();
    new.sort_unstable();
    new.dedup();
    new
}

/// Gives the read buffer room for a whole [`READ_CHUNK_BYTES`] read, as Redis does before each
/// read of a client. Consumed requests only move the buffer's start forward, so without this
/// its spare room shrinks read by read until one read takes a fraction of a pipelined batch:
/// the batch is then answered in two writes, which the client pays for. When everything read
/// has been consumed (the usual case) this reuses the allocation without copying.
///
/// An empty buffer that a large request grew past [`BUFFER_KEEP_BYTES`] is replaced by a fresh
/// one of `READ_CHUNK_BYTES`; a buffer still holding part of a request is kept.
fn make_room(buf: &mut BytesMut) {
    if buf.is_empty() {
        // Back to the allocation's start (without allocating; false when it is there already),
        // so `capacity` is the whole allocation: what is kept, what CLIENT LIST shows and
        // what the clients cron resizes.
        let _ = buf.try_reclaim(buf.capacity() + 1);
        if buf.capacity() > BUFFER_KEEP_BYTES {
            *buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
        }
    }
    buf.reserve(READ_CHUNK_BYTES);
}

/// Whether a query buffer of `size` bytes holding `len` may be resized by
/// [`resized_query_buffer`] after `idle_s` whole seconds idle, whatever its peak.
fn may_resize(len: usize, size: usize, idle_s: u64) -> bool {
    size - len > QUERY_BUFFER_SLACK_BYTES
        && (idle_s > QUERY_BUFFER_IDLE_S || size > QUERY_BUFFER_RESIZE_BYTES)
}

/// The size Redis's `clientsCronResizeQueryBuffer` gives a query buffer of `size` bytes
/// holding `len`, whose most since the last resize was `peak`, after `idle_s` whole seconds
/// idle; `None` to leave it. A buffer with more than [`QUERY_BUFFER_SLACK_BYTES`] of spare room
/// is cut to what it holds once idle for more than [`QUERY_BUFFER_IDLE_S`] seconds, or, when it
/// is bigger than [`QUERY_BUFFER_RESIZE_BYTES`] and `peak` is under half its size, to `peak`.
fn resized_query_buffer(len: usize, size: usize, peak: usize, idle_s: u64) -> Option<usize> {
    if size - len <= QUERY_BUFFER_SLACK_BYTES {
        None
    } else if idle_s > QUERY_BUFFER_IDLE_S {
        Some(len)
    } else if size > QUERY_BUFFER_RESIZE_BYTES && size / 2 > peak {
        Some(len.max(peak))
    } else {
        None
    }
}

/// Gives `buf` exactly `size` bytes of room, keeping what it holds (`size` is at least its
/// length): a fresh allocation, or none for 0.
fn cut_to(buf: &mut BytesMut, size: usize) {
    let mut cut = BytesMut::with_capacity(size.max(buf.len()));
    cut.extend_from_slice(buf);
    *buf = cut;
}

/// Reads from `socket` into `buf`, or, when `lazy` (the clients cron cut the buffer), only
/// waits for the socket to be readable: room is then made when a request arrives, not while
/// the client is idle. `Ok(None)`: readable.
async fn read_request(
    socket: &mut TcpStream,
    buf: &mut BytesMut,
    lazy: bool,
) -> std::io::Result<Option<usize>> {
    if lazy {
        socket.readable().await.map(|()| None)
    } else {
        socket.read_buf(buf).await.map(Some)
    }
}

/// Empties the reply buffer after its bytes were written, and releases an allocation a large
/// reply grew past [`BUFFER_KEEP_BYTES`].
fn written(out: &mut Vec<u8>) {
    out.clear();
    if out.capacity() > BUFFER_KEEP_BYTES {
        out.shrink_to(READ_CHUNK_BYTES);
    }
}

/// Work [`Connection::off_thread`] runs on another thread.
enum Job {
    /// A script command with its arguments and the batch's wall-clock time.
    Command(&'static command::Spec, Vec<Bytes>, u64),
    /// A MULTI queue.
    Exec(Vec<Vec<Bytes>>),
}

/// What an off-thread job answers: a script command's reply, or a transaction's.
enum JobReply {
    Command(Frame),
    Exec(crate::cache::ExecReplies),
}

/// A connection command of a transaction running on another thread, sent back to the
/// connection's own task to run in its place ([`Connection::queued_reply`]), with where to
/// send its replies and protocol.
type QueuedRequest = (
    &'static command::Spec,
    Vec<Bytes>,
    std::sync::mpsc::SyncSender<(Vec<Frame>, u8)>,
);

/// What EXEC does ([`Connection::exec`]).
enum ExecOutcome {
    /// Answers with this (EXEC without MULTI, EXECABORT, a null array when a watched key
    /// changed).
    Refused(Frame),
    /// Ran the queue on this thread: the replies to write.
    Ran(crate::cache::ExecReplies),
    /// A queue that runs a script, run on another thread ([`Next::Exec`]).
    OffThread(Vec<Vec<Bytes>>),
}

/// Commands answered while a script runs past the threshold (Redis's `allow-busy` flag), when
/// they need neither the keyspace nor the scripting lock the script holds. WATCH, which Redis
/// also allows, reads the keyspace and gets BUSY.
fn allowed_while_busy(spec: &command::Spec, args: &[&[u8]]) -> bool {
    matches!(
        spec.name,
        "auth" | "hello" | "quit" | "reset" | "multi" | "discard" | "unwatch"
    ) || crate::cache::script::kill_or_stats(spec, args).is_some()
}

/// What the connection loop does after a command.
enum Next {
    Continue,
    Close,
    /// A blocking command passed every check: the loop runs it with owned arguments, since
    /// waiting needs the read buffer the arguments borrow.
    Block(&'static command::Spec),
    /// A script command passed every check: the loop runs it on another thread, with owned
    /// arguments, so this thread keeps serving the other clients meanwhile (holding their
    /// commands back, then answering BUSY).
    Script(&'static command::Spec),
    /// EXEC of a queue that runs a script, handed off as [`Next::Script`].
    Exec(Vec<Vec<Bytes>>),
    /// SAVE or SHUTDOWN passed every check: the loop writes the snapshot on the blocking pool
    /// and answers (or, for a SHUTDOWN that succeeds, stops) when it is done.
    Persist(&'static command::Spec, Persist),
}

/// The snapshot work [`Connection::persist`] waits for.
#[derive(Debug, Clone, Copy)]
enum Persist {
    Save,
    Shutdown(crate::cache::cmd::server::ShutdownPlan),
}

/// Empties `v` and returns its allocation for slices of another lifetime (the standard library
/// collects a `vec::IntoIter` of a same-layout type in place), so the argument vector is
/// allocated once per connection, not once per command.
fn recycle<'b>(mut v: Vec<&[u8]>) -> Vec<&'b [u8]> {
    v.clear();
    v.into_iter().map(|_| &[][..]).collect()
}

/// CLIENT REPLY's mode: whether command replies are written (pub/sub messages and the
/// (un)subscribe confirmations always are, as in Redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplyMode {
    On,
    Off,
    /// Set by CLIENT REPLY SKIP: that command's own reply is dropped, then [`ReplyMode::Skip`].
    SkipNext,
    /// The reply of this command is dropped, then back to on.
    Skip,
}

struct Connection {
    shared: Arc<Shared>,
    id: u64,
    db: usize,
    proto: u8,
    authed: bool,
    reply: ReplyMode,
    multi: Option<Vec<Vec<Bytes>>>,
    /// Bytes of the arguments `multi` holds (counted against `client-query-buffer-limit`).
    multi_bytes: usize,
    multi_dirty: bool,
    /// The last command looked up (most pipelines repeat one command).
    last_spec: Option<&'static command::Spec>,
    /// When the command just handled ended (monotonic ns), if it ran through the keyspace
    /// and the next one follows it in the same batch: that command's timing starts there
    /// rather than at a clock read of its own. Taken by every command handled.
    chain_ns: Option<u64>,
    /// Keys WATCHed (db, key), each with its version then and whether it was stale (expired
    /// but not yet removed); at most [`WATCHED_KEYS_MAX`].
    watched: HashMap<(usize, Bytes), (u64, bool)>,
    /// Subscribed channels, each with its subscription's sequence number (so an UNSUBSCRIBE
    /// without arguments goes in subscription order, not the set's hash order).
    channels: HashMap<Bytes, u64>,
    /// Subscribed patterns, as `channels`.
    patterns: HashMap<Bytes, u64>,
    /// Subscribed shard channels (SSUBSCRIBE), as `channels`.
    shard_channels: HashMap<Bytes, u64>,
    /// The next subscription's sequence number.
    subscription_seq: u64,
    /// Where PUBLISH queues this client's messages (closed, and `kill` notified, when the
    /// client overruns the pub/sub output buffer limit).
    outbox: Arc<Outbox>,
    rx: mpsc::Receiver<Message>,
    kill: Arc<Kill>,
    /// Set by a CLIENT KILL that matched this client itself: it closes after the reply.
    close_after_reply: bool,
    /// Whether this client is a MONITOR (fed through its outbox).
    monitoring: bool,
    /// CLIENT TRACKING's mode for this client (`None`: off); the registry holds the rest.
    tracking: Option<TrackMode>,
    /// CLIENT CACHING was given for the next command (or transaction).
    caching: bool,
    /// Bytes in the query buffer when the current command started, its own included, and the
    /// buffer's spare room then (CLIENT LIST's `qbuf` and `qbuf-free` for this client).
    qbuf_len: usize,
    qbuf_free: usize,
    /// The most the query buffer has held since the clients cron last resized it or left it
    /// alone (Redis's `querybuf_peak`).
    qbuf_peak: usize,
    /// Shared with the client table's entry: the query buffer while waiting for a request.
    qbuf: Arc<QueryBufSize>,
    /// Shared with the client table's entry: when the last batch arrived.
    active_ms: Arc<AtomicU64>,
    /// The command last written to the client table's `last_cmd`.
    noted_spec: Option<&'static command::Spec>,
    /// When the pending replies were first seen at the normal class's soft output buffer
    /// limit (wall-clock ms; 0: below it).
    obuf_soft_since_ms: u64,
    unblock: Arc<Notify>,
    unblock_error: Arc<AtomicBool>,
    blocked: Arc<AtomicBool>,
}

/// What a connection needs of its CLIENT TRACKING mode to decide, per command, whether the
/// keys it reads are remembered.
#[derive(Debug, Clone, Copy)]
struct TrackMode {
    bcast: bool,
    optin: bool,
    optout: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Connection {
    fn new(shared: Arc<Shared>, addr: SocketAddr, laddr: Option<SocketAddr>) -> Self {
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let kill = Arc::new(Kill::default());
        let (outbox, rx) = Outbox::new(id, kill.clone());
        let unblock = Arc::new(Notify::new());
        let unblock_error = Arc::new(AtomicBool::new(false));
        let blocked = Arc::new(AtomicBool::new(false));
        let authed = shared.config.auth_token.is_none();
        let now = shared.cache.inner().clock.now_ms();
        let active_ms = Arc::new(AtomicU64::new(now));
        let qbuf = Arc::new(QueryBufSize::default());
        shared.clients().insert(
            id,
            ClientEntry {
                addr,
                laddr,
                name: Bytes::new(),
                db: 0,
                sub: 0,
                psub: 0,
                ssub: 0,
                multi: None,
                proto: 2,
                outbox: outbox.clone(),
                kill: kill.clone(),
                unblock: unblock.clone(),
                unblock_error: unblock_error.clone(),
                blocked: blocked.clone(),
                created_ms: now,
                active_ms: active_ms.clone(),
                qbuf: qbuf.clone(),
                last_cmd: "NULL",
                monitor: false,
                no_evict: false,
            },
        );
        let stats = &shared.cache.inner().stats;
        stats.connections_received.fetch_add(1, Ordering::Relaxed);
        stats.connected_clients.fetch_add(1, Ordering::Relaxed);
        Self {
            shared,
            id,
            db: 0,
            proto: 2,
            authed,
            reply: ReplyMode::On,
            multi: None,
            multi_bytes: 0,
            multi_dirty: false,
            last_spec: None,
            chain_ns: None,
            watched: HashMap::new(),
            channels: HashMap::new(),
            patterns: HashMap::new(),
            shard_channels: HashMap::new(),
            subscription_seq: 0,
            outbox,
            rx,
            kill,
            close_after_reply: false,
            monitoring: false,
            tracking: None,
            caching: false,
            qbuf_len: 0,
            qbuf_free: 0,
            qbuf_peak: 0,
            qbuf,
            active_ms,
            noted_spec: None,
            obuf_soft_since_ms: 0,
            unblock,
            unblock_error,
            blocked,
        }
    }

    /// The client a command runs for: whether its reads are remembered follows its tracking
    /// mode and CLIENT CACHING (Redis's `trackingRememberKeys`).
    fn run_for(&self) -> RunFor {
        let remember_reads = self
            .tracking
            .is_some_and(|m| !m.bcast && (!(m.optin || m.optout) || (m.optin == self.caching)));
        RunFor {
            client: self.id,
            remember_reads,
        }
    }

    /// The protocol a command answers in, and the client it runs for.
    fn who(&self) -> (u8, RunFor) {
        (self.proto, self.run_for())
    }

    fn limits(&self) -> DecodeLimits {
        DecodeLimits {
            bulk_bytes_max: self
                .shared
                .cache
                .inner()
                .bulk_bytes_max
                .load(Ordering::Relaxed),
            multibulk_len_max: RESP_MULTIBULK_LEN_MAX,
            inline_bytes_max: RESP_INLINE_BYTES_MAX,
        }
    }

    async fn run(mut self, mut socket: TcpStream, mut shutdown: ShutdownSignal) {
        let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
        let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK_BYTES);
        // Argument ranges of the request being decoded, and the vector of argument slices
        // (kept empty between commands), both reused for every command of the connection.
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut argv_store: Vec<&[u8]> = Vec::new();
        let kill = self.kill.clone();
        let running = self.shared.cache.inner().running.clone();
        // The clients cron cut the query buffer: no room is made until a request arrives.
        let mut lazy_room = false;
        'conn: loop {
            if !lazy_room {
                make_room(&mut buf);
            }
            self.qbuf.publish(&buf);
            // Biased: a nudge is taken before the requests that arrived after it.
            tokio::select! {
                biased;
                () = shutdown.wait() => break,
                () = kill.fired_or_nudged() => {
                    if kill.is_fired() {
                        break;
                    }
                    if kill.take_nudge() {
                        let now_ms = self.shared.cache.inner().clock.now_ms();
                        lazy_room |= self.resize_query_buffer(&mut buf, &mut out, now_ms);
                    }
                }
                Some(msg) = self.rx.recv() => {
                    let mut charged = msg.charge();
                    self.push_message(msg, &mut out);
                    while let Ok(msg) = self.rx.try_recv() {
                        charged = charged.saturating_add(msg.charge());
                        self.push_message(msg, &mut out);
                    }
                    // A subscriber that stopped reading leaves this write pending: the outbox
                    // counts what is queued behind it and `kill` ends the write when it overruns.
                    if !write_unless_killed(&mut socket, &out, &kill).await { break; }
                    self.outbox.written(charged);
                    written(&mut out);
                }
                read = read_request(&mut socket, &mut buf, lazy_room) => {
                    match read {
                        Ok(Some(0)) | Err(_) => break,
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            lazy_room = false;
                            if out.capacity() == 0 {
                                out.reserve(READ_CHUNK_BYTES);
                            }
                            continue 'conn;
                        }
                    }
                    self.qbuf_peak = self.qbuf_peak.max(buf.len());
                    if self.over_query_buffer_limit(&buf) {
                        break;
                    }
                    self.shared.busy.note_batch();
                    let limits = self.limits();
                    // One clock read per batch of pipelined commands: they run back to back on
                    // this thread, so they share a timestamp (Redis snapshots it per command).
                    let mut now_ms = self.shared.cache.inner().clock.now_ms();
                    self.active_ms.store(now_ms, Ordering::Relaxed);
                    self.chain_ns = None;
                    let obuf = self.shared.cache.inner().pubsub.limits.get(ObufClass::Normal);
                    let mut close = false;
                    // Bytes of messages taken from the outbox into this batch's replies.
                    let mut drained: usize = 0;
                    loop {
                        spans.clear();
                        // Checked per request: an AUTH earlier in the batch lifts the
                        // unauthenticated limits for the requests after it.
                        let request = match decode_request_spans(&buf, &limits, self.authed, &mut spans) {
                            Ok(None) => break,
                            Ok(Some(r)) => r,
                            Err(e) => {
                                let e = Frame::error(e.to_string());
                                self.stats().errors_in(&e, false);
                                e.encode(self.proto, &mut out);
                                close = true;
                                break;
                            }
                        };
                        let mut argv = recycle(std::mem::take(&mut argv_store));
                        let used = match &request {
                            Request::Spans { used } => {
                                argv.extend(spans.iter().map(|&(a, b)| buf.get(a..b).unwrap_or_default()));
                                *used
                            }
                            Request::Inline { args, used } => {
                                argv.extend(args.iter().map(|a| &a[..]));
                                *used
                            }
                        };
                        // A script another client started holds the keyspace: wait for it to
                        // end, or to run long enough that commands get BUSY instead.
                        if running.must_wait() {
                            tokio::select! {
                                () = running.wait_turn() => {}
                                () = shutdown.wait() => break 'conn,
                                () = kill.fired() => break 'conn,
                            }
                            now_ms = self.shared.cache.inner().clock.now_ms();
                            self.chain_ns = None;
                        }
                        // CLIENT PAUSE: the command waits, as a blocked client, until the
                        // pause ends or no longer holds it.
                        if let Some((held, _)) = self.shared.cache.inner().ks.pause.held(now_ms)
                            && self.is_held(held, &argv)
                        {
                            // The replies of the batch's commands before it go out first.
                            if !out.is_empty() {
                                let done = if self.subscribed() > 0 {
                                    write_unless_killed(&mut socket, &out, &kill).await
                                } else {
                                    socket.write_all(&out).await.is_ok()
                                };
                                if !done {
                                    break 'conn;
                                }
                                written(&mut out);
                            }
                            if !self.wait_unpaused(&argv, &mut shutdown).await {
                                break 'conn;
                            }
                            now_ms = self.shared.cache.inner().clock.now_ms();
                            self.chain_ns = None;
                        }
                        // Over `maxmemory` every command first evicts what the policy allows,
                        // those answered here (EXEC, PING, CLIENT …) too (Redis's
                        // `processCommand`); the invalidations that sends a tracking client go
                        // out before the command's reply, as in Redis, where those its own
                        // command causes follow it.
                        if self.shared.cache.evict_for_client() {
                            while self.tracking.is_some() && let Ok(msg) = self.rx.try_recv() {
                                drained = drained.saturating_add(msg.charge());
                                self.push_message(msg, &mut out);
                            }
                        }
                        let mark = out.len();
                        self.qbuf_len = buf.len();
                        self.qbuf_free = buf.capacity() - buf.len();
                        let skipping = self.reply == ReplyMode::Skip;
                        // CLIENT CACHING holds for the next command, or the transaction it
                        // starts; any CLIENT subcommand keeps it (Redis's `resetClient`).
                        let keeps_caching = argv.first().is_some_and(|n| n.eq_ignore_ascii_case(b"client"));
                        let next = if argv.is_empty() {
                            Next::Continue
                        } else {
                            self.handle(&argv, now_ms, &mut out)
                        };
                        if !matches!(next, Next::Block(_) | Next::Script(_) | Next::Exec(_) | Next::Persist(..)) {
                            let name = argv.first().copied().unwrap_or_default();
                            self.settle_reply(&mut out, mark, skipping, name);
                        }
                        let owned: Vec<Bytes> = match next {
                            Next::Block(_) | Next::Script(_) => argv.iter().map(|a| Bytes::copy_from_slice(a)).collect(),
                            _ => Vec::new(),
                        };
                        argv_store = recycle(argv);
                        drop(request);
                        buf.advance(used);
                        match next {
                            Next::Continue => {}
                            Next::Close => {
                                close = true;
                                break;
                            }
                            Next::Block(spec) => {
                                let logged = owned.clone();
                                let (reply, uncounted) = self.blocking(spec, owned, &mut socket, &mut buf, &mut shutdown).await;
                                // A blocking command counts one call, when it answers, and
                                // goes to SLOWLOG with the time of its tries, not of its wait.
                                if let Some(ran) = uncounted {
                                    self.stats().call(spec, &[], ran, &reply);
                                    let argv: Vec<&[u8]> = logged.iter().map(|a| &a[..]).collect();
                                    let caller = || self.caller();
                                    self.shared.cache.slow(&argv, ran, Some(&caller));
                                }
                                // Killed while blocked: the connection closes without a reply,
                                // as Redis's `freeClient` unblocks and frees a blocked client.
                                if kill.is_fired() { break 'conn; }
                                let mark = out.len();
                                reply.encode(self.proto, &mut out);
                                self.settle_reply(&mut out, mark, self.reply == ReplyMode::Skip, b"");
                                now_ms = self.shared.cache.inner().clock.now_ms();
                            }
                            Next::Script(spec) => {
                                self.off_thread(Job::Command(spec, owned, now_ms), skipping, &mut out).await;
                                now_ms = self.shared.cache.inner().clock.now_ms();
                            }
                            Next::Exec(queue) => {
                                let db = self.db;
                                self.off_thread(Job::Exec(queue), skipping, &mut out).await;
                                // EXEC is fed after the commands it ran, as Redis feeds it.
                                let caller = || self.caller();
                                self.shared.cache.monitor(db, &[b"exec"], Some(&caller));
                                now_ms = self.shared.cache.inner().clock.now_ms();
                                // A CLIENT KILL of this client inside closes it once EXEC has
                                // answered.
                                if self.close_after_reply {
                                    close = true;
                                    break;
                                }
                            }
                            Next::Persist(spec, job) => {
                                if self.persist(spec, job, skipping, &mut out).await {
                                    // Stopping: closed without a reply, as Redis exits.
                                    close = true;
                                    break;
                                }
                                now_ms = self.shared.cache.inner().clock.now_ms();
                            }
                        }
                        if self.caching && !keeps_caching && self.multi.is_none() {
                            self.caching = false;
                        }
                        if out.len() > self.shared.config.output_buffer_bytes_max {
                            tracing::warn!(client = self.id, bytes = out.len(), "client output buffer limit reached; closing");
                            break 'conn;
                        }
                        // `client-output-buffer-limit normal` (a subscriber's messages are held
                        // to the pubsub class by its outbox). The replies not yet written are
                        // this batch's: the socket is written before the next read.
                        if self.subscribed() == 0 {
                            let (over, since) = obuf.check(out.len(), self.obuf_soft_since_ms, now_ms);
                            self.obuf_soft_since_ms = since;
                            if over {
                                tracing::warn!(client = self.id, bytes = out.len(), "client closed for overcoming of output buffer limits");
                                break 'conn;
                            }
                        }
                    }
                    // The memory peak is sampled once per batch, as Redis's `beforeSleep` samples it.
                    self.shared.cache.inner().note_memory_peak();
                    if !out.is_empty() {
                        // The reply waits for the other connections with a batch read this
                        // turn (a yielded task runs after them), as Redis writes its replies
                        // in `beforeSleep` after serving every readable client: the client,
                        // woken by the first write of the burst, is still awake for the rest,
                        // instead of each write waking it from `epoll_wait` again.
                        tokio::task::yield_now().await;
                    }
                    // Killed (CLIENT KILL, or an overrun pub/sub buffer) while this batch ran
                    // or its reply waited: closed without it, as Redis frees a killed client.
                    if kill.is_fired() { break; }
                    self.note_last_command();
                    if !out.is_empty() {
                        let done = if self.subscribed() > 0 {
                            write_unless_killed(&mut socket, &out, &kill).await
                        } else {
                            socket.write_all(&out).await.is_ok()
                        };
                        if !done { break; }
                        written(&mut out);
                    }
                    self.outbox.written(drained);
                    if close { break; }
                }
            }
        }
        self.cleanup();
    }

    /// Redis's `clientsCronResizeQueryBuffer`, when the clients cron nudged this connection:
    /// the query buffer gets the size [`resized_query_buffer`] gives it (an empty one cut to
    /// nothing takes the empty reply buffer with it), and the peak starts again from what the
    /// buffer holds. Returns whether the buffer was cut.
    fn resize_query_buffer(&mut self, buf: &mut BytesMut, out: &mut Vec<u8>, now_ms: u64) -> bool {
        let idle_s = (now_ms / 1000).saturating_sub(self.active_ms.load(Ordering::Relaxed) / 1000);
        let target = resized_query_buffer(buf.len(), buf.capacity(), self.qbuf_peak, idle_s);
        if let Some(size) = target {
            cut_to(buf, size);
            if size == 0 && out.is_empty() {
                *out = Vec::new();
            }
        }
        self.qbuf_peak = buf.len();
        target.is_some()
    }

    /// Whether the requests this client has sent and not had run — `buf`, plus the arguments
    /// MULTI has queued — pass `client-query-buffer-limit`: then it is closed without a reply,
    /// as Redis closes it, and the closing is logged with Redis's words.
    fn over_query_buffer_limit(&self, buf: &BytesMut) -> bool {
        let limit = self
            .shared
            .cache
            .inner()
            .query_buffer_bytes_max
            .load(Ordering::Relaxed);
        let queued = if self.multi.is_some() {
            self.multi_bytes
        } else {
            0
        };
        let held = buf.len().saturating_add(queued);
        if held <= limit {
            return false;
        }
        tracing::warn!(
            client = self.id,
            bytes = held,
            limit,
            "closing client that reached max query buffer length"
        );
        true
    }

    /// Applies CLIENT REPLY to what one command wrote from `mark` on: dropped when replies are
    /// off or this command's reply is skipped (`skipping`: the mode was SKIP when it started),
    /// kept for the (un)subscribe commands, whose confirmations are pub/sub messages.
    /// `name` is the command's (the subscription commands are looked for only when silenced,
    /// off the common path).
    fn settle_reply(&mut self, out: &mut Vec<u8>, mark: usize, skipping: bool, name: &[u8]) {
        // A command that turned replies back on (CLIENT REPLY ON, RESET) answers even when its
        // own reply was to be skipped, as Redis clears the skip flag before replying.
        let silent = (skipping && self.reply != ReplyMode::On)
            || matches!(self.reply, ReplyMode::Off | ReplyMode::SkipNext);
        if silent && !is_subscription(name) {
            out.truncate(mark);
        }
        self.reply = match self.reply {
            ReplyMode::SkipNext => ReplyMode::Skip,
            ReplyMode::Skip if skipping => ReplyMode::On,
            other => other,
        };
    }

    fn cleanup(&mut self) {
        let subscriptions = Kind::ALL.map(|kind| std::mem::take(self.names_mut(kind)));
        let cache = &self.shared.cache;
        for (db, key) in std::mem::take(&mut self.watched).into_keys() {
            cache.unwatch(db, &key);
        }
        for (kind, names) in Kind::ALL.into_iter().zip(subscriptions) {
            for name in names.into_keys() {
                cache.inner().pubsub.unsubscribe(self.id, &name, kind);
            }
        }
        if self.monitoring {
            cache.inner().monitors.remove(self.id);
        }
        if self.tracking.take().is_some() {
            cache.inner().tracking.disable(self.id);
        }
        // A CLIENT KILL from another client already removed the entry (and the count).
        if self.shared.clients().remove(&self.id).is_some() {
            cache
                .inner()
                .stats
                .connected_clients
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Records this connection's state in the client table, for CLIENT LIST and CLIENT KILL:
    /// its database, protocol, subscriptions and MULTI queue. Called when one of them changes
    /// (connection commands and queued commands), never on the plain command path.
    fn note_state(&self) {
        if let Some(c) = self.shared.clients().get_mut(&self.id) {
            c.db = self.db;
            c.proto = self.proto;
            c.sub = self.channels.len();
            c.psub = self.patterns.len();
            c.ssub = self.shard_channels.len();
            c.multi = self.multi.as_ref().map(Vec::len);
            c.monitor = self.monitoring;
        }
    }

    /// Records the last command run in the client table (CLIENT LIST `cmd`), once per batch
    /// and only when it changed: a pipeline repeating one command takes no lock for it.
    fn note_last_command(&mut self) {
        let spec = self.last_spec;
        if spec.map(std::ptr::from_ref) != self.noted_spec.map(std::ptr::from_ref) {
            self.noted_spec = spec;
            if let (Some(spec), Some(c)) = (spec, self.shared.clients().get_mut(&self.id)) {
                c.last_cmd = spec.name;
            }
        }
    }

    fn push_message(&self, msg: Message, out: &mut Vec<u8>) {
        let frame = match msg {
            Message::Channel { channel, payload } => Frame::Push(vec![
                Frame::bulk(b"message"),
                Frame::Bulk(channel),
                Frame::Bulk(payload),
            ]),
            Message::Shard { channel, payload } => Frame::Push(vec![
                Frame::bulk(b"smessage"),
                Frame::Bulk(channel),
                Frame::Bulk(payload),
            ]),
            Message::Pattern {
                pattern,
                channel,
                payload,
            } => Frame::Push(vec![
                Frame::bulk(b"pmessage"),
                Frame::Bulk(pattern),
                Frame::Bulk(channel),
                Frame::Bulk(payload),
            ]),
            // Already in its wire form, the same in RESP2 and RESP3 (a status line).
            Message::Monitor(line) => {
                out.extend_from_slice(&line);
                return;
            }
            // Redis's `sendTrackingMessage`: a push in RESP3; in RESP2 only a redirect target
            // in pub/sub mode can take it, as a message on `__redis__:invalidate`.
            Message::Invalidate { keys, redirected } => {
                let keys = keys.map_or(Frame::Null, |k| {
                    Frame::Array(k.into_iter().map(Frame::Bulk).collect())
                });
                if self.proto >= 3 {
                    Frame::Push(vec![Frame::bulk(b"invalidate"), keys])
                } else if redirected && self.subscribed() > 0 {
                    Frame::Push(vec![
                        Frame::bulk(b"message"),
                        Frame::bulk(b"__redis__:invalidate"),
                        keys,
                    ])
                } else {
                    return;
                }
            }
            Message::RedirectBroken(id) if self.proto >= 3 => Frame::Push(vec![
                Frame::bulk(b"tracking-redir-broken"),
                Frame::Integer(i64::try_from(id).unwrap_or(i64::MAX)),
            ]),
            Message::RedirectBroken(_) => return,
        };
        frame.encode(self.proto, out);
    }

    /// Every subscription: with any, the client is in Redis's `CLIENT_PUBSUB` state (in RESP2
    /// only the subscription commands, PING, QUIT and RESET are allowed).
    fn subscribed(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }

    /// The count a confirmation of `kind` reports: shard channels are counted apart from
    /// channels and patterns (Redis's `clientShardSubscriptionsCount` and
    /// `clientSubscriptionsCount`).
    fn subscription_count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shard_channels.len(),
            Kind::Channel | Kind::Pattern => self.channels.len() + self.patterns.len(),
        }
    }

    /// The subscriptions of `kind`, each with its sequence number.
    fn names_mut(&mut self, kind: Kind) -> &mut HashMap<Bytes, u64> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    /// A (un)subscribe confirmation of `kind` for `name` (`Frame::Null` when there was
    /// nothing to unsubscribe from).
    fn confirmation(&self, kind: Kind, subscribe: bool, name: Frame) -> Frame {
        Frame::Push(vec![
            Frame::bulk(kind.confirmation(subscribe)),
            name,
            Frame::Integer(i64::try_from(self.subscription_count(kind)).unwrap_or(i64::MAX)),
        ])
    }

    /// Runs one command whose checks and effects need no waiting; a blocking command that
    /// must wait is handed back as [`Next::Block`].
    fn handle(&mut self, args: &[&[u8]], now_ms: u64, out: &mut Vec<u8>) -> Next {
        let chained_ns = self.chain_ns.take();
        let name = args.first().copied().unwrap_or_default();
        // A pipeline mostly repeats one command: compare with the last one before the table.
        let spec = match self.last_spec {
            Some(s) if s.name.as_bytes().eq_ignore_ascii_case(name) => Some(s),
            _ => command::lookup(name),
        };
        self.last_spec = spec.or(self.last_spec);
        let Some(spec) = spec else {
            if self.multi.is_some() {
                self.multi_dirty = true;
            }
            let reply = if self.authed {
                command::unknown_command(args)
            } else {
                Frame::error("NOAUTH Authentication required.")
            };
            self.stats().errors_in(&reply, false);
            reply.encode(self.proto, out);
            return Next::Continue;
        };
        if !self.authed && !matches!(spec.name, "auth" | "hello" | "quit") {
            self.reject(
                spec,
                args,
                Frame::error("NOAUTH Authentication required."),
                out,
            );
            return Next::Continue;
        }
        if let Some(e) = command::arity_error(spec, args) {
            if self.multi.is_some() {
                self.multi_dirty = true;
            }
            self.reject(spec, args, e, out);
            return Next::Continue;
        }
        // Redis's `no-multi` check: the command is refused and spoils the transaction.
        if self.multi.is_some() && command::refused_in_multi(spec) {
            self.multi_dirty = true;
            self.reject(spec, args, Frame::error(command::NOT_IN_MULTI), out);
            return Next::Continue;
        }
        if self.proto == 2
            && self.subscribed() > 0
            && Kind::of_command(spec.name).is_none()
            && !matches!(spec.name, "ping" | "quit" | "reset")
        {
            // Redis looks the subcommand up first: one it lacks names no command.
            let e = match crate::cache::cmdstats::unknown_subcommand(spec, args) {
                Some(unknown) => Frame::error(unknown),
                None => Frame::error(format!(
                    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    crate::cache::cmdstats::full_name(spec, args)
                )),
            };
            self.reject(spec, args, e, out);
            return Next::Continue;
        }
        if let Some(busy) = self.shared.cache.inner().running.busy_error()
            && !allowed_while_busy(spec, args)
        {
            // As Redis's `rejectCommand`: a refused command spoils the transaction it was sent
            // in, and a refused EXEC ends it.
            let busy = if spec.name == "exec" && self.multi.take().is_some() {
                self.clear_watches();
                self.note_state();
                match busy {
                    Frame::Error(text) => Frame::error(format!(
                        "EXECABORT Transaction discarded because of: {text}"
                    )),
                    other => other,
                }
            } else {
                if self.multi.is_some() {
                    self.multi_dirty = true;
                }
                busy
            };
            self.reject(spec, args, busy, out);
            return Next::Continue;
        }
        if let Some(queue) = &mut self.multi
            && !matches!(
                spec.name,
                "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
            )
        {
            if queue.len() >= MULTI_QUEUE_LEN_MAX {
                self.multi_dirty = true;
                let e = Frame::error("ERR too many commands queued in MULTI");
                self.reject(spec, args, e, out);
            } else if let Some(oom) = self.shared.cache.check_memory_now(RunFor {
                client: self.id,
                ..RunFor::NONE
            }) {
                self.multi_dirty = true;
                self.reject(spec, args, oom, out);
            } else {
                queue.push(args.iter().map(|a| Bytes::copy_from_slice(a)).collect());
                let bytes: usize = args.iter().map(|a| a.len()).sum();
                self.multi_bytes = self.multi_bytes.saturating_add(bytes);
                Frame::simple("QUEUED").encode(self.proto, out);
                self.note_state();
            }
            return Next::Continue;
        }
        let reply = match spec.mode {
            Mode::Connection => return self.connection_command(spec, args, out),
            Mode::Blocking => {
                // Fed once, when it first runs, however long it then waits (as Redis).
                let caller = || self.caller();
                self.shared.cache.monitor(self.db, args, Some(&caller));
                return Next::Block(spec);
            }
            _ => {
                let caller = || self.caller();
                if crate::cache::script::is_script_command(spec) {
                    // Fed before it runs, so that the commands it calls follow it.
                    self.shared.cache.monitor(self.db, args, Some(&caller));
                    match self.shared.cache.run_script_inline(
                        self.db,
                        spec,
                        args,
                        self.who(),
                        now_ms,
                        Some(&caller),
                    ) {
                        Some(reply) => reply,
                        None => return Next::Script(spec),
                    }
                } else if spec.name == "ping" && self.subscribed() > 0 && self.proto == 2 {
                    let started = self.clock().monotonic_ns();
                    let pong = Frame::Array(vec![
                        Frame::bulk(b"pong"),
                        Frame::bulk(args.get(1).copied().unwrap_or_default()),
                    ]);
                    let ran = self.clock().monotonic_ns().saturating_sub(started);
                    self.stats().call(spec, args, ran, &pong);
                    pong
                } else {
                    let (reply, ended) = self.shared.cache.run(
                        self.db,
                        spec,
                        args,
                        self.who(),
                        now_ms,
                        chained_ns,
                        Some(&caller),
                    );
                    self.chain_ns = Some(ended);
                    reply
                }
            }
        };
        reply.encode(self.proto, out);
        Next::Continue
    }

    async fn blocking(
        &mut self,
        spec: &'static command::Spec,
        owned: Vec<Bytes>,
        socket: &mut TcpStream,
        buf: &mut BytesMut,
        shutdown: &mut ShutdownSignal,
    ) -> (Frame, Option<u64>) {
        let cache = self.shared.cache.clone();
        let clock = cache.inner().clock.clone();
        let started = clock.monotonic_ns();
        let since = |from: u64| Some(clock.monotonic_ns().saturating_sub(from));
        // XREAD and XREADGROUP block only with BLOCK <ms>; XREAD's `$` IDs are pinned before
        // the first try.
        let (owned, xread_timeout_s) = if matches!(spec.name, "xread" | "xreadgroup") {
            let argv: Vec<&[u8]> = owned.iter().map(|a| &a[..]).collect();
            match crate::cache::cmd::stream::xread_block_ms(&argv) {
                Err(e) => return (e, since(started)),
                Ok(None) => {
                    let now_ms = cache.inner().clock.now_ms();
                    let caller = || self.caller();
                    let reply = cache
                        .run(
                            self.db,
                            spec,
                            &argv,
                            self.who(),
                            now_ms,
                            None,
                            Some(&caller),
                        )
                        .0;
                    return (reply, None);
                }
                Ok(Some(ms)) => (
                    cache.xread_pin_ids(self.db, &owned),
                    Some(ms as f64 / 1000.0),
                ),
            }
        } else {
            (owned, None)
        };
        let argv: Vec<&[u8]> = owned.iter().map(|a| &a[..]).collect();
        let args = &argv[..];
        let timeout_at = if matches!(spec.name, "blmpop" | "bzmpop") {
            1
        } else {
            args.len().saturating_sub(1)
        };
        let timeout_s = match xread_timeout_s.or_else(|| {
            args.get(timeout_at)
                .and_then(|t| crate::cache::cmd::parse_f64(t))
        }) {
            Some(t) if t < 0.0 => return (Frame::error("ERR timeout is negative"), since(started)),
            Some(t) if t.is_finite() && t < 1e12 => t,
            _ => {
                let e = Frame::error("ERR timeout is not a float or out of range");
                return (e, since(started));
            }
        };
        let first_at = clock.monotonic_ns();
        let first = match cache.run_uncounted(self.db, spec, args, self.who(), clock.now_ms()) {
            Ok(first) => first,
            Err(rejected) => return (rejected, None),
        };
        // The call's time is its tries', not its wait.
        let ran = since(first_at);
        if !matches!(first, Frame::NullArray | Frame::Null) {
            return (first, ran);
        }
        let timed_out = if matches!(spec.name, "blmove" | "brpoplpush") {
            Frame::Null
        } else {
            Frame::NullArray
        };
        let forever = timeout_s == 0.0;
        let deadline = tokio::time::sleep(Duration::from_secs_f64(if forever {
            1e9
        } else {
            timeout_s
        }));
        tokio::pin!(deadline);
        let deadline_ns = clock.monotonic_ns().saturating_add(
            u64::try_from(Duration::from_secs_f64(timeout_s).as_nanos()).unwrap_or(u64::MAX),
        );
        let mut check = tokio::time::interval(BLOCKED_CLOCK_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let stats = &cache.inner().stats;
        stats.blocked_clients.fetch_add(1, Ordering::Relaxed);
        let (ticket, mut rx) = cache.block(self.db, spec, owned.clone(), self.who());
        let mut answered = false;
        self.blocked.store(true, Ordering::SeqCst);
        let reply = loop {
            make_room(buf);
            // Each read takes at most the room left under the limit, so the bytes held never
            // pass it (one read into the buffer's spare capacity could take far more).
            let room = BLOCKED_READ_BYTES_MAX.saturating_sub(buf.len());
            let mut ahead = (&mut *buf).limit(room);
            tokio::select! {
                r = &mut rx => {
                    answered = true;
                    break r.unwrap_or(Frame::NullArray);
                }
                () = &mut deadline => break timed_out.clone(),
                _ = check.tick(), if !forever => {
                    if clock.monotonic_ns() >= deadline_ns {
                        break timed_out.clone();
                    }
                }
                () = shutdown.wait() => break timed_out.clone(),
                () = self.kill.fired() => break timed_out.clone(),
                () = self.unblock.notified() => {
                    break if self.unblock_error.swap(false, Ordering::SeqCst) {
                        Frame::error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
                    } else {
                        timed_out.clone()
                    };
                }
                // Keep reading while blocked (bounded) so a close is noticed; commands that
                // arrive wait in the buffer until the pop answers.
                read = socket.read_buf(&mut ahead), if room > 0 => {
                    if matches!(read, Ok(0) | Err(_)) {
                        break timed_out.clone();
                    }
                }
            }
        };
        self.blocked.store(false, Ordering::SeqCst);
        // The wait counts as interaction, as the reply written at its end does for Redis's
        // `lastinteraction`: `timeout` must not close the client the moment it unblocks.
        self.active_ms
            .store(cache.inner().clock.now_ms(), Ordering::Relaxed);
        // Withdrawing fails only when the reply was already sent: then it must be delivered.
        let reply = if answered || cache.unblock(ticket) {
            reply
        } else {
            rx.await.unwrap_or(reply)
        };
        stats.blocked_clients.fetch_sub(1, Ordering::Relaxed);
        (reply, ran)
    }

    /// The cache's INFO commandstats and errorstats.
    fn stats(&self) -> &crate::cache::cmdstats::CommandStats {
        &self.shared.cache.inner().command_stats
    }

    fn clock(&self) -> &crate::clock::SharedClock {
        &self.shared.cache.inner().clock
    }

    /// Answers `reply`, an error refusing `spec` before it ran, and counts the rejection.
    fn reject(
        &self,
        spec: &'static command::Spec,
        args: &[&[u8]],
        reply: Frame,
        out: &mut Vec<u8>,
    ) {
        self.stats().rejected(spec, args, &reply);
        reply.encode(self.proto, out);
    }

    /// Runs a connection command and counts the call with its reply.
    fn connection_command(
        &mut self,
        spec: &'static command::Spec,
        args: &[&[u8]],
        out: &mut Vec<u8>,
    ) -> Next {
        let started = self.clock().monotonic_ns();
        let db = self.db;
        let (next, reply) = self.connection_reply(spec, args, out);
        // SAVE and SHUTDOWN are counted when their snapshot is done (neither is fed to
        // MONITOR: both are administrative).
        if matches!(next, Next::Persist(..)) {
            return next;
        }
        let ran = self.clock().monotonic_ns().saturating_sub(started);
        // EXEC's array holds its commands' replies, already counted with them.
        self.stats().call(spec, args, ran, &reply);
        // An EXEC handed to another thread is fed when it has run; SELECT in the database it
        // selected, as Redis feeds a command after it ran.
        if !matches!(next, Next::Exec(_)) {
            let db = if spec.name == "select" { self.db } else { db };
            let caller = || self.caller();
            self.shared.cache.monitor(db, args, Some(&caller));
        }
        next
    }

    /// Runs SAVE, or the snapshot of a SHUTDOWN, on a thread of the blocking pool (this
    /// thread serves the other clients meanwhile; their commands wait only while the keyspace
    /// is copied), counts the call and writes its reply. Returns `true` when a SHUTDOWN
    /// succeeded: the trigger has fired and the connection closes without a reply.
    async fn persist(
        &mut self,
        spec: &'static command::Spec,
        job: Persist,
        skipping: bool,
        out: &mut Vec<u8>,
    ) -> bool {
        let started = self.clock().monotonic_ns();
        let cache = self.shared.cache.clone();
        let done = tokio::task::spawn_blocking(move || match job {
            Persist::Save => (crate::cache::cmd::server::save(&cache), false),
            Persist::Shutdown(plan) => {
                match crate::cache::cmd::server::prepare_shutdown(&cache, plan) {
                    Ok(()) => (Frame::ok(), true),
                    Err(e) => (e, false),
                }
            }
        })
        .await;
        let (reply, stop) = done.unwrap_or_else(|e| {
            tracing::error!(error = %e, "the snapshot's thread failed");
            (Frame::error("ERR the snapshot's thread failed"), false)
        });
        let ran = self.clock().monotonic_ns().saturating_sub(started);
        self.stats().call(spec, &[], ran, &reply);
        if stop {
            self.shared.shutdown.trigger();
            return true;
        }
        let mark = out.len();
        reply.encode(self.proto, out);
        self.settle_reply(out, mark, skipping, b"");
        false
    }

    /// A connection command's effect: what the connection does next and the reply it wrote
    /// (subscription commands write one frame per channel; their reply here is `+OK`, which
    /// counts no error).
    fn connection_reply(
        &mut self,
        spec: &'static command::Spec,
        args: &[&[u8]],
        out: &mut Vec<u8>,
    ) -> (Next, Frame) {
        let cache = self.shared.cache.clone();
        let name = spec.name;
        if let Some((kind, subscribe)) = Kind::of_command(name) {
            let mut confirmations = Vec::new();
            let refused = self.subscription(kind, subscribe, args, &mut confirmations);
            for frame in &confirmations {
                frame.encode(self.proto, out);
            }
            if let Err(refused) = refused {
                refused.encode(self.proto, out);
                return (Next::Continue, refused);
            }
            self.note_state();
            return (Next::Continue, Frame::ok());
        }
        let reply = match name {
            "select" => match db_index(args[1]) {
                Ok(n) => {
                    self.db = n;
                    Frame::ok()
                }
                Err(e) => e,
            },
            "quit" => {
                Frame::ok().encode(self.proto, out);
                return (Next::Close, Frame::ok());
            }
            "reset" => {
                self.multi = None;
                self.multi_dirty = false;
                for (db, key) in std::mem::take(&mut self.watched).into_keys() {
                    cache.unwatch(db, &key);
                }
                for kind in Kind::ALL {
                    self.unsubscribe_all(kind, &mut Vec::new(), false);
                }
                self.note_state();
                self.db = 0;
                self.proto = 2;
                self.reply = ReplyMode::On;
                self.authed = self.shared.config.auth_token.is_none();
                // Redis's `clearClientConnectionState` drops the name too.
                if let Some(c) = self.shared.clients().get_mut(&self.id) {
                    c.name = Bytes::new();
                }
                if std::mem::take(&mut self.monitoring) {
                    cache.inner().monitors.remove(self.id);
                }
                if self.tracking.take().is_some() {
                    cache.inner().tracking.disable(self.id);
                }
                self.caching = false;
                Frame::simple("RESET")
            }
            "auth" => self.auth(args),
            "hello" => self.hello(args),
            "multi" => {
                if self.multi.is_some() {
                    Frame::error("ERR MULTI calls can not be nested")
                } else {
                    self.multi = Some(Vec::new());
                    self.multi_bytes = 0;
                    self.multi_dirty = false;
                    Frame::ok()
                }
            }
            "discard" => {
                if self.multi.take().is_some() {
                    self.clear_watches();
                    Frame::ok()
                } else {
                    Frame::error("ERR DISCARD without MULTI")
                }
            }
            "exec" => match self.exec() {
                ExecOutcome::Ran(replies) => {
                    self.note_state();
                    replies.encode(out);
                    // A CLIENT KILL of this client inside closes it once EXEC has answered.
                    let next = if self.close_after_reply {
                        Next::Close
                    } else {
                        Next::Continue
                    };
                    // The replies were counted with their commands; EXEC itself succeeded.
                    return (next, Frame::ok());
                }
                ExecOutcome::Refused(reply) => reply,
                ExecOutcome::OffThread(queue) => return (Next::Exec(queue), Frame::ok()),
            },
            "watch" => {
                if self.multi.is_some() {
                    Frame::error("ERR WATCH inside MULTI is not allowed")
                } else {
                    // A key watched already stays watched from then, as in Redis; the new ones
                    // must fit under the limit, or none is watched.
                    let db = self.db;
                    let new = new_names(args, |key| {
                        self.watched
                            .contains_key(&(db, Bytes::copy_from_slice(key)))
                    });
                    if self.watched.len().saturating_add(new.len()) > WATCHED_KEYS_MAX {
                        Frame::error(format!(
                            "ERR too many watched keys (at most {WATCHED_KEYS_MAX} per client)"
                        ))
                    } else {
                        for key in new {
                            let key = Bytes::copy_from_slice(key);
                            let version = cache.watch(db, &key);
                            let stale = cache.is_stale(db, &key);
                            self.watched.insert((db, key), (version, stale));
                        }
                        Frame::ok()
                    }
                }
            }
            "unwatch" => {
                self.clear_watches();
                Frame::ok()
            }
            "client" => {
                let reply = self.client(args);
                if self.close_after_reply {
                    reply.encode(self.proto, out);
                    return (Next::Close, reply);
                }
                reply
            }
            "monitor" => {
                // A second MONITOR is ignored without a reply, as Redis ignores it.
                if self.monitoring {
                    return (Next::Continue, Frame::ok());
                }
                self.monitoring = cache.inner().monitors.add(self.id, &self.outbox);
                self.note_state();
                Frame::ok()
            }
            "readonly" | "readwrite" => {
                Frame::error("ERR This instance has cluster support disabled")
            }
            "wait" => Frame::Integer(0),
            "save" => return (Next::Persist(spec, Persist::Save), Frame::ok()),
            "bgsave" => crate::cache::cmd::server::bgsave(&cache, args, false),
            "shutdown" => {
                match crate::cache::cmd::server::shutdown_plan(args, cache.snapshot_enabled()) {
                    Ok(plan) => return (Next::Persist(spec, Persist::Shutdown(plan)), Frame::ok()),
                    Err(e) => e,
                }
            }
            _ => command::unknown_command(args),
        };
        self.note_state();
        reply.encode(self.proto, out);
        (Next::Continue, reply)
    }

    /// SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE (`subscribe`), or their UNSUBSCRIBE forms, of
    /// `kind`: one confirmation per name, each counting the subscriptions after it.
    ///
    /// # Errors
    /// The error reply, with nothing subscribed, when the new names would take the client past
    /// [`SUBSCRIPTIONS_MAX`].
    fn subscription(
        &mut self,
        kind: Kind,
        subscribe: bool,
        args: &[&[u8]],
        out: &mut Vec<Frame>,
    ) -> Result<(), Frame> {
        if !subscribe && args.len() == 1 {
            self.unsubscribe_all(kind, out, true);
            return Ok(());
        }
        if subscribe {
            let held = self.names_mut(kind);
            let new = new_names(args, |name| held.contains_key(name));
            if self.subscribed().saturating_add(new.len()) > SUBSCRIPTIONS_MAX {
                return Err(Frame::error(format!(
                    "ERR too many subscriptions (at most {SUBSCRIPTIONS_MAX} per client)"
                )));
            }
        }
        let cache = self.shared.cache.clone();
        let pubsub = &cache.inner().pubsub;
        for name in args.iter().skip(1) {
            if subscribe {
                let name = Bytes::copy_from_slice(name);
                pubsub.subscribe(self.id, &name, kind, &self.outbox);
                let seq = self.subscription_seq;
                self.subscription_seq += 1;
                self.names_mut(kind).entry(name).or_insert(seq);
            } else {
                pubsub.unsubscribe(self.id, name, kind);
                self.names_mut(kind).remove(*name);
            }
            out.push(self.confirmation(kind, subscribe, Frame::bulk(name)));
        }
        Ok(())
    }

    /// An UNSUBSCRIBE of `kind` without arguments (or RESET, `reply` false): drops every
    /// subscription of that kind one at a time, in subscription order, each reply counting
    /// what is left after it; with none, one reply naming no channel (Redis's
    /// `pubsubUnsubscribeAllChannelsInternal`).
    fn unsubscribe_all(&mut self, kind: Kind, out: &mut Vec<Frame>, reply: bool) {
        let cache = self.shared.cache.clone();
        let mut names: Vec<(u64, Bytes)> = self
            .names_mut(kind)
            .iter()
            .map(|(k, &seq)| (seq, k.clone()))
            .collect();
        names.sort_unstable_by_key(|(seq, _)| *seq);
        if names.is_empty() && reply {
            out.push(self.confirmation(kind, false, Frame::Null));
        }
        for (_, name) in names {
            cache.inner().pubsub.unsubscribe(self.id, &name, kind);
            self.names_mut(kind).remove(&name);
            if reply {
                out.push(self.confirmation(kind, false, Frame::Bulk(name)));
            }
        }
    }

    fn clear_watches(&mut self) {
        for (db, key) in std::mem::take(&mut self.watched).into_keys() {
            self.shared.cache.unwatch(db, &key);
        }
    }

    /// What EXEC does: answers an error or a null array, runs the queue here, or hands a queue
    /// that runs a script to [`Job::Exec`].
    fn exec(&mut self) -> ExecOutcome {
        let Some(queue) = self.multi.take() else {
            return ExecOutcome::Refused(Frame::error("ERR EXEC without MULTI"));
        };
        let cache = self.shared.cache.clone();
        if self.multi_dirty {
            self.multi_dirty = false;
            self.clear_watches();
            return ExecOutcome::Refused(Frame::error(
                "EXECABORT Transaction discarded because of previous errors.",
            ));
        }
        let changed = self
            .watched
            .iter()
            .any(|((db, key), (version, was_stale))| {
                cache.watched_version(*db, key) != *version
                    || (!was_stale && cache.is_stale(*db, key))
            });
        self.clear_watches();
        if changed {
            return ExecOutcome::Refused(Frame::NullArray);
        }
        if queue.iter().any(|args| {
            args.first()
                .and_then(|n| command::lookup(n))
                .is_some_and(crate::cache::script::is_script_command)
        }) {
            return ExecOutcome::OffThread(queue);
        }
        let mut db = self.db;
        // Looked up only when asked (MONITOR, the slow log), and then as the client is at that
        // moment: a CLIENT SETNAME queued earlier in the transaction has taken effect.
        let (shared, id) = (Arc::clone(&self.shared), self.id);
        let caller = move || client_of(&shared, id);
        let who = self.who();
        let mut here = |spec: &'static command::Spec, args: &[&[u8]]| self.queued_reply(spec, args);
        match cache.run_batch(&mut db, &queue, who, Some(&caller), Some(&mut here)) {
            Ok(replies) => {
                self.db = db;
                ExecOutcome::Ran(replies)
            }
            Err(abort) => ExecOutcome::Refused(abort),
        }
    }

    /// A connection command a transaction queued, run in its place in EXEC (as Redis runs
    /// it there): its reply, or a SUBSCRIBE's confirmations, and the protocol they are written
    /// in. Its effects on the connection (a name, the protocol, subscriptions, a CLIENT KILL of
    /// itself) hold from then on.
    fn queued_reply(&mut self, spec: &'static command::Spec, args: &[&[u8]]) -> (Vec<Frame>, u8) {
        if let Some((kind, subscribe)) = Kind::of_command(spec.name) {
            let mut confirmations = Vec::new();
            let refused = self.subscription(kind, subscribe, args, &mut confirmations);
            self.note_state();
            if let Err(refused) = refused {
                confirmations.push(refused);
            }
            return (confirmations, self.proto);
        }
        // Redis runs a transaction's commands as a `CLIENT_DENY_BLOCKING` client.
        if spec.name == "monitor" {
            return (
                vec![Frame::error(
                    "ERR MONITOR isn't allowed for DENY BLOCKING client",
                )],
                self.proto,
            );
        }
        // Its reply is written in the EXEC array, not on its own.
        let (_, reply) = self.connection_reply(spec, args, &mut Vec::new());
        (vec![reply], self.proto)
    }

    /// Runs a script command or a MULTI queue holding one on a thread of the blocking pool,
    /// so that while it runs this thread serves the other clients: their commands wait for it
    /// ([`Running::must_wait`](crate::cache::script::Running)), then get BUSY once it has run
    /// past `busy-reply-threshold`, and SCRIPT KILL reaches it. The reply goes to `out`
    /// (CLIENT REPLY applied as of the command's start, `skipping`). A queue's connection
    /// commands (HELLO, SUBSCRIBE, CLIENT, …) come back here to run in their place, as
    /// [`Connection::exec`] runs them: the transaction holds the keyspace meanwhile, and none of
    /// them needs it.
    async fn off_thread(&mut self, job: Job, skipping: bool, out: &mut Vec<u8>) {
        let cache = self.shared.cache.clone();
        let running = cache.inner().running.clone();
        let (db, who) = (self.db, self.who());
        let proto = self.proto;
        // Looked up when asked (MONITOR, the slow log), as in `exec`: a CLIENT SETNAME the
        // transaction ran has taken effect for the commands after it.
        let (shared, id) = (Arc::clone(&self.shared), self.id);
        let (queued_tx, mut queued_rx) = mpsc::unbounded_channel::<QueuedRequest>();
        // Counted before the thread starts: the other clients' next commands already wait.
        running.hand_off();
        let mut handle = tokio::task::spawn_blocking(move || {
            let caller = || client_of(&shared, id);
            match job {
                Job::Command(spec, args, now_ms) => {
                    let argv: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
                    let reply = cache
                        .run(db, spec, &argv, who, now_ms, None, Some(&caller))
                        .0;
                    (JobReply::Command(reply), db)
                }
                Job::Exec(queue) => {
                    let mut db = db;
                    let mut here = |spec: &'static command::Spec, args: &[&[u8]]| {
                        let (done, answer) = std::sync::mpsc::sync_channel(1);
                        let args = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
                        // The connection's task is gone only when it is being dropped, and
                        // then no one reads this reply.
                        if queued_tx.send((spec, args, done)).is_err() {
                            return (vec![Frame::error("ERR the connection closed")], proto);
                        }
                        answer.recv().unwrap_or_else(|_| {
                            (vec![Frame::error("ERR the connection closed")], proto)
                        })
                    };
                    match cache.run_batch(&mut db, &queue, who, Some(&caller), Some(&mut here)) {
                        Ok(replies) => (JobReply::Exec(replies), db),
                        Err(abort) => (JobReply::Command(abort), db),
                    }
                }
            }
        });
        let done = loop {
            tokio::select! {
                done = &mut handle => break done,
                Some((spec, args, answer)) = queued_rx.recv() => {
                    let argv: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
                    // Sent to a thread that waits for it (one that panicked has dropped its
                    // end, and the join below reports it).
                    let _ = answer.send(self.queued_reply(spec, &argv));
                }
            }
        };
        let (reply, db) = match done {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(error = %e, "a script's thread failed");
                (
                    JobReply::Command(Frame::error("ERR the script's thread failed")),
                    db,
                )
            }
        };
        running.handed_back();
        self.db = db;
        let mark = out.len();
        match reply {
            JobReply::Command(reply) => reply.encode(self.proto, out),
            JobReply::Exec(replies) => {
                self.note_state();
                replies.encode(out);
            }
        }
        self.settle_reply(out, mark, skipping, b"");
    }

    /// This client as SLOWLOG shows it: `ip:port` and its name.
    fn caller(&self) -> (String, Bytes) {
        client_of(&self.shared, self.id)
    }

    /// AUTH, as Redis's `authCommand` with only the default user: without a password that user
    /// is `nopass`, so the password-only form is refused but `AUTH default <anything>` succeeds.
    fn auth(&mut self, args: &[&[u8]]) -> Frame {
        let (user, pass) = match args.len() {
            2 => (&b"default"[..], args[1]),
            3 => (args[1], args[2]),
            _ => return Frame::error("ERR syntax error"),
        };
        let expected = self.shared.config.auth_token.clone();
        if expected.is_none() && args.len() == 2 {
            return Frame::error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            );
        }
        if user == b"default"
            && expected
                .as_ref()
                .is_none_or(|expected| crate_constant_time_eq(pass, expected.as_bytes()))
        {
            self.authed = true;
            Frame::ok()
        } else {
            Frame::error("WRONGPASS invalid username-password pair or user is disabled.")
        }
    }

    fn hello(&mut self, args: &[&[u8]]) -> Frame {
        let mut proto = self.proto;
        let mut i = 1;
        if let Some(v) = args.get(1) {
            match crate::cache::resp::frame::parse_i64(v) {
                Some(2) => proto = 2,
                Some(3) => proto = 3,
                Some(_) => return Frame::error("NOPROTO unsupported protocol version"),
                None => {
                    return Frame::error("ERR Protocol version is not an integer or out of range");
                }
            }
            i = 2;
        }
        // Options take effect one by one as Redis 7.0's `helloCommand` reads them: a name is
        // set even when a later option is refused.
        while i < args.len() {
            if is(args[i], "auth") && i + 2 < args.len() {
                let r = self.auth(&[b"AUTH", args[i + 1], args[i + 2]]);
                if r.is_error() {
                    return r;
                }
                i += 3;
            } else if is(args[i], "setname") && i + 1 < args.len() {
                if let Err(e) = self.set_name(args[i + 1]) {
                    return e;
                }
                i += 2;
            } else {
                return Frame::error(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(args[i])
                ));
            }
        }
        if !self.authed {
            return Frame::error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
            );
        }
        self.proto = proto;
        Frame::Map(vec![
            (Frame::bulk(b"server"), Frame::bulk(b"redis")),
            (Frame::bulk(b"version"), Frame::bulk(b"7.0.15")),
            (Frame::bulk(b"proto"), Frame::Integer(i64::from(proto))),
            (
                Frame::bulk(b"id"),
                Frame::Integer(i64::try_from(self.id).unwrap_or(0)),
            ),
            (Frame::bulk(b"mode"), Frame::bulk(b"standalone")),
            (Frame::bulk(b"role"), Frame::bulk(b"master")),
            (Frame::bulk(b"modules"), Frame::Array(Vec::new())),
        ])
    }

    /// Names this client (an empty name removes it), or returns Redis's error for a name with
    /// spaces or characters outside `!`..=`~` (`clientSetNameOrReply`).
    fn set_name(&self, name: &[u8]) -> Result<(), Frame> {
        if name.iter().any(|&b| b <= b' ' || b > b'~') {
            return Err(Frame::error(
                "ERR Client names cannot contain spaces, newlines or special characters.",
            ));
        }
        if let Some(c) = self.shared.clients().get_mut(&self.id) {
            c.name = Bytes::copy_from_slice(name);
        }
        Ok(())
    }

    /// One CLIENT LIST line; `current` is the running command's name (`client|list` or
    /// `client|info`), this client's `cmd`.
    fn client_line(&self, id: u64, c: &ClientEntry, current: &str) -> String {
        let now = self.shared.cache.inner().clock.now_ms();
        // Redis's `catClientInfoString` letters, in its order; `N` when none applies.
        let mut flags = String::new();
        if c.monitor {
            flags.push('O');
        }
        if c.is_pubsub() {
            flags.push('P');
        }
        if c.multi.is_some() {
            flags.push('x');
        }
        if c.blocked.load(Ordering::SeqCst) {
            flags.push('b');
        }
        let tracking = self.shared.cache.inner().tracking.info(id);
        if let Some(t) = &tracking {
            flags.push('t');
            if t.broken_redirect {
                flags.push('R');
            }
            if t.bcast {
                flags.push('B');
            }
        }
        if c.no_evict {
            flags.push('e');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let multi = c.multi.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        // This client's query buffer as the command started; the others' as their connections
        // last waited for a request.
        let (qbuf, qbuf_free, cmd) = if id == self.id {
            (self.qbuf_len, self.qbuf_free, current)
        } else {
            let (len, free) = c.qbuf.get();
            (len, free, c.last_cmd)
        };
        format!(
            "id={id} addr={} laddr={} fd=8 name={} age={} idle={} flags={flags} db={} sub={} psub={} ssub={} multi={multi} qbuf={qbuf} qbuf-free={qbuf_free} argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={cmd} user=default redir={} resp={}\n",
            c.addr,
            c.laddr
                .map_or_else(|| "127.0.0.1:0".to_owned(), |l| l.to_string()),
            String::from_utf8_lossy(&c.name),
            now.saturating_sub(c.created_ms) / 1000,
            now.saturating_sub(c.active_ms.load(Ordering::Relaxed)) / 1000,
            c.db,
            c.sub,
            c.psub,
            c.ssub,
            tracking.map_or(-1, |t| t.redirect_id()),
            c.proto
        )
    }

    /// Whether a pause holding `held` holds the command `args` (Redis 7.0's
    /// `processCommand`): a syntax error is answered at once; ALL holds everything else;
    /// WRITE holds what may write or replicate, and an EXEC whose queue holds such a command.
    fn is_held(&self, held: pause::Held, args: &[&[u8]]) -> bool {
        let Some(spec) = args.first().and_then(|n| command::lookup(n)) else {
            return false;
        };
        if command::arity_error(spec, args).is_some() {
            return false;
        }
        match held {
            pause::Held::All => true,
            pause::Held::Writes if spec.name == "exec" => self.multi.as_ref().is_some_and(|q| {
                q.iter().any(|queued| {
                    let argv: Vec<&[u8]> = queued.iter().map(|a| &a[..]).collect();
                    argv.first()
                        .and_then(|n| command::lookup(n))
                        .is_some_and(|s| self.may_write(s, &argv))
                })
            }),
            pause::Held::Writes => self.may_write(spec, args),
        }
    }

    /// Whether a call may write or replicate (Redis's `write` and `may_replicate` flags; a
    /// script command by what its script declares).
    fn may_write(&self, spec: &'static command::Spec, args: &[&[u8]]) -> bool {
        if crate::cache::script::is_script_command(spec) {
            return crate::cache::script::may_write(self.shared.cache.inner(), spec, args);
        }
        command::may_replicate(spec) || command::has_flag(spec, args, "write")
    }

    /// Waits while a pause holds the command `args`, counted as a blocked client (INFO
    /// `blocked_clients`, CLIENT LIST flag `b`). False when the server stops or the client is
    /// killed meanwhile.
    async fn wait_unpaused(&mut self, args: &[&[u8]], shutdown: &mut ShutdownSignal) -> bool {
        let cache = self.shared.cache.clone();
        let inner = cache.inner();
        let pause = &inner.ks.pause;
        let kill = self.kill.clone();
        inner.stats.blocked_clients.fetch_add(1, Ordering::Relaxed);
        self.blocked.store(true, Ordering::SeqCst);
        let ran = loop {
            let changed = pause.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = inner.clock.now_ms();
            let Some((held, until)) = pause.held(now) else {
                break true;
            };
            if !self.is_held(held, args) {
                break true;
            }
            // The deadline is on the cache's clock: looked at again at least this often.
            let left = Duration::from_millis(until.saturating_sub(now)).min(BLOCKED_CLOCK_CHECK);
            tokio::select! {
                () = &mut changed => {}
                () = tokio::time::sleep(left) => {}
                () = shutdown.wait() => break false,
                () = kill.fired() => break false,
            }
        };
        self.blocked.store(false, Ordering::SeqCst);
        inner.stats.blocked_clients.fetch_sub(1, Ordering::Relaxed);
        ran
    }

    /// CLIENT PAUSE timeout [WRITE|ALL]: `timeout` milliseconds from now, ALL by default.
    fn client_pause(&self, args: &[&[u8]]) -> Frame {
        let Some(ms) = crate::cache::resp::frame::parse_i64(args[2]) else {
            return Frame::error("ERR timeout is not an integer or out of range");
        };
        let Ok(ms) = u64::try_from(ms) else {
            return Frame::error("ERR timeout is negative");
        };
        let all = match args.get(3) {
            None => true,
            Some(m) if is(m, "all") => true,
            Some(m) if is(m, "write") => false,
            Some(_) => return Frame::error("ERR CLIENT PAUSE mode must be WRITE or ALL"),
        };
        let now = self.shared.cache.inner().clock.now_ms();
        self.shared
            .cache
            .inner()
            .ks
            .pause
            .start(now.saturating_add(ms), all, now);
        Frame::ok()
    }

    /// This client's tracking state in the registry (`None`: off).
    fn tracking_info(&self) -> Option<tracking::Info> {
        self.tracking?;
        self.shared.cache.inner().tracking.info(self.id)
    }

    /// CLIENT TRACKING (ON|OFF) [REDIRECT id] [PREFIX p …] [BCAST] [OPTIN] [OPTOUT]
    /// [NOLOOP], parsed and checked as Redis 7.0's `clientCommand` does.
    fn client_tracking(&mut self, args: &[&[u8]]) -> Frame {
        let mut options = tracking::Options::default();
        let mut i = 3;
        while let Some(&opt) = args.get(i) {
            let more = i + 1 < args.len();
            if is(opt, "redirect") && more {
                i += 1;
                if options.redirect.is_some() {
                    return Frame::error("ERR A client can only redirect to a single other client");
                }
                let Some(id) = crate::cache::resp::frame::parse_i64(args[i]) else {
                    return Frame::error("ERR value is not an integer or out of range");
                };
                let target = u64::try_from(id)
                    .ok()
                    .and_then(|id| Some((id, self.shared.clients().get(&id)?.outbox.clone())));
                let Some(target) = target else {
                    return Frame::error("ERR The client ID you want redirect to does not exist");
                };
                options.redirect = Some(target);
            } else if is(opt, "bcast") {
                options.bcast = true;
            } else if is(opt, "optin") {
                options.optin = true;
            } else if is(opt, "optout") {
                options.optout = true;
            } else if is(opt, "noloop") {
                options.noloop = true;
            } else if is(opt, "prefix") && more {
                i += 1;
                options.prefixes.push(Bytes::copy_from_slice(args[i]));
            } else {
                return Frame::error(SYNTAX);
            }
            i += 1;
        }
        let registry = &self.shared.cache.inner().tracking;
        if is(args[2], "on") {
            let mode = TrackMode {
                bcast: options.bcast,
                optin: options.optin,
                optout: options.optout,
            };
            if let Err(e) = registry.enable(self.id, &self.outbox, options) {
                return Frame::error(e);
            }
            self.tracking = Some(mode);
        } else if is(args[2], "off") {
            if self.tracking.take().is_some() {
                registry.disable(self.id);
            }
            self.caching = false;
        } else {
            return Frame::error(SYNTAX);
        }
        Frame::ok()
    }

    /// CLIENT CACHING (YES|NO): in OPTIN mode YES, in OPTOUT mode NO, for the next command.
    fn client_caching(&mut self, arg: &[u8]) -> Frame {
        let Some(mode) = self.tracking else {
            return Frame::error(
                "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
            );
        };
        if is(arg, "yes") {
            if !mode.optin {
                return Frame::error(
                    "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
                );
            }
        } else if is(arg, "no") {
            if !mode.optout {
                return Frame::error(
                    "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
                );
            }
        } else {
            return Frame::error(SYNTAX);
        }
        self.caching = true;
        Frame::ok()
    }

    /// CLIENT TRACKINGINFO: Redis's map of `flags`, `redirect` and `prefixes`.
    fn tracking_info_reply(&self) -> Frame {
        let info = self.tracking_info();
        let mut flags = vec![if info.is_some() { "on" } else { "off" }];
        let mut redirect = -1;
        let mut prefixes = Vec::new();
        if let Some(t) = info {
            let caching = self.caching;
            for (set, name) in [
                (t.bcast, "bcast"),
                (t.optin, "optin"),
                (t.optin && caching, "caching-yes"),
                (t.optout, "optout"),
                (t.optout && caching, "caching-no"),
                (t.noloop, "noloop"),
                (t.broken_redirect, "broken_redirect"),
            ] {
                if set {
                    flags.push(name);
                }
            }
            redirect = t.redirect_id();
            prefixes = t.prefixes.into_iter().map(Frame::Bulk).collect();
        }
        Frame::Map(vec![
            (
                Frame::bulk(b"flags"),
                Frame::Set(
                    flags
                        .into_iter()
                        .map(|f| Frame::bulk(f.as_bytes()))
                        .collect(),
                ),
            ),
            (Frame::bulk(b"redirect"), Frame::Integer(redirect)),
            (Frame::bulk(b"prefixes"), Frame::Array(prefixes)),
        ])
    }

    /// CLIENT LIST [TYPE type | ID id…], as Redis 7.0's `clientCommand`: TYPE takes one type
    /// (a MONITOR is `normal`; no client is a master or replica), ID lists the clients named
    /// that exist, in the order given.
    fn client_list(&self, args: &[&[u8]]) -> Frame {
        let clients = self.shared.clients();
        let line = |id: u64, c: &ClientEntry| self.client_line(id, c, "client|list");
        let text: String = match args.get(2..).unwrap_or_default() {
            [] => clients.iter().map(|(id, c)| line(*id, c)).collect(),
            [option, kind] if is(option, "type") => {
                let pubsub = if is(kind, "normal") {
                    Some(false)
                } else if is(kind, "pubsub") {
                    Some(true)
                } else if ["master", "replica", "slave"].iter().any(|k| is(kind, k)) {
                    None
                } else {
                    return Frame::error(format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(kind)
                    ));
                };
                clients
                    .iter()
                    .filter(|(_, c)| pubsub == Some(c.is_pubsub()))
                    .map(|(id, c)| line(*id, c))
                    .collect()
            }
            [option, ids @ ..] if is(option, "id") && !ids.is_empty() => {
                let mut text = String::new();
                for id in ids {
                    let Some(id) = crate::cache::resp::frame::parse_i64(id) else {
                        return Frame::error("ERR Invalid client ID");
                    };
                    if let Some((id, c)) = u64::try_from(id)
                        .ok()
                        .and_then(|id| clients.get_key_value(&id))
                    {
                        text.push_str(&line(*id, c));
                    }
                }
                text
            }
            _ => return Frame::error(SYNTAX),
        };
        Frame::Verbatim(Bytes::from(text))
    }

    /// CLIENT KILL: every other matching client is removed from the client table at once (so
    /// CLIENT LIST and INFO no longer count it) and its connection closed, whatever it is doing
    /// (blocked in a pop, subscribed, inside MULTI), as Redis's `freeClient`; the caller, if it
    /// matches, closes after its reply (`CLIENT_CLOSE_AFTER_REPLY`).
    fn client_kill(&mut self, args: &[&[u8]]) -> Frame {
        let old_form = args.len() == 3;
        let filter = match KillFilter::parse(args.get(2..).unwrap_or_default()) {
            Ok(f) => f,
            Err(e) => return e,
        };
        let mut clients = self.shared.clients();
        let victims: Vec<u64> = clients
            .iter()
            .filter(|(id, c)| filter.matches(**id, c, self.id))
            .map(|(id, _)| *id)
            .collect();
        for id in &victims {
            if *id == self.id {
                self.close_after_reply = true;
            } else {
                self.shared.kill(&mut clients, *id);
            }
        }
        match (old_form, victims.len()) {
            (true, 0) => Frame::error("ERR No such client"),
            (true, _) => Frame::ok(),
            (false, n) => Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX)),
        }
    }

    fn client(&mut self, args: &[&[u8]]) -> Frame {
        let sub = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
        match (sub.as_str(), args.len()) {
            ("id", 2) => Frame::Integer(i64::try_from(self.id).unwrap_or(0)),
            ("getname", 2) => {
                let name = self
                    .shared
                    .clients()
                    .get(&self.id)
                    .map(|c| c.name.clone())
                    .unwrap_or_default();
                if name.is_empty() {
                    Frame::Null
                } else {
                    Frame::Bulk(name)
                }
            }
            ("setname", 3) => self.set_name(args[2]).map_or_else(|e| e, |()| Frame::ok()),
            ("info", 2) => {
                let clients = self.shared.clients();
                let text = clients
                    .get(&self.id)
                    .map(|c| self.client_line(self.id, c, "client|info"))
                    .unwrap_or_default();
                Frame::Verbatim(Bytes::from(text))
            }
            ("list", _) => self.client_list(args),
            ("kill", n) if n >= 3 => self.client_kill(args),
            // Redis's lines for the subcommands answered here.
            ("help", 2) => crate::cache::cmd::help_reply(
                "CLIENT",
                &[
                    "CACHING (YES|NO)",
                    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
                    "GETREDIR",
                    "    Return the client ID we are redirecting to when tracking is enabled.",
                    "GETNAME",
                    "    Return the name of the current connection.",
                    "ID",
                    "    Return the ID of the current connection.",
                    "INFO",
                    "    Return information about the current client connection.",
                    "KILL <ip:port>",
                    "    Kill connection made from <ip:port>.",
                    "KILL <option> <value> [<option> <value> [...]]",
                    "    Kill connections. Options are:",
                    "    * ADDR (<ip:port>|<unixsocket>:0)",
                    "      Kill connections made from the specified address",
                    "    * LADDR (<ip:port>|<unixsocket>:0)",
                    "      Kill connections made to specified local address",
                    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                    "      Kill connections by type.",
                    "    * USER <username>",
                    "      Kill connections authenticated by <username>.",
                    "    * SKIPME (YES|NO)",
                    "      Skip killing current connection (default: yes).",
                    "LIST [options ...]",
                    "    Return information about client connections. Options:",
                    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                    "      Return clients of specified type.",
                    "UNPAUSE",
                    "    Stop the current client pause, resuming traffic.",
                    "REPLY (ON|OFF|SKIP)",
                    "    Control the replies sent to the current connection.",
                    "SETNAME <name>",
                    "    Assign the name <name> to the current connection.",
                    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
                    "    Unblock the specified blocked client.",
                    "TRACKINGINFO",
                    "    Report tracking status for the current connection.",
                    "NO-EVICT (ON|OFF)",
                    "    Protect current client connection from eviction.",
                ],
            ),
            ("unblock", 3 | 4) => {
                let Some(id) = crate::cache::resp::frame::parse_i64(args[2]) else {
                    return Frame::error("ERR value is not an integer or out of range");
                };
                let error = match args.get(3) {
                    None => false,
                    Some(m) if is(m, "timeout") => false,
                    Some(m) if is(m, "error") => true,
                    Some(_) => {
                        return Frame::error(
                            "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
                        );
                    }
                };
                let clients = self.shared.clients();
                match u64::try_from(id).ok().and_then(|id| clients.get(&id)) {
                    Some(c) if c.blocked.load(Ordering::SeqCst) => {
                        c.unblock_error.store(error, Ordering::SeqCst);
                        c.unblock.notify_one();
                        Frame::Integer(1)
                    }
                    _ => Frame::Integer(0),
                }
            }
            ("reply", 3) => {
                let mode = args[2];
                self.reply = if is(mode, "on") {
                    ReplyMode::On
                } else if is(mode, "off") {
                    ReplyMode::Off
                } else if is(mode, "skip") {
                    // Unless replies are off already (Redis ignores SKIP then).
                    if self.reply == ReplyMode::Off {
                        ReplyMode::Off
                    } else {
                        ReplyMode::SkipNext
                    }
                } else {
                    return Frame::error("ERR syntax error");
                };
                Frame::ok()
            }
            // There is no client eviction here, so the flag is only reported.
            ("no-evict", 3) if is(args[2], "on") || is(args[2], "off") => {
                if let Some(c) = self.shared.clients().get_mut(&self.id) {
                    c.no_evict = is(args[2], "on");
                }
                Frame::ok()
            }
            ("no-evict", 3) => Frame::error("ERR syntax error"),
            ("tracking", n) if n >= 3 => self.client_tracking(args),
            ("getredir", 2) => Frame::Integer(self.tracking_info().map_or(-1, |t| t.redirect_id())),
            ("trackinginfo", 2) => self.tracking_info_reply(),
            ("caching", 3) => self.client_caching(args[2]),
            ("pause", 3 | 4) => self.client_pause(args),
            ("unpause", 2) => {
                self.shared.cache.inner().ks.pause.end();
                Frame::ok()
            }
            // Known subcommands arrive here with their arity checked (`command::arity_error`).
            _ => Frame::error(format!(
                "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(args[1])
            )),
        }
    }
}

/// Which clients a CLIENT KILL names: every filter given must match (Redis's
/// `clientKillCommand`).
#[derive(Debug, Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<String>,
    laddr: Option<String>,
    /// `Some(true)`: pub/sub clients; `Some(false)`: normal ones; `None`: any type.
    pubsub: Option<bool>,
    /// TYPE MASTER or REPLICA: no client here is one.
    replication: bool,
    skipme: bool,
}

impl KillFilter {
    /// Parses CLIENT KILL's arguments (after `CLIENT KILL`), or returns Redis's error reply.
    fn parse(args: &[&[u8]]) -> Result<Self, Frame> {
        if let [addr] = args {
            // The old form `CLIENT KILL <ip:port>`, which may kill the caller itself.
            return Ok(Self {
                addr: Some(String::from_utf8_lossy(addr).into_owned()),
                ..Self::default()
            });
        }
        let mut f = Self {
            skipme: true,
            ..Self::default()
        };
        for pair in args.chunks(2) {
            let [option, value] = pair else {
                return Err(Frame::error(SYNTAX));
            };
            let text = || String::from_utf8_lossy(value).into_owned();
            if is(option, "id") {
                match crate::cache::resp::frame::parse_i64(value) {
                    Some(id) if id >= 1 => f.id = u64::try_from(id).ok(),
                    _ => return Err(Frame::error("ERR client-id should be greater than 0")),
                }
            } else if is(option, "type") {
                if is(value, "normal") {
                    f.pubsub = Some(false);
                } else if is(value, "pubsub") {
                    f.pubsub = Some(true);
                } else if is(value, "master") || is(value, "replica") || is(value, "slave") {
                    f.replication = true;
                } else {
                    return Err(Frame::error(format!(
                        "ERR Unknown client type '{}'",
                        text()
                    )));
                }
            } else if is(option, "addr") {
                f.addr = Some(text());
            } else if is(option, "laddr") {
                f.laddr = Some(text());
            } else if is(option, "user") {
                // Every client here is the default user.
                if **value != b"default"[..] {
                    return Err(Frame::error(format!("ERR No such user '{}'", text())));
                }
            } else if is(option, "skipme") {
                if is(value, "yes") {
                    f.skipme = true;
                } else if is(value, "no") {
                    f.skipme = false;
                } else {
                    return Err(Frame::error(SYNTAX));
                }
            } else {
                return Err(Frame::error(SYNTAX));
            }
        }
        Ok(f)
    }

    /// Whether client `id` (described by `c`) is named, `me` being the caller's id.
    fn matches(&self, id: u64, c: &ClientEntry, me: u64) -> bool {
        !self.replication
            && self.addr.as_ref().is_none_or(|a| *a == c.addr.to_string())
            && self
                .laddr
                .as_ref()
                .is_none_or(|a| c.laddr.is_some_and(|l| *a == l.to_string()))
            && self.pubsub.is_none_or(|p| p == c.is_pubsub())
            && self.id.is_none_or(|want| want == id)
            && !(self.skipme && id == me)
    }
}

/// Constant-time comparison for the AUTH password.
fn crate_constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a command name is one of the (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE commands.
fn is_subscription(name: &[u8]) -> bool {
    command::lookup(name).is_some_and(|spec| Kind::of_command(spec.name).is_some())
}

/// The address and name of client `id` (empty when it has gone), as MONITOR and the slow log
/// name the caller.
fn client_of(shared: &Shared, id: u64) -> (String, Bytes) {
    shared
        .clients()
        .get(&id)
        .map(|c| (c.addr.to_string(), c.name.clone()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{
        ACCEPT_ERROR_PAUSE, BUFFER_KEEP_BYTES, Busy, IDLE_POLLS_BEFORE_PARK, QUERY_BUFFER_IDLE_S,
        QUERY_BUFFER_RESIZE_BYTES, QUERY_BUFFER_SLACK_BYTES, READ_CHUNK_BYTES, accept_error_pause,
        cut_to, make_room, may_resize, poll_while_busy, recycle, resized_query_buffer, written,
    };
    use bytes::{Buf, BytesMut};
    use std::io::{Error, ErrorKind};
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    #[test]
    fn accept_pauses_after_running_out_of_descriptors_but_not_after_a_dropped_connection() {
        // EMFILE, ENFILE, ENOMEM, ENOBUFS: they repeat until something is freed.
        for errno in [24, 23, 12, 105] {
            let e = Error::from_raw_os_error(errno);
            assert_eq!(accept_error_pause(&e), Some(ACCEPT_ERROR_PAUSE), "{e}");
        }
        for kind in [
            ErrorKind::ConnectionAborted,
            ErrorKind::ConnectionReset,
            ErrorKind::ConnectionRefused,
        ] {
            assert_eq!(accept_error_pause(&Error::from(kind)), None, "{kind:?}");
        }
    }

    #[test]
    fn every_read_gets_a_whole_chunk_of_room_without_reallocating_a_consumed_buffer() {
        let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
        let start = buf.as_ptr();
        // Batches of 576 bytes (16 pipelined GETs), each consumed before the next read.
        for _ in 0..100 {
            make_room(&mut buf);
            assert!(buf.capacity() - buf.len() >= READ_CHUNK_BYTES);
            assert_eq!(buf.as_ptr(), start, "a consumed buffer is reused in place");
            buf.extend_from_slice(&[b'x'; 576]);
            buf.advance(576);
        }
        // A partial request left over is kept, and room is still made after it.
        buf.extend_from_slice(b"*2\r\n$3\r\nGET");
        buf.advance(4);
        make_room(&mut buf);
        assert_eq!(&buf[..], b"$3\r\nGET");
        assert!(buf.capacity() - buf.len() >= READ_CHUNK_BYTES);
    }

    /// A buffer of `capacity` bytes after a request of as many bytes was read and consumed,
    /// and the start of its allocation.
    fn consumed(capacity: usize) -> (BytesMut, *const u8) {
        let mut buf = BytesMut::with_capacity(capacity);
        let start = buf.as_ptr();
        buf.resize(capacity, b'x');
        buf.advance(capacity);
        (buf, start)
    }

    #[test]
    fn an_empty_buffer_grown_past_the_keep_limit_goes_back_to_one_chunk() {
        // At the limit the allocation is kept (and reused in place)...
        let (mut kept, start) = consumed(BUFFER_KEEP_BYTES);
        make_room(&mut kept);
        assert_eq!(kept.capacity(), BUFFER_KEEP_BYTES);
        assert_eq!(kept.as_ptr(), start);
        // ...one byte over it is released.
        let (mut released, _) = consumed(BUFFER_KEEP_BYTES + 1);
        make_room(&mut released);
        assert!(released.is_empty());
        assert!(released.capacity() >= READ_CHUNK_BYTES);
        assert!(released.capacity() < BUFFER_KEEP_BYTES);
        // Judged by the whole allocation, not the room after the consumed bytes: a 4 MiB
        // buffer with 1 MiB left after them is released too.
        let mut big = BytesMut::with_capacity(4 * BUFFER_KEEP_BYTES);
        big.resize(3 * BUFFER_KEEP_BYTES, b'x');
        big.advance(3 * BUFFER_KEEP_BYTES);
        assert_eq!(big.capacity(), BUFFER_KEEP_BYTES);
        make_room(&mut big);
        assert!(big.capacity() < BUFFER_KEEP_BYTES);
        // A large buffer still holding part of a request keeps it, byte for byte.
        let mut partial = BytesMut::with_capacity(4 * BUFFER_KEEP_BYTES);
        partial.resize(3 * BUFFER_KEEP_BYTES, b'x');
        partial.extend_from_slice(b"*1\r\n$4\r\nPI");
        partial.advance(3 * BUFFER_KEEP_BYTES);
        make_room(&mut partial);
        assert_eq!(&partial[..], b"*1\r\n$4\r\nPI");
        assert!(partial.capacity() - partial.len() >= READ_CHUNK_BYTES);
    }

    #[test]
    fn a_written_reply_buffer_past_the_keep_limit_is_released() {
        let mut kept = Vec::with_capacity(BUFFER_KEEP_BYTES);
        kept.resize(BUFFER_KEEP_BYTES, b'x');
        written(&mut kept);
        assert!(kept.is_empty());
        assert_eq!(kept.capacity(), BUFFER_KEEP_BYTES);
        let mut released = Vec::with_capacity(BUFFER_KEEP_BYTES + 1);
        released.resize(BUFFER_KEEP_BYTES + 1, b'x');
        written(&mut released);
        assert!(released.is_empty());
        assert!(released.capacity() < BUFFER_KEEP_BYTES);
    }

    /// Lets the other tasks on this current-thread runtime take `n` steps.
    async fn steps(n: u32) {
        for _ in 0..n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn the_poller_keeps_polling_while_batches_arrive_and_parks_when_they_stop() {
        let busy = Arc::new(Busy::default());
        let poller = tokio::spawn(poll_while_busy(busy.clone()));
        steps(2).await;
        assert!(busy.parked.load(Ordering::SeqCst), "no batch yet: parked");

        busy.note_batch();
        steps(2).await;
        assert!(!busy.parked.load(Ordering::SeqCst), "a batch wakes it");
        // A batch every few polls keeps it awake far beyond the idle allowance.
        for _ in 0..(4 * IDLE_POLLS_BEFORE_PARK) {
            busy.note_batch();
            steps(3).await;
            assert!(!busy.parked.load(Ordering::SeqCst));
        }

        // Idle: it parks after the allowance, and not before.
        steps(IDLE_POLLS_BEFORE_PARK / 2).await;
        assert!(
            !busy.parked.load(Ordering::SeqCst),
            "still within the allowance"
        );
        steps(2 * IDLE_POLLS_BEFORE_PARK).await;
        assert!(
            busy.parked.load(Ordering::SeqCst),
            "parked after the allowance"
        );

        // And a later batch wakes it again.
        busy.note_batch();
        steps(2).await;
        assert!(!busy.parked.load(Ordering::SeqCst));
        poller.abort();
    }

    #[test]
    fn recycling_keeps_the_argument_vector_allocation() {
        let text = b"abc".to_vec();
        let mut v: Vec<&[u8]> = Vec::with_capacity(8);
        v.extend([&text[..], &text[1..]]);
        let again: Vec<&[u8]> = recycle(v);
        assert!(again.is_empty());
        assert!(again.capacity() >= 8);
    }

    #[test]
    fn an_idle_query_buffer_is_cut_to_what_it_holds_after_more_than_two_seconds() {
        let idle = QUERY_BUFFER_IDLE_S;
        let chunk = READ_CHUNK_BYTES;
        assert!(!may_resize(0, chunk, idle));
        assert_eq!(resized_query_buffer(0, chunk, 0, idle), None);
        assert!(may_resize(0, chunk, idle + 1));
        assert_eq!(resized_query_buffer(0, chunk, 0, idle + 1), Some(0));
        assert_eq!(resized_query_buffer(100, chunk, 9000, idle + 1), Some(100));
        // Spare room of exactly the slack is left alone; one byte more is not.
        let slack = QUERY_BUFFER_SLACK_BYTES;
        assert!(!may_resize(10, 10 + slack, idle + 1));
        assert_eq!(resized_query_buffer(10, 10 + slack, 0, idle + 1), None);
        assert!(may_resize(10, 11 + slack, idle + 1));
        assert_eq!(resized_query_buffer(10, 11 + slack, 0, idle + 1), Some(10));
    }

    #[test]
    fn a_busy_query_buffer_is_cut_to_its_peak_past_the_threshold_only() {
        let max = QUERY_BUFFER_RESIZE_BYTES;
        // At the threshold it stays, however small the peak; one byte more and it is cut.
        assert!(!may_resize(0, max, 0));
        assert_eq!(resized_query_buffer(0, max, 0, 0), None);
        assert!(may_resize(0, max + 1, 0));
        assert_eq!(resized_query_buffer(0, max + 1, 100, 0), Some(100));
        // Not below what it holds, and not while the peak is half its size or more.
        assert_eq!(resized_query_buffer(300, max + 1, 100, 0), Some(300));
        let size = 4 * max;
        assert_eq!(
            resized_query_buffer(0, size, size / 2 - 1, 0),
            Some(size / 2 - 1)
        );
        assert_eq!(resized_query_buffer(0, size, size / 2, 0), None);
    }

    #[test]
    fn a_cut_buffer_keeps_its_bytes_and_has_exactly_the_room_asked() {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        buf.extend_from_slice(b"*1\r\n$4\r\nPI");
        cut_to(&mut buf, 100);
        assert_eq!(&buf[..], b"*1\r\n$4\r\nPI");
        assert_eq!(buf.capacity(), 100);
        cut_to(&mut buf, 0);
        assert_eq!(buf.capacity(), buf.len(), "never below what it holds");
        buf.clear();
        cut_to(&mut buf, 0);
        assert_eq!(buf.capacity(), 0);
    }
}

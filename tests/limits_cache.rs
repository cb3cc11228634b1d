//! Capability: the cache's input limits at max and max + 1 — `FRAME_DEPTH_MAX` (nesting the
//! RESP frame decoder follows), the stream commands' ID text limit (`ID_TEXT_MAX`), the RESP
//! server's `CONNECTIONS_MAX` (a configured limit above it is capped to it) and its
//! `BLOCKED_READ_BYTES_MAX` (bytes read ahead from a client blocked in a pop).
//!
//! Method: the public frame decoder on hand-built bytes; a raw RESP client on an in-process
//! server over a manual clock for the commands and the blocked read-ahead, whose unread bytes
//! are seen in the kernel's socket queues (`/proc/net/tcp`); the `streamcache` binary as a
//! child process for the connection limit, so its ten thousand server-side sockets do not
//! count against this process's open-file limit.
#![cfg(target_os = "linux")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly on setup errors"
)]

mod common;
mod resp_common;

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use resp_common::{Conn, bulk, err};
use streamcache::cache::{
    CONNECTIONS_MAX, DecodeLimits, FRAME_DEPTH_MAX, Frame, ProtocolError, decode_frame,
};

// ---- FRAME_DEPTH_MAX --------------------------------------------------------------------

/// Limits far above anything the frames below declare, so only the depth can refuse them.
const LIMITS: DecodeLimits = DecodeLimits {
    bulk_bytes_max: 1 << 20,
    multibulk_len_max: 1 << 20,
    inline_bytes_max: 1 << 16,
};

/// `levels` aggregates of type `tag` (`*`, `~`, `>`, or `%` with a key `+k` beside each
/// value), each holding the next, around `inner`.
fn nested(tag: u8, levels: usize, inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..levels {
        out.extend_from_slice(&[tag, b'1', b'\r', b'\n']);
        if tag == b'%' {
            out.extend_from_slice(b"+k\r\n");
        }
    }
    out.extend_from_slice(inner);
    out
}

/// The depth of the deepest frame inside `frame` (a frame at the top is at depth 0).
fn depth(frame: &Frame) -> usize {
    let below = |items: &[Frame]| items.iter().map(depth).max().map_or(0, |d| d + 1);
    match frame {
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => below(items),
        Frame::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| depth(k).max(depth(v)) + 1)
            .max()
            .unwrap_or(0),
        _ => 0,
    }
}

#[test]
fn frame_depth_max_decodes_a_frame_that_deep_and_refuses_one_level_more() {
    let too_deep = Err(ProtocolError::Malformed("nesting too deep"));
    for tag in [b'*', b'~', b'>', b'%'] {
        for inner in [&b":7\r\n"[..], b"*0\r\n", b"$3\r\nabc\r\n"] {
            let at_max = nested(tag, FRAME_DEPTH_MAX, inner);
            let (frame, used) = decode_frame(&at_max, &LIMITS).unwrap().unwrap();
            assert_eq!(used, at_max.len(), "tag {}", tag as char);
            assert_eq!(depth(&frame), FRAME_DEPTH_MAX, "tag {}", tag as char);
            // Refused, not taken for an incomplete frame that later bytes could finish.
            let over = nested(tag, FRAME_DEPTH_MAX + 1, inner);
            assert_eq!(
                decode_frame(&over, &LIMITS),
                too_deep,
                "tag {}",
                tag as char
            );
        }
        // A frame cut short at the maximum depth waits for more bytes; one level deeper is
        // refused before any byte of it arrives.
        let cut = nested(tag, FRAME_DEPTH_MAX, b"");
        assert_eq!(decode_frame(&cut, &LIMITS), Ok(None));
        let cut_over = nested(tag, FRAME_DEPTH_MAX + 1, b"");
        assert_eq!(decode_frame(&cut_over, &LIMITS), too_deep);
    }
}

// ---- ID_TEXT_MAX ------------------------------------------------------------------------

/// Longest stream ID text the stream commands parse (Redis's 128-byte buffer less its
/// terminator); mirrors the private `ID_TEXT_MAX` of `src/cache/cmd/stream.rs`.
const ID_TEXT_MAX: usize = 127;

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

/// The ID `<ms>-<seq>` spelled in exactly `len` bytes, padded with leading zeros.
fn padded_id(ms: u64, seq: u64, len: usize) -> String {
    let seq_len = (len - 1) / 2;
    let ms_len = len - 1 - seq_len;
    let id = format!("{ms:0>ms_len$}-{seq:0>seq_len$}");
    assert_eq!(id.len(), len);
    id
}

fn entry(id: &str) -> Frame {
    Frame::Array(vec![bulk(id), Frame::Array(vec![bulk("f"), bulk("v")])])
}

#[test]
fn id_text_max_parses_an_id_that_long_and_refuses_one_byte_more() {
    let (s, _clock) = resp_common::serve_manual();
    let mut c = Conn::open(s.addr);
    let at_max = padded_id(5, 1, ID_TEXT_MAX);
    let over = padded_id(6, 1, ID_TEXT_MAX + 1);
    // XADD: the explicit ID path.
    assert_eq!(c.cmd(&["XADD", "s", &at_max, "f", "v"]), bulk("5-1"));
    assert_eq!(c.cmd(&["XADD", "s", &over, "f", "v"]), err(INVALID_ID));
    assert_eq!(c.cmd(&["XLEN", "s"]), Frame::Integer(1));
    // XRANGE: the interval path, inclusive and exclusive (the `(` is not part of the ID).
    let before = padded_id(5, 0, ID_TEXT_MAX);
    let before_over = padded_id(5, 0, ID_TEXT_MAX + 1);
    assert_eq!(
        c.cmd(&["XRANGE", "s", &before, "+"]),
        Frame::Array(vec![entry("5-1")])
    );
    assert_eq!(c.cmd(&["XRANGE", "s", &before_over, "+"]), err(INVALID_ID));
    let exclusive = format!("({before}");
    assert_eq!(
        c.cmd(&["XRANGE", "s", &exclusive, "+"]),
        Frame::Array(vec![entry("5-1")])
    );
    let exclusive_over = format!("({before_over}");
    assert_eq!(
        c.cmd(&["XRANGE", "s", &exclusive_over, "+"]),
        err(INVALID_ID)
    );
    // XDEL: the strict path; the refused ID (of the same entry) deletes nothing.
    let over_same = padded_id(5, 1, ID_TEXT_MAX + 1);
    assert_eq!(c.cmd(&["XDEL", "s", &over_same]), err(INVALID_ID));
    assert_eq!(c.cmd(&["XLEN", "s"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["XDEL", "s", &at_max]), Frame::Integer(1));
    assert_eq!(c.cmd(&["XLEN", "s"]), Frame::Integer(0));
}

// ---- CONNECTIONS_MAX --------------------------------------------------------------------

const PONG: &[u8] = b"+PONG\r\n";
const FULL: &[u8] = b"-ERR max number of clients reached\r\n";

/// A connection to `addr` whose reads give up after 10 s (a connection the server neither
/// answers nor closes fails the test instead of hanging it).
fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Opens `n` connections to `addr` and returns once the server has taken every one. In
/// batches below the listen backlog (128 here), the last of each sending a PING: the server
/// accepts in order, so its answer means the whole batch was accepted.
fn hold_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    const BATCH: usize = 100;
    let mut held = Vec::with_capacity(n);
    while held.len() < n {
        for _ in 0..BATCH.min(n - held.len()) {
            held.push(connect(addr));
        }
        assert!(
            ping(held.last().unwrap()),
            "connection {} was refused",
            held.len()
        );
    }
    held
}

/// Whether `s` answers a PING; `false` when the server closed it (or reset it, as it may when
/// the PING arrived before its close) after refusing it.
fn ping(mut s: &TcpStream) -> bool {
    s.write_all(b"PING\r\n").unwrap();
    let mut reply = [0u8; PONG.len()];
    match s.read_exact(&mut reply) {
        Ok(()) if reply == PONG => true,
        Ok(()) => {
            assert_eq!(reply, FULL[..PONG.len()]);
            false
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            false
        }
        Err(e) => panic!("{e}"),
    }
}

/// Everything the server sends a new connection that sends nothing, until it closes (a
/// connection that is served is left open, and the read times out).
fn refused_reply(addr: SocketAddr) -> Vec<u8> {
    let mut s = connect(addr);
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn connections_max_past_the_ceiling_is_refused_by_the_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("streamcache.toml");
    for (value, ok) in [
        (CONNECTIONS_MAX, true),
        (CONNECTIONS_MAX + 1, false),
        (0, false),
    ] {
        std::fs::write(&file, format!("[cache]\nconnections_max = {value}\n")).unwrap();
        match streamcache::config::load(Some(&file), &streamcache::config::Overrides::default()) {
            Ok(loaded) => {
                assert!(ok, "{value} accepted");
                assert_eq!(loaded.config.cache.connections_max, value);
            }
            Err(e) => {
                assert!(!ok, "{value} refused: {e}");
                let text = e.to_string();
                assert!(
                    text.contains("cache.connections_max")
                        && text.contains(&format!("{value} is outside 1..={CONNECTIONS_MAX}")),
                    "{text}"
                );
            }
        }
    }
}

#[test]
fn connections_max_connections_are_served_and_one_more_is_refused() {
    // The test holds CONNECTIONS_MAX sockets, more than a soft limit of 1024 allows.
    streamcache::server::raise_open_files_limit();
    let mut cmd = common::binary();
    cmd.env("STREAMCACHE_LOG_LEVEL", "error");
    // The default limit is the ceiling.
    let server = common::start_with(cmd, &["--ephemeral"]);
    let addr: SocketAddr = server.resp.parse().unwrap();
    let mut held = hold_connections(addr, CONNECTIONS_MAX);
    // Connection max + 1 gets Redis's error and is closed.
    assert_eq!(refused_reply(addr), FULL);
    // The held connections were not disturbed.
    for s in held.iter().step_by(97) {
        assert!(ping(s));
    }
    // A closed connection frees its slot once the server notices the close: retry (bounded;
    // each refused attempt is answered and closed at once) until it does. That takes the
    // server back to the max.
    drop(held.pop());
    let again = (0..1000).find_map(|_| {
        let s = connect(addr);
        ping(&s).then_some(s)
    });
    assert!(again.is_some(), "a freed slot is reusable");
    assert_eq!(refused_reply(addr), FULL);
    // The server's sockets close first, so the TIME_WAIT ports are its own.
    drop(server);
}

// ---- BLOCKED_READ_BYTES_MAX -------------------------------------------------------------

/// Most bytes the server reads ahead from a client blocked in a pop; mirrors the private
/// `BLOCKED_READ_BYTES_MAX` of `src/cache/server.rs`.
const BLOCKED_READ_BYTES_MAX: usize = 1024 * 1024;

/// The bytes queued in the kernel for each end of TCP connections on 127.0.0.1, from
/// `/proc/net/tcp`: (local port, remote port) → (sent by that end and not yet acknowledged
/// or not yet sent, received by it and not yet read by its application).
fn tcp_queues() -> HashMap<(u16, u16), (u64, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = |addr: &str| {
        let port = addr.strip_prefix("0100007F:")?;
        u16::from_str_radix(port, 16).ok()
    };
    let hex = |n: &str| u64::from_str_radix(n, 16).ok();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (tx, rx) = f.get(4)?.split_once(':')?;
            Some(((port(f.get(1)?)?, port(f.get(2)?)?), (hex(tx)?, hex(rx)?)))
        })
        .collect()
}

/// Bytes sent on `client` that the server has not read: the client end's unacknowledged and
/// unsent bytes plus the server end's received and unread ones.
fn unread_by_server(client: &Conn, server: SocketAddr) -> u64 {
    let (local, remote) = (client.local_addr().port(), server.port());
    let queues = tcp_queues();
    let (client_tx, _) = queues[&(local, remote)];
    let (_, server_rx) = queues[&(remote, local)];
    client_tx + server_rx
}

/// Waits (bounded) until the server has read all but `unread` of the bytes sent on `client`,
/// and asserts it did not read more. The count never falls below the bytes truly unread (a
/// byte received but not yet acknowledged counts on both ends), so it settles at `unread`
/// only when exactly that many are left.
fn wait_unread(client: &Conn, server: SocketAddr, unread: u64) {
    let mut left = u64::MAX;
    for _ in 0..10_000 {
        left = unread_by_server(client, server);
        if left <= unread {
            break;
        }
        std::thread::yield_now();
    }
    assert_eq!(left, unread, "bytes the server left unread");
}

/// Polls INFO until `blocked_clients` reads `n` (bounded; each round trip lets the server's
/// thread run the blocked connection's task).
fn wait_blocked(c: &mut Conn, n: usize) {
    let want = format!("blocked_clients:{n}\r\n");
    let reached = (0..1000).any(|_| match c.cmd(&["INFO", "clients"]) {
        Frame::Bulk(b) => String::from_utf8_lossy(&b).contains(&want),
        other => panic!("INFO: {other:?}"),
    });
    assert!(reached, "blocked_clients never reached {n}");
}

/// A client blocked in BLPOP sends `len` bytes of pipelined requests: CLIENT INFO, then a SET
/// of key `pad` that fills the rest. The server must read ahead until it holds
/// [`BLOCKED_READ_BYTES_MAX`] of them and leave the rest unread until the pop is answered;
/// then every request runs, none lost. Returns the `qbuf` CLIENT INFO saw (the bytes held
/// when it ran).
fn blocked_client_sends(len: usize) -> usize {
    let (s, _clock) = resp_common::serve_manual();
    let mut other = Conn::open(s.addr);
    let mut blocked = Conn::open(s.addr);
    blocked.send(&["BLPOP", "q", "0"]);
    wait_blocked(&mut other, 1);
    let info = resp_common::encode(&[b"CLIENT", b"INFO"]);
    // The SET's framing around a value of `value_len` bytes.
    let framing =
        |value_len: usize| format!("*3\r\n$3\r\nSET\r\n$3\r\npad\r\n${value_len}\r\n\r\n").len();
    let mut value_len = len - info.len() - framing(0);
    while info.len() + framing(value_len) + value_len != len {
        value_len -= 1;
    }
    let value = vec![b'x'; value_len];
    let mut payload = info;
    payload.extend_from_slice(&resp_common::encode(&[b"SET", b"pad", &value]));
    assert_eq!(payload.len(), len);
    // First all but the last few bytes below the limit, read at once: then one read could
    // take the rest and more, so the server must size it to the room left under the limit.
    let (first, rest) = payload.split_at(BLOCKED_READ_BYTES_MAX - 8);
    blocked.stream().write_all(first).unwrap();
    wait_unread(&blocked, s.addr, 0);
    blocked.stream().write_all(rest).unwrap();
    wait_unread(
        &blocked,
        s.addr,
        len.saturating_sub(BLOCKED_READ_BYTES_MAX) as u64,
    );
    // The pop is answered; then every request the client sent runs, in order.
    assert_eq!(other.cmd(&["LPUSH", "q", "job"]), Frame::Integer(1));
    assert_eq!(blocked.reply(), Frame::Array(vec![bulk("q"), bulk("job")]));
    let qbuf = match blocked.reply() {
        Frame::Bulk(line) => {
            let line = String::from_utf8(line.to_vec()).unwrap();
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix("qbuf="))
                .unwrap()
                .parse()
                .unwrap()
        }
        other => panic!("CLIENT INFO: {other:?}"),
    };
    assert_eq!(blocked.reply(), Frame::ok());
    assert_eq!(
        other.cmd(&["STRLEN", "pad"]),
        Frame::Integer(i64::try_from(value_len).unwrap())
    );
    qbuf
}

#[test]
fn blocked_read_bytes_max_reads_that_many_bytes_ahead() {
    assert_eq!(
        blocked_client_sends(BLOCKED_READ_BYTES_MAX),
        BLOCKED_READ_BYTES_MAX
    );
}

#[test]
fn blocked_read_bytes_max_leaves_one_byte_more_unread_until_the_pop_is_answered() {
    assert_eq!(
        blocked_client_sends(BLOCKED_READ_BYTES_MAX + 1),
        BLOCKED_READ_BYTES_MAX
    );
}

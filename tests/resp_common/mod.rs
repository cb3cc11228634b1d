//! Shared helper for tests that talk to an in-process RESP server over TCP.
#![allow(
    clippy::unwrap_used,
    reason = "test helper: a server that cannot start, or a reply that does not decode, fails the test"
)]
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these fields"
)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use streamcache::cache::{
    Cache, CacheConfig, DecodeLimits, Frame, RespConfig, decode_frame, serve_resp,
};
use streamcache::clock::ManualClock;
use streamcache::shutdown::Shutdown;

/// A RESP server on 127.0.0.1 (an ephemeral port) in its own runtime, shut down on drop.
pub(crate) struct Server {
    /// The runtime serving the listener (kept alive with the server).
    pub(crate) rt: tokio::runtime::Runtime,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Triggered on drop.
    pub(crate) shutdown: Shutdown,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// A server over a default cache on a [`ManualClock`] (no auth), with the clock.
pub(crate) fn serve_manual() -> (Server, std::sync::Arc<ManualClock>) {
    let (server, clock, _) = serve_manual_cache();
    (server, clock)
}

/// [`serve_manual`], with the served cache too, for writes that do not come over RESP (as a
/// flow's or the HTTP API's).
#[allow(dead_code, reason = "not every test binary writes past RESP")]
pub(crate) fn serve_manual_cache() -> (Server, std::sync::Arc<ManualClock>, Cache) {
    let clock = std::sync::Arc::new(ManualClock::new(1_000_000));
    let cache = Cache::new(CacheConfig::default(), clock.clone());
    let config = RespConfig::from_cache(&cache, None);
    (serve(cache.clone(), config), clock, cache)
}

/// Serves `cache` with `config`.
pub(crate) fn serve(cache: Cache, config: RespConfig) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    rt.spawn(serve_resp(listener, cache, config, shutdown.clone()));
    Server { rt, addr, shutdown }
}

/// A RESP request: a multibulk array of `args`.
pub(crate) fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A raw RESP connection: requests encoded by hand, replies decoded by the crate's own frame
/// decoder; reads wait at most 10 s.
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to `addr`.
    pub(crate) fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// The socket, for reading to its end.
    pub(crate) fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// This end's address (the server's view of the client).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    /// Sends one request of binary arguments.
    pub(crate) fn send_raw(&mut self, args: &[&[u8]]) {
        self.stream.write_all(&encode(args)).unwrap();
    }

    /// Sends one request of text arguments.
    pub(crate) fn send(&mut self, args: &[&str]) {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_raw(&args);
    }

    /// The next reply, decoded, with the bytes it came in.
    pub(crate) fn reply_raw(&mut self) -> (Frame, Vec<u8>) {
        let limits = DecodeLimits {
            bulk_bytes_max: 1 << 30,
            multibulk_len_max: 1 << 30,
            inline_bytes_max: 1 << 16,
        };
        loop {
            if let Some((frame, used)) = decode_frame(&self.buf, &limits).unwrap() {
                let raw: Vec<u8> = self.buf.drain(..used).collect();
                return (frame, raw);
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next reply, decoded.
    pub(crate) fn reply(&mut self) -> Frame {
        self.reply_raw().0
    }

    /// One request of binary arguments and its reply.
    pub(crate) fn raw(&mut self, args: &[&[u8]]) -> Frame {
        self.send_raw(args);
        self.reply()
    }

    /// One request of text arguments and its reply.
    pub(crate) fn cmd(&mut self, args: &[&str]) -> Frame {
        self.send(args);
        self.reply()
    }

    /// The reply's exact bytes, as text.
    pub(crate) fn wire(&mut self, args: &[&str]) -> String {
        self.send(args);
        String::from_utf8(self.reply_raw().1).unwrap()
    }
}

/// A bulk string reply of `s`.
pub(crate) fn bulk(s: &str) -> Frame {
    Frame::bulk(s.as_bytes())
}

/// An array reply of bulk strings.
pub(crate) fn bulks(items: &[&str]) -> Frame {
    Frame::Array(items.iter().map(|s| bulk(s)).collect())
}

/// An error reply with `text`.
pub(crate) fn err(text: &str) -> Frame {
    Frame::error(text)
}

/// Redis's CRC-64 (Jones, reflected, bit by bit: an implementation independent of the
/// server's table-driven one).
pub(crate) fn crc64(bytes: &[u8]) -> u64 {
    let mut crc = 0u64;
    for &b in bytes {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x95AC_9329_AC4B_C9B5
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// A DUMP payload: `body` (type byte and object) with a valid footer of RDB version `version`.
pub(crate) fn payload(body: &[u8], version: u16) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

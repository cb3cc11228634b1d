//! The benchmark's SSE client: one `GET {prefix}/realtime/{channel}` stream, parsed into
//! `NewOrder` receipts (order number, customer number, monotonic receive time).
//!
//! The parser is a pure function over bytes so it can be tested without a server; the
//! listener task stamps each body frame with the injected clock as it arrives.

use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::StatusCode;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{CACHE_READ_EVERY, SSE_LINE_BYTES_MAX};
use crate::clock::SharedClock;
use crate::loadgen::Connection;

/// One `NewOrder` event's identity, as parsed from its `data:` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NewOrder {
    pub(crate) order_number: u64,
    pub(crate) customer_number: Option<u64>,
}

/// Incremental `text/event-stream` parser that keeps only `NewOrder` events.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    line: Vec<u8>,
    is_new_order: bool,
    data: Vec<u8>,
    /// `resync` events seen: the server dropped events for this client.
    pub(crate) resyncs: u64,
}

impl Parser {
    /// Feeds `bytes`, appending every completed `NewOrder` to `out`.
    ///
    /// # Errors
    /// A line longer than [`SSE_LINE_BYTES_MAX`].
    pub(crate) fn push(&mut self, bytes: &[u8], out: &mut Vec<NewOrder>) -> Result<(), String> {
        let mut rest = bytes;
        loop {
            let at = memchr::memchr(b'\n', rest);
            let part = rest.get(..at.unwrap_or(rest.len())).unwrap_or_default();
            if self.line.len() + part.len() > SSE_LINE_BYTES_MAX {
                return Err(format!(
                    "an SSE line is longer than {SSE_LINE_BYTES_MAX} bytes"
                ));
            }
            let Some(at) = at else {
                self.line.extend_from_slice(part);
                return Ok(());
            };
            rest = rest.get(at + 1..).unwrap_or_default();
            if self.line.is_empty() {
                // A line that is whole in this frame is read where it lies.
                self.handle_line(part, out);
            } else {
                // The line buffer keeps its capacity from line to line.
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(part);
                self.handle_line(&line, out);
                line.clear();
                self.line = line;
            }
        }
    }

    /// Handles one complete line (without its `\n`).
    fn handle_line(&mut self, line: &[u8], out: &mut Vec<NewOrder>) {
        {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                if self.is_new_order
                    && let Some(order_number) = json_u64_field(&self.data, b"orderNumber")
                {
                    out.push(NewOrder {
                        order_number,
                        customer_number: json_u64_field(&self.data, b"customerNumber"),
                    });
                }
                self.is_new_order = false;
                self.data.clear();
            } else if let Some(name) = line.strip_prefix(b"event:") {
                let name = name.trim_ascii();
                self.is_new_order = name == b"NewOrder";
                if name == b"resync" {
                    self.resyncs += 1;
                }
            } else if let Some(data) = line.strip_prefix(b"data:") {
                if !self.data.is_empty() {
                    self.data.push(b'\n');
                }
                self.data
                    .extend_from_slice(data.strip_prefix(b" ").unwrap_or(data));
            }
        }
    }
}

/// The unsigned integer value of the first `"field":` in a compact JSON text, without parsing
/// the whole document (the listener must keep up with the server's full event rate).
pub(crate) fn json_u64_field(json: &[u8], field: &[u8]) -> Option<u64> {
    let mut needle = Vec::with_capacity(field.len() + 3);
    needle.push(b'"');
    needle.extend_from_slice(field);
    needle.extend_from_slice(b"\":");
    let at = memchr::memmem::find(json, &needle)?;
    let rest = json.get(at + needle.len()..)?.trim_ascii_start();
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(rest.get(..digits)?).ok()?.parse().ok()
}

/// What a listener collected.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// (order number, receive time in monotonic ns) of every `NewOrder`.
    pub(crate) receipts: Vec<(u64, u64)>,
    /// `resync` events: the server dropped events for this client.
    pub(crate) resyncs: u64,
    /// Events past the collection bound (not recorded).
    pub(crate) overflow: u64,
}

/// A running SSE listener task.
#[derive(Debug)]
pub(crate) struct Listener {
    task: JoinHandle<Result<Collected, String>>,
    count: watch::Receiver<u64>,
    stop: oneshot::Sender<()>,
}

impl Listener {
    /// Connects, waits for the response headers (the server subscribes before sending them)
    /// and starts collecting up to `receipts_max` receipts. Every [`CACHE_READ_EVERY`]th
    /// customer number goes to `cache_reads` without waiting (dropped when it is full).
    ///
    /// # Errors
    /// The connection or the request failed, or the status was not 200.
    pub(crate) async fn open(
        authority: &str,
        path: &str,
        clock: SharedClock,
        receipts_max: usize,
        cache_reads: Option<mpsc::Sender<u64>>,
    ) -> Result<Self, String> {
        let mut connection = Connection::open(authority).await?;
        let response = connection.get(authority, path, "text/event-stream").await?;
        if response.status() != StatusCode::OK {
            let status = response.status();
            connection.close().await;
            return Err(format!("GET {path} answered {status}"));
        }
        let (count_tx, count) = watch::channel(0u64);
        let (stop, mut stop_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut body = response.into_body();
            let mut parser = Parser::default();
            let mut events = Vec::new();
            let mut collected = Collected::default();
            let mut seen = 0u64;
            let outcome = loop {
                let frame = tokio::select! {
                    biased;
                    _ = &mut stop_rx => break Ok(()),
                    frame = body.frame() => frame,
                };
                let receive_ns = clock.monotonic_ns();
                let data = match frame {
                    None => break Err("the SSE stream ended".to_owned()),
                    Some(Err(e)) => break Err(format!("reading the SSE stream failed: {e}")),
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => data,
                        Err(_) => continue,
                    },
                };
                if let Err(e) = parser.push(&data, &mut events) {
                    break Err(e);
                }
                for event in events.drain(..) {
                    seen += 1;
                    if collected.receipts.len() < receipts_max {
                        collected.receipts.push((event.order_number, receive_ns));
                    } else {
                        collected.overflow += 1;
                    }
                    if let (Some(tx), Some(customer)) = (&cache_reads, event.customer_number)
                        && seen.is_multiple_of(CACHE_READ_EVERY)
                    {
                        let _ = tx.try_send(customer);
                    }
                }
                count_tx.send_replace(seen);
            };
            drop(body);
            connection.close().await;
            collected.resyncs = parser.resyncs;
            outcome.map(|()| collected)
        });
        Ok(Self { task, count, stop })
    }

    /// Waits until `count` events have arrived or `timeout` passes; returns whether they did.
    pub(crate) async fn wait_for(&mut self, count: u64, timeout: Duration) -> bool {
        let reached = self.count.wait_for(|n| *n >= count);
        matches!(tokio::time::timeout(timeout, reached).await, Ok(Ok(_)))
    }

    /// Stops the listener and returns what it collected.
    ///
    /// # Errors
    /// The stream failed or ended before the stop.
    pub(crate) async fn finish(self) -> Result<Collected, String> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| format!("the SSE task failed: {e}"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_keeps_new_orders_across_chunk_boundaries() {
        let text = b"retry: 1000\n\nid: 1\nevent: NewOrder\ndata: {\"orderNumber\":10100,\"customerNumber\":103,\"orderLines\":[{\"orderLineNumber\":1}]}\n\nid: 2\nevent: Other\ndata: {\"orderNumber\":5}\n\nevent: resync\ndata: {}\n\nid: 3\r\nevent: NewOrder\r\ndata: {\"orderNumber\": 10101}\r\n\r\n";
        // Lines split over frames (buffered) and lines whole in one frame (read in place).
        for size in [1, 7, 64, text.len()] {
            let mut parser = Parser::default();
            let mut out = Vec::new();
            for chunk in text.chunks(size) {
                parser.push(chunk, &mut out).unwrap();
            }
            assert_eq!(
                out,
                vec![
                    NewOrder {
                        order_number: 10100,
                        customer_number: Some(103)
                    },
                    NewOrder {
                        order_number: 10101,
                        customer_number: None
                    },
                ],
                "frames of {size} bytes"
            );
            assert_eq!(parser.resyncs, 1);
        }
    }

    #[test]
    fn line_length_limit_at_max_and_max_plus_one() {
        let mut out = Vec::new();
        let mut parser = Parser::default();
        assert!(
            parser
                .push(&vec![b'x'; SSE_LINE_BYTES_MAX], &mut out)
                .is_ok()
        );
        assert!(parser.push(b"\n", &mut out).is_ok());
        let mut parser = Parser::default();
        assert!(
            parser
                .push(&vec![b'x'; SSE_LINE_BYTES_MAX + 1], &mut out)
                .is_err()
        );
    }

    #[test]
    fn field_lookup_skips_similar_names() {
        let json = br#"{"orderLineNumber":1,"orderNumber":42,"x":"orderNumber"}"#;
        assert_eq!(json_u64_field(json, b"orderNumber"), Some(42));
        assert_eq!(json_u64_field(json, b"missing"), None);
        assert_eq!(
            json_u64_field(br#"{"orderNumber":null}"#, b"orderNumber"),
            None
        );
    }
}

//! Capability: durability of acknowledged produces across a process kill.
//!
//! Method: start the real binary (`serve --data-dir D --http 127.0.0.1:0 --resp 127.0.0.1:0`),
//! read its ready line from stdout, produce over REST v2 from a client task, SIGKILL the child
//! while the client is still producing, restart it on the same data directory, and read every
//! partition back from the beginning: every acknowledged record must be there at its offset.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const BINARY: &str = "application/vnd.kafka.binary.v2+json";
const JSON: &str = "application/vnd.kafka.json.v2+json";
const V2: &str = "application/vnd.kafka.v2+json";

/// Starts `serve` on `dir`; returns the child and its HTTP base URL.
fn spawn(dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamcache"))
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args([
            "--http",
            "127.0.0.1:0",
            "--resp",
            "127.0.0.1:0",
            "--log-level",
            "warn",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let http = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http="))
        .unwrap_or_else(|| panic!("no http= in ready line {line:?}"))
        .to_owned();
    (child, http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_record_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, http) = spawn(dir.path());
    let client = reqwest::Client::new();
    let (ack_tx, mut ack_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64, String)>();
    let producer = {
        let client = client.clone();
        let url = format!("{http}/kafka/topics/killed");
        tokio::spawn(async move {
            for batch in 0u64.. {
                let records: Vec<Value> = (0..10).map(|i| json!({"key": format!("k{}", (batch + i) % 7), "value": format!("v-{batch}-{i}")})).collect();
                let resp = client
                    .post(&url)
                    .header("content-type", JSON)
                    .json(&json!({ "records": records }))
                    .send()
                    .await;
                let Ok(resp) = resp else { return batch };
                let Ok(body) = resp.json::<Value>().await else {
                    return batch;
                };
                for (i, o) in body["offsets"].as_array().unwrap().iter().enumerate() {
                    if o["error_code"].is_null() {
                        let (p, off) = (
                            o["partition"].as_u64().unwrap(),
                            o["offset"].as_u64().unwrap(),
                        );
                        if ack_tx.send((p, off, format!("\"v-{batch}-{i}\""))).is_err() {
                            return batch;
                        }
                    }
                }
            }
            0
        })
    };
    let mut acked = BTreeMap::new();
    while acked.len() < 2_000 {
        let (p, o, v) = tokio::time::timeout(Duration::from_secs(60), ack_rx.recv())
            .await
            .unwrap()
            .unwrap();
        acked.insert((p, o), v);
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(60), producer)
        .await
        .unwrap();
    while let Ok((p, o, v)) = ack_rx.try_recv() {
        acked.insert((p, o), v);
    }

    let (mut child, http) = spawn(dir.path());
    let base = format!("{http}/kafka/consumers/verify/instances/v");
    client
        .post(format!("{http}/kafka/consumers/verify"))
        .header("content-type", V2)
        .json(&json!({"name": "v", "format": "binary", "auto.offset.reset": "earliest"}))
        .send()
        .await
        .unwrap();
    let partitions: Vec<Value> = (0..3)
        .map(|p| json!({"topic": "killed", "partition": p}))
        .collect();
    client
        .post(format!("{base}/assignments"))
        .header("content-type", V2)
        .json(&json!({ "partitions": partitions }))
        .send()
        .await
        .unwrap();
    client
        .post(format!("{base}/positions/beginning"))
        .header("content-type", V2)
        .json(&json!({ "partitions": partitions }))
        .send()
        .await
        .unwrap();
    // Each partition's offsets after the restart: every acknowledged record lies below the end
    // offset, and the fetches below read every partition from its beginning up to that end.
    let mut next = BTreeMap::new();
    let mut ends = BTreeMap::new();
    for p in 0..3u64 {
        let offsets: Value = client
            .get(format!("{http}/kafka/topics/killed/partitions/{p}/offsets"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let offset = |name: &str| {
            offsets[name]
                .as_u64()
                .unwrap_or_else(|| panic!("no {name} for partition {p}: {offsets}"))
        };
        next.insert(p, offset("beginning_offset"));
        ends.insert(p, offset("end_offset"));
    }
    for &(p, o) in acked.keys() {
        assert!(
            ends.get(&p).is_some_and(|&end| o < end),
            "acknowledged record {:?} is at or past the end offsets {ends:?}",
            (p, o)
        );
    }
    let mut stored = BTreeMap::new();
    while next.iter().any(|(p, n)| n < &ends[p]) {
        // Records are there up to the ends, so each fetch returns at once; its timeout only
        // ends a fetch that finds nothing, which fails the test.
        let recs: Vec<Value> = client
            .get(format!("{base}/records?timeout=200"))
            .header("accept", BINARY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            !recs.is_empty(),
            "records below the end offsets {ends:?} are unreadable: read up to {next:?}"
        );
        for r in recs {
            use base64::Engine as _;
            let value = base64::engine::general_purpose::STANDARD
                .decode(r["value"].as_str().unwrap())
                .unwrap();
            let (p, o) = (
                r["partition"].as_u64().unwrap(),
                r["offset"].as_u64().unwrap(),
            );
            let read_to = next
                .get_mut(&p)
                .unwrap_or_else(|| panic!("a record of partition {p}, which was not assigned"));
            *read_to = (*read_to).max(o + 1);
            stored.insert((p, o), String::from_utf8(value).unwrap());
        }
    }
    assert_eq!(next, ends, "every partition was read exactly up to its end");
    for (key, value) in &acked {
        assert_eq!(
            stored.get(key),
            Some(value),
            "acknowledged record {key:?} lost or changed"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

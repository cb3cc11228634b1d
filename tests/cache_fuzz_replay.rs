//! Capability: the RESP decoders and the DUMP payload reader survive every input in the
//! committed fuzz corpus.
//! Method: replay each file of `fuzz/corpus/resp_frame/` and `fuzz/corpus/rdb_payload/` through
//! its fuzz target's body, plus every prefix of each file (the decoders see partial input all
//! the time, and a truncated payload must be refused, not misread).

#![allow(
    clippy::expect_used,
    reason = "the replay below is test code outside #[test] functions: a missing corpus fails"
)]

use streamcache::cache::{fuzz_rdb_payload, fuzz_resp_frame};

/// Replays every file of `fuzz/corpus/<target>/`, and every prefix of each, through `body`.
fn replay(target: &str, body: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let data = std::fs::read(entry.expect("entry").path()).expect("corpus file");
        for cut in 0..=data.len() {
            body(&data[..cut]);
        }
        n += 1;
    }
    assert!(n >= 10, "{target} corpus has only {n} files");
}

#[test]
fn resp_frame_corpus_replays_cleanly() {
    replay("resp_frame", fuzz_resp_frame);
}

#[test]
fn rdb_payload_corpus_replays_cleanly() {
    replay("rdb_payload", fuzz_rdb_payload);
}

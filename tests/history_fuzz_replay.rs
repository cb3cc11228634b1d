//! Capability: the `history_query` fuzz target's committed corpus replays on stable Rust.
//!
//! Method: every file under `fuzz/corpus/history_query/` is passed to
//! `streamcache::history::fuzz_history_query`, which must return without panicking (the fuzz
//! crate calls the same function on generated inputs), plus a set of truncations of each seed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

#[test]
fn corpus_replays_without_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/history_query");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        streamcache::history::fuzz_history_query(&bytes);
        for cut in 0..bytes.len() {
            streamcache::history::fuzz_history_query(&bytes[..cut]);
        }
        n += 1;
    }
    assert!(n >= 10, "corpus has {n} seeds");
}

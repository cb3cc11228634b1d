//! Fuzz target `history_query`: feeds arbitrary bytes to `streamcache::history::fuzz_history_query`, the same body that
//! `cargo test` runs over the committed corpus in `fuzz/corpus/history_query/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    streamcache::history::fuzz_history_query(data);
});

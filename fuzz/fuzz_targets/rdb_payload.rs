//! Fuzz target `rdb_payload`: feeds arbitrary bytes to `streamcache::cache::fuzz_rdb_payload`, the same body
//! that `cargo test` runs over the committed corpus in `fuzz/corpus/rdb_payload/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    streamcache::cache::fuzz_rdb_payload(data);
});

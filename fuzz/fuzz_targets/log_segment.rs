//! Fuzz target `log_segment`: feeds arbitrary bytes to `streamcache::log::fuzz_log_segment`, the same body that
//! `cargo test` runs over the committed corpus in `fuzz/corpus/log_segment/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    streamcache::log::fuzz_log_segment(data);
});

//! Fuzz target `resp_frame`: feeds arbitrary bytes to `streamcache::cache::fuzz_resp_frame`, the same body that
//! `cargo test` runs over the committed corpus in `fuzz/corpus/resp_frame/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    streamcache::cache::fuzz_resp_frame(data);
});

//! Fuzz target `jolt_apply`: feeds arbitrary bytes to `streamcache::transform::fuzz_jolt_apply`, the same body that
//! `cargo test` runs over the committed corpus in `fuzz/corpus/jolt_apply/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    streamcache::transform::fuzz_jolt_apply(data);
});

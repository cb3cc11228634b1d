//! Fuzz target `jolt_spec`: feeds arbitrary bytes to `streamcache::transform::fuzz_jolt_spec`, the same body that
//! `cargo test` runs over the committed corpus in `fuzz/corpus/jolt_spec/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    streamcache::transform::fuzz_jolt_spec(data);
});

//! Fuzz target `json_stream`: feeds arbitrary bytes to `streamcache::api::fuzz_kafka_json_stream`, the same body that
//! `cargo test` runs over the committed corpus in `fuzz/corpus/json_stream/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    streamcache::api::fuzz_kafka_json_stream(data);
});

//! Fuzz target: the RESP decoders on arbitrary bytes (body in `streamcache::cache`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    streamcache::cache::fuzz_resp_frame(data);
});

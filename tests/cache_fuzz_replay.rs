//! Capability: the RESP decoders survive every input in the committed fuzz corpus.
//! Method: replay each file of `fuzz/corpus/resp_frame/` through the fuzz target's body, plus
//! every prefix of each file (the decoders see partial input all the time).

use streamcache::cache::fuzz_resp_frame;

#[test]
fn resp_frame_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/resp_frame");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let data = std::fs::read(entry.expect("entry").path()).expect("corpus file");
        for cut in 0..=data.len() {
            fuzz_resp_frame(&data[..cut]);
        }
        n += 1;
    }
    assert!(n >= 10, "corpus has only {n} files");
}

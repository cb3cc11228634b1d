//! Regular expressions of a chosen compiled size, for testing the compiled-size limits
//! (`REGEX_COMPILED_BYTES_MAX` and its kin) at max and max + 1: a compiled program's size is
//! not visible, so the patterns grow 32 bytes per step and the last step that fits is found
//! with the `regex` crate under the same size limit.

#![allow(
    dead_code,
    reason = "each test file uses a different subset of the helpers"
)]

/// A pattern whose compiled size grows 32 bytes per repetition: `x|a{repeats}`. It stays a few
/// bytes long (below every pattern-length limit) and matches short text quickly even when its
/// program is near the limit, where a long run of `a`s would take minutes in a debug build.
pub(crate) fn big_pattern(repeats: usize) -> String {
    format!("x|a{{{repeats}}}")
}

/// The most repetitions of [`big_pattern`] whose program the `regex` crate compiles within
/// `max` bytes. Usually two compiles: `hint` fits and one more does not; otherwise (another
/// `regex` version, another limit) a search finds the boundary.
pub(crate) fn repeats_at_max(max: usize, hint: usize) -> usize {
    let fits = |n: usize| {
        regex::RegexBuilder::new(&big_pattern(n))
            .size_limit(max)
            .build()
            .is_ok()
    };
    let (mut lo, mut hi) = if fits(hint) {
        let mut hi = hint + 1;
        while fits(hi) {
            hi *= 2;
        }
        (hint, hi)
    } else {
        (0, hint)
    };
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) { lo = mid } else { hi = mid }
    }
    lo
}

/// [`repeats_at_max`] for 1 MiB with regex 1.13.
pub(crate) const REPEATS_AT_1_MIB: usize = 32_758;

/// The `regex` crate's message for a program over `max` bytes.
pub(crate) fn too_big(max: usize) -> String {
    format!("Compiled regex exceeds size limit of {max} bytes.")
}

//! Bounded reads of the text files a user names (the configuration file, JOLT spec files): the
//! length is checked while reading, so no file makes the process hold more than its limit.

use std::path::Path;

/// Reads the UTF-8 text file at `path`, refusing one longer than `max` bytes. The length is
/// counted while reading (a file that grows after a size check, or a pipe, cannot get past
/// it), and at most `max + 1` bytes are ever held.
///
/// # Errors
/// The file cannot be read or is not UTF-8; `InvalidData` naming the limit when it is longer.
pub fn read_text_at_most(path: &Path, max: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_string(&mut text)?;
    if text.len() > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the file is longer than the limit of {max} bytes"),
        ));
    }
    Ok(text)
}

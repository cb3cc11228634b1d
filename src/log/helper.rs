//! The log's read helper: one thread that reads and verifies the second part of a large fetch
//! chunk while the fetching thread does the first.
//!
//! A verified read is the kernel's copy out of the page cache followed by CRC-32C over every
//! byte, both on the reading core. A fetch chunk of at least [`PARALLEL_CHUNK_BYTES_MIN`] is cut
//! at a batch boundary the offset index knows; the part after the cut goes to the helper as a
//! [`Job`] while the fetching thread reads and verifies the part before it. The helper is
//! shared by every partition of a log, and a fetch never waits on it for long
//! ([`Job::collect`]): a job the helper has not started is taken back and done inline, and a job
//! whose progress stalls (the helper thread preempted on a busy machine) is abandoned, so the
//! fetching thread reads that part itself into a fresh buffer.
//!
//! What the helper reports is how many bytes from the cut are whole batches with a matching
//! CRC-32C; the fetching thread skips the CRC only for batches on that chain and verifies
//! everything else itself, so a failure is reported exactly where and as a fetch without the
//! helper reports it.
//!
//! [`PARALLEL_CHUNK_BYTES_MIN`]: super::PARALLEL_CHUNK_BYTES_MIN

use std::os::unix::fs::FileExt as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use bytes::BytesMut;

use super::READ_PIECE_BYTES;
use super::error::{Result, io_at};
use super::segment::{self, BatchError};
use super::writer::Segment;

/// Polls for the next job before blocking (one poll ≈ 25 ns here, so ≈ 200 µs). A sequential
/// scan cuts a job about every 100 µs, and waking a blocked thread on a virtual CPU can take
/// longer than the fetching thread needs for its own part; polling briefly after each job keeps
/// the helper awake through a scan and stops once the scan does.
const POLLS_BEFORE_BLOCKING: u32 = 8_000;

/// Polls without the running job making progress before the fetching thread abandons it
/// (≈ 100 µs; a running helper advances at least every read of [`READ_PIECE_BYTES`], ≈ 25 µs).
const STALL_POLLS: u32 = 4_000;

/// The helper thread's queue. Dropping it ends the thread once the queue is empty.
#[derive(Debug)]
pub(crate) struct Helper {
    /// Jobs for the thread, in the order they were cut.
    jobs: mpsc::Sender<Arc<Job>>,
}

impl Helper {
    /// Starts the helper thread; `None` when the system cannot start a thread (fetches then
    /// read alone, which is correct, only slower).
    pub(crate) fn start() -> Option<Self> {
        let (jobs, queue) = mpsc::channel::<Arc<Job>>();
        std::thread::Builder::new()
            .name("log-read".to_owned())
            .spawn(move || {
                while let Some(job) = next_job(&queue) {
                    job.run();
                }
            })
            .ok()?;
        Some(Self { jobs })
    }

    /// Queues the reading and verifying of `tail[..len]` (the chunk's bytes from file position
    /// `pos` on) and returns the job to collect it from.
    pub(crate) fn submit(
        &self,
        seg: Arc<Segment>,
        pos: u64,
        tail: BytesMut,
        len: usize,
    ) -> Arc<Job> {
        let job = Arc::new(Job::new(seg, pos, tail, len));
        // A send fails only once the thread is gone; the job then stays queued and `collect`
        // does it inline.
        let _unsent = self.jobs.send(job.clone());
        job
    }
}

/// The next job: polled for a while, then waited for; `None` once the log is gone.
fn next_job(queue: &mpsc::Receiver<Arc<Job>>) -> Option<Arc<Job>> {
    for _ in 0..POLLS_BEFORE_BLOCKING {
        match queue.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::TryRecvError::Empty) => std::hint::spin_loop(),
            Err(mpsc::TryRecvError::Disconnected) => return None,
        }
    }
    queue.recv().ok()
}

/// Where a job is.
#[derive(Debug)]
enum State {
    /// Waiting for the helper, holding the buffer to fill.
    Queued(BytesMut),
    /// The helper is reading and verifying it.
    Running,
    /// Read: the buffer and how many bytes from its start are verified batches.
    Done(BytesMut, Result<usize>),
    /// Collected, taken back or abandoned by the fetching thread: the helper drops whatever
    /// it still holds.
    Collected,
}

/// What [`Job::collect`] gives back.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The buffer, read, and how many bytes from its start are verified batches (or the read
    /// error).
    Read(BytesMut, Result<usize>),
    /// The buffer unread (`collect(false)` on a job not started).
    Unread(BytesMut),
    /// Nothing: the helper is still on it, or stalled. The fetching thread reads that part
    /// itself; the helper frees the buffer when it is done.
    Abandoned,
}

/// One chunk part to read from the file and verify.
#[derive(Debug)]
pub(crate) struct Job {
    /// The segment to read.
    seg: Arc<Segment>,
    /// File position of the buffer's first byte.
    pos: u64,
    /// Bytes to read from the buffer's start (the buffer may be longer).
    len: usize,
    /// Progress, guarded.
    state: Mutex<State>,
    /// Advanced by the helper after every read and every verified batch: how the fetching
    /// thread tells a helper at work from a stalled one.
    progress: AtomicUsize,
}

impl Job {
    fn new(seg: Arc<Segment>, pos: u64, tail: BytesMut, len: usize) -> Self {
        Self {
            seg,
            pos,
            len,
            state: Mutex::new(State::Queued(tail)),
            progress: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent under a panic (every transition is one assignment).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// On the helper thread: does the job unless the fetching thread took it back.
    fn run(&self) {
        if let Some(mut tail) = self.start() {
            let verified = self.fill(&mut tail, &self.progress);
            self.finish(tail, verified);
        }
    }

    /// Moves a queued job to running and hands its buffer over; `None` when the fetching
    /// thread took it back.
    fn start(&self) -> Option<BytesMut> {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, State::Running) {
            State::Queued(tail) => Some(tail),
            other => {
                *state = other;
                None
            }
        }
    }

    /// Stores the helper's result, or drops the buffer when the job was abandoned meanwhile.
    fn finish(&self, tail: BytesMut, verified: Result<usize>) {
        let mut state = self.lock();
        if matches!(*state, State::Running) {
            *state = State::Done(tail, verified);
        }
    }

    /// On the fetching thread: the job's buffer. A job still queued is done here and now (or,
    /// without `wanted`, given back unread); a running one is waited for while it makes
    /// progress and abandoned when it stalls (or at once, without `wanted`).
    pub(crate) fn collect(&self, wanted: bool) -> Outcome {
        let mut seen = self.progress.load(Ordering::Acquire);
        let mut stalled = 0u32;
        loop {
            let mut state = self.lock();
            match std::mem::replace(&mut *state, State::Collected) {
                State::Queued(mut tail) => {
                    drop(state);
                    if !wanted {
                        return Outcome::Unread(tail);
                    }
                    let verified = self.fill(&mut tail, &AtomicUsize::new(0));
                    return Outcome::Read(tail, verified);
                }
                State::Done(tail, verified) => return Outcome::Read(tail, verified),
                State::Collected => return Outcome::Abandoned,
                State::Running => {
                    if !wanted || stalled >= STALL_POLLS {
                        // Left as `Collected`: the helper drops the buffer when it is done.
                        return Outcome::Abandoned;
                    }
                    *state = State::Running;
                }
            }
            drop(state);
            let now = self.progress.load(Ordering::Acquire);
            if now == seen {
                stalled += 1;
            } else {
                (seen, stalled) = (now, 0);
            }
            std::hint::spin_loop();
        }
    }

    /// Reads and verifies the job's part of `tail`, advancing `progress`.
    fn fill(&self, tail: &mut BytesMut, progress: &AtomicUsize) -> Result<usize> {
        let len = self.len.min(tail.len());
        let part = tail.get_mut(..len).unwrap_or_default();
        fill_and_verify(&self.seg, self.pos, part, progress)
    }
}

/// Fills all of `buf` from `seg` at `pos`, [`READ_PIECE_BYTES`] at a time, verifying each
/// whole batch (framing and CRC-32C) as soon as its bytes are in, and advancing `progress`
/// after each read and each batch; returns how many bytes from the start are verified batches.
/// It stops verifying at the first batch that does not verify or does not fit, but always
/// reads the whole buffer.
///
/// # Errors
/// [`super::Error::Io`] when a read fails.
fn fill_and_verify(
    seg: &Segment,
    pos: u64,
    buf: &mut [u8],
    progress: &AtomicUsize,
) -> Result<usize> {
    let (mut filled, mut verified, mut checking) = (0usize, 0usize, true);
    while filled < buf.len() {
        let mut to = (filled + READ_PIECE_BYTES).min(buf.len());
        if checking {
            // Read at least to the end of the batch being verified.
            if let Err(BatchError::Incomplete { needed }) =
                segment::decode_batch_frame(buf.get(verified..filled).unwrap_or_default())
            {
                to = to.max(verified + needed).min(buf.len());
            }
        }
        if let Some(dst) = buf.get_mut(filled..to) {
            seg.file
                .read_exact_at(dst, pos + filled as u64)
                .map_err(io_at(&seg.path))?;
        }
        filled = to;
        progress.fetch_add(1, Ordering::Release);
        while checking {
            match segment::decode_batch_info(buf.get(verified..filled).unwrap_or_default()) {
                Ok(info) => {
                    verified += info.len;
                    progress.fetch_add(1, Ordering::Release);
                }
                Err(BatchError::Incomplete { needed }) => {
                    checking = verified + needed <= buf.len();
                    break;
                }
                Err(BatchError::Invalid { .. }) => checking = false,
            }
        }
    }
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Record;
    use crate::log::writer::create_segment;

    /// A segment holding three batches of 200 records of 1000 bytes (≈ 200 KB each); returns it
    /// and the batches' lengths.
    fn segment(dir: &std::path::Path) -> (Arc<Segment>, Vec<usize>) {
        let seg = create_segment(dir, 0).unwrap();
        let records: Vec<Record> = (0..200)
            .map(|i| Record {
                value: Some(vec![b'a' + (i % 26) as u8; 1000].into()),
                ..Record::default()
            })
            .collect();
        let (mut bytes, mut lens) = (Vec::new(), Vec::new());
        for b in 0..3 {
            let before = bytes.len();
            segment::encode_batch(b * 200, 0, &records, &mut bytes);
            lens.push(bytes.len() - before);
        }
        seg.file.write_all_at(&bytes, 0).unwrap();
        (Arc::new(seg), lens)
    }

    fn file_bytes(seg: &Segment, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        seg.file.read_exact_at(&mut out, 0).unwrap();
        out
    }

    #[test]
    fn a_queued_job_is_read_and_verified_by_the_collecting_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, lens) = segment(dir.path());
        let total: usize = lens.iter().sum();
        // A longer buffer than the job: only `len` bytes are read.
        let job = Job::new(seg.clone(), 0, BytesMut::zeroed(total + 10), total);
        match job.collect(true) {
            Outcome::Read(buf, verified) => {
                assert_eq!(verified.unwrap(), total);
                assert_eq!(&buf[..total], &file_bytes(&seg, total)[..]);
                assert_eq!(&buf[total..], &[0; 10]);
            }
            other => panic!("expected Read, got {other:?}"),
        }
        // Collected once: the helper finds nothing to do.
        assert!(job.start().is_none());
    }

    #[test]
    fn a_job_not_wanted_comes_back_unread() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, lens) = segment(dir.path());
        let job = Job::new(seg, 0, BytesMut::zeroed(lens[0]), lens[0]);
        match job.collect(false) {
            Outcome::Unread(buf) => assert!(buf.iter().all(|&b| b == 0)),
            other => panic!("expected Unread, got {other:?}"),
        }
    }

    #[test]
    fn a_finished_job_hands_over_the_helpers_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, lens) = segment(dir.path());
        let job = Job::new(seg.clone(), 0, BytesMut::zeroed(lens[0]), lens[0]);
        job.run();
        match job.collect(true) {
            Outcome::Read(buf, verified) => {
                assert_eq!(verified.unwrap(), lens[0]);
                assert_eq!(&buf[..], &file_bytes(&seg, lens[0])[..]);
            }
            other => panic!("expected Read, got {other:?}"),
        }
    }

    #[test]
    fn a_stalled_job_is_abandoned_and_its_late_result_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, lens) = segment(dir.path());
        let job = Job::new(seg, 0, BytesMut::zeroed(lens[0]), lens[0]);
        // The helper took it and makes no progress (preempted).
        let tail = job.start().unwrap();
        assert!(matches!(job.collect(true), Outcome::Abandoned));
        // Its late result is dropped, not handed to anyone.
        job.finish(tail, Ok(lens[0]));
        assert!(matches!(job.collect(true), Outcome::Abandoned));
        // Without `wanted`, a running job is abandoned at once.
        let dir = tempfile::tempdir().unwrap();
        let (seg, lens) = segment(dir.path());
        let job = Job::new(seg, 0, BytesMut::zeroed(lens[0]), lens[0]);
        let _tail = job.start().unwrap();
        assert!(matches!(job.collect(false), Outcome::Abandoned));
    }

    #[test]
    fn verification_stops_at_a_bad_batch_but_the_whole_part_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, lens) = segment(dir.path());
        let total: usize = lens.iter().sum();
        // One byte in the second batch's last record value.
        seg.file
            .write_all_at(b"X", (lens[0] + lens[1] - 1) as u64)
            .unwrap();
        let mut buf = vec![0; total];
        let progress = AtomicUsize::new(0);
        let verified = fill_and_verify(&seg, 0, &mut buf, &progress).unwrap();
        assert_eq!(verified, lens[0]);
        assert_eq!(buf, file_bytes(&seg, total));
        assert!(progress.load(Ordering::Relaxed) >= 2);
        // A part cut short inside a batch verifies the batches before it.
        let mut short = vec![0; lens[0] + 10];
        assert_eq!(
            fill_and_verify(&seg, 0, &mut short, &progress).unwrap(),
            lens[0]
        );
    }

    #[test]
    fn the_helper_thread_reads_submitted_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, lens) = segment(dir.path());
        let total: usize = lens.iter().sum();
        let helper = Helper::start().unwrap();
        for _ in 0..20 {
            let job = helper.submit(seg.clone(), 0, BytesMut::zeroed(total), total);
            match job.collect(true) {
                Outcome::Read(buf, verified) => {
                    assert_eq!(verified.unwrap(), total);
                    assert_eq!(&buf[..], &file_bytes(&seg, total)[..]);
                }
                // The helper was preempted long enough on this machine: the caller reads it.
                Outcome::Abandoned => {}
                Outcome::Unread(_) => panic!("a wanted job came back unread"),
            }
        }
    }
}

//! A read cap on one record of a file source, enforced *while* it is read.
//!
//! The csv crate and serde buffer a whole record (or a whole JSON string) before
//! handing it over, so a check on the finished record comes too late for a 500 MB
//! field: the memory is already taken. [`Capped`] sits under the parser and counts
//! the bytes it delivers since the parser's current record began ([`RecordMark::start`]);
//! past the cap the read fails, the parse stops, and the caller turns the error into
//! one that names `source.max_record_bytes` and where the record began.
//!
//! `Capped` sits under the parser's [`BUFFER`]-sized read buffer (so serde's
//! byte-at-a-time reads cost nothing extra), and the mark is set by the parser's loop
//! between records; what was delivered runs ahead of the parser by at most that buffer
//! and the parser's own (the csv crate's 8 KiB), so the cap allows [`SLACK`] over the
//! limit before it trips. Within that, the exact per-record check after parsing gives
//! the precise message.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// The read buffer over a [`Capped`] reader.
pub(super) const BUFFER: usize = 64 * 1024;

/// Read-ahead the cap tolerates beyond the limit: [`BUFFER`] and a parser's own
/// buffer (the csv crate's is 8 KiB), with room to spare.
pub(super) const SLACK: u64 = 2 * BUFFER as u64;

#[derive(Debug, Default)]
struct Counts {
    delivered: Cell<u64>,
    mark: Cell<u64>,
    /// Off outside the records (a JSON document's wrapper around its users array).
    armed: Cell<bool>,
    tripped: Cell<bool>,
}

/// The parser's side of a [`Capped`] reader: where the current record began.
#[derive(Debug, Clone, Default)]
pub(super) struct RecordMark(Rc<Counts>);

impl RecordMark {
    /// A record begins here; the cap counts from now. Arms the cap.
    pub(super) fn start(&self) {
        self.0.mark.set(self.0.delivered.get());
        self.0.armed.set(true);
    }

    /// Outside the records: nothing is counted until the next [`start`](Self::start).
    pub(super) fn disarm(&self) {
        self.0.armed.set(false);
    }

    /// Whether the read failed because a record ran over the cap.
    pub(super) fn tripped(&self) -> bool {
        self.0.tripped.get()
    }
}

/// A reader that fails once more than `limit` (+ [`SLACK`]) bytes were read since the
/// last [`RecordMark::start`].
#[derive(Debug)]
pub(super) struct Capped<R> {
    inner: R,
    counts: RecordMark,
    limit: u64,
}

impl<R> Capped<R> {
    pub(super) fn new(inner: R, limit: usize, mark: &RecordMark) -> Self {
        Capped {
            inner,
            counts: mark.clone(),
            limit: (limit as u64).saturating_add(SLACK),
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let counts = &self.counts.0;
        if counts.tripped.get() {
            return Err(over_cap());
        }
        let n = self.inner.read(buf)?;
        let delivered = counts.delivered.get() + n as u64;
        counts.delivered.set(delivered);
        if counts.armed.get() && delivered - counts.mark.get() > self.limit {
            counts.tripped.set(true);
            return Err(over_cap());
        }
        Ok(n)
    }
}

fn over_cap() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "a record is larger than source.max_record_bytes",
    )
}

/// The message for a tripped cap, naming the limit and the key that raises it.
pub(super) fn over_limit(limit: usize) -> String {
    format!(
        "the record is larger than source.max_record_bytes ({limit} bytes); it was not read \
         to its end, and the whole file is refused (nobody is disabled)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_from_the_mark_and_only_when_armed() {
        let data = vec![b'x'; 300 * 1024];
        let mark = RecordMark::default();
        let mut reader = Capped::new(&data[..], 1024, &mark);
        let mut buf = [0u8; 32 * 1024];
        // Disarmed: anything may be read.
        for _ in 0..4 {
            reader.read_exact(&mut buf).unwrap();
        }
        mark.start();
        // 1 KiB + the slack (128 KiB) may follow the mark; the fifth 32 KiB read is over.
        for _ in 0..4 {
            reader.read_exact(&mut buf).unwrap();
        }
        let err = reader.read_exact(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(mark.tripped());
        // Once tripped, it stays failed.
        assert!(reader.read(&mut buf).is_err());
    }

    #[test]
    fn a_new_mark_gives_each_record_its_own_allowance() {
        let data = vec![b'x'; 1024 * 1024];
        let mark = RecordMark::default();
        let mut reader = Capped::new(&data[..], 1024, &mark);
        let mut buf = [0u8; 16 * 1024];
        for _ in 0..64 {
            mark.start();
            reader.read_exact(&mut buf).unwrap();
        }
        assert!(!mark.tripped());
    }
}

//! The bound on blob bytes queued for the run's writer (`writer.rs`): its
//! channel bounds messages, this bounds their bytes, whatever the chunk size.

use std::sync::{Arc, Condvar, Mutex};

/// Blob bytes in flight to the writer (a large-file tier's chunks reach
/// `chunker::MAX_TIER_CHUNK_BYTES`, 4 MiB; 64 of them would be 256 MiB).
pub(crate) const QUEUE_BYTES: u64 = 16 << 20;

/// Blob bytes sent to the writer and not yet taken off its channel by it:
/// a sender waits while adding its blob would pass [`QUEUE_BYTES`] (one
/// blob larger than that goes alone). Messages alone bound the count, not
/// the bytes: 64 chunks of a large-file tier's 4 MiB would be 256 MiB.
pub(crate) struct QueuedBytes {
    state: Mutex<(u64, bool)>,
    taken: Condvar,
}

impl QueuedBytes {
    pub(crate) fn new() -> QueuedBytes {
        QueuedBytes {
            state: Mutex::new((0, false)),
            taken: Condvar::new(),
        }
    }

    /// Wait until `n` more bytes fit, then count them. `false` when the
    /// writer is gone (nothing counted).
    pub(crate) fn add(&self, n: u64) -> bool {
        let mut s = self.state.lock().expect("queued bytes poisoned");
        while !s.1 && s.0 > 0 && s.0 + n > QUEUE_BYTES {
            s = self.taken.wait(s).expect("queued bytes poisoned");
        }
        if s.1 {
            return false;
        }
        s.0 += n;
        true
    }

    /// The writer took `n` bytes off its channel.
    pub(crate) fn take(&self, n: u64) {
        let mut s = self.state.lock().expect("queued bytes poisoned");
        s.0 = s.0.saturating_sub(n);
        self.taken.notify_all();
    }

    /// The writer stopped (or panicked): no sender waits for it any more.
    pub(crate) fn close(&self) {
        self.state.lock().expect("queued bytes poisoned").1 = true;
        self.taken.notify_all();
    }
}

/// Closes [`QueuedBytes`] when the writer thread ends, however it ends.
pub(crate) struct CloseOnDrop(pub(crate) Arc<QueuedBytes>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Starts `add(n)` on another thread; its answer arrives on the channel.
    fn adding(q: &Arc<QueuedBytes>, n: u64) -> mpsc::Receiver<bool> {
        let (tx, rx) = mpsc::channel();
        let q = q.clone();
        std::thread::spawn(move || tx.send(q.add(n)).unwrap());
        rx
    }

    const WAIT: Duration = Duration::from_secs(30);

    #[test]
    fn a_sender_waits_until_the_writer_takes_bytes_off() {
        let q = Arc::new(QueuedBytes::new());
        assert!(q.add(QUEUE_BYTES - 10));
        let waiting = adding(&q, 11);
        assert!(
            waiting.recv_timeout(Duration::from_millis(200)).is_err(),
            "11 more bytes do not fit"
        );
        q.take(10);
        assert_eq!(waiting.recv_timeout(WAIT), Ok(true));
    }

    #[test]
    fn a_blob_larger_than_the_bound_goes_alone() {
        let q = Arc::new(QueuedBytes::new());
        assert_eq!(adding(&q, QUEUE_BYTES * 2).recv_timeout(WAIT), Ok(true));
        let next = adding(&q, 1);
        assert!(next.recv_timeout(Duration::from_millis(200)).is_err());
        q.take(QUEUE_BYTES * 2);
        assert_eq!(next.recv_timeout(WAIT), Ok(true));
    }

    #[test]
    fn a_writer_gone_releases_every_sender() {
        let q = Arc::new(QueuedBytes::new());
        assert!(q.add(QUEUE_BYTES));
        let waiting = adding(&q, 1);
        drop(CloseOnDrop(q.clone()));
        assert_eq!(waiting.recv_timeout(WAIT), Ok(false));
        assert!(!q.add(1), "nothing is counted once the writer is gone");
    }
}

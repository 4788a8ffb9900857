//! Archive appends behind the caller, committed in batches (group commit): a message archive
//! appends once or twice per message, and a commit each, with `synchronous = FULL`, cost a
//! disk flush each (about 0.5 ms here: 1,030 archived messages/s, docs/benchmarks.md). Here
//! [`AppendQueue::push`] returns at once (the id is the host's, known before the write), one
//! thread commits whatever has queued in one transaction, and every read of the archive waits
//! for the appends queued before it ([`AppendQueue::flush`]), so a module reads its own writes.
//!
//! What a crash can lose: the appends of the batch being written (milliseconds of them). What
//! needs a bound checked and stored in one step (offline storage) does not come here. A batch
//! that fails is written again entry by entry, so one bad entry costs only itself; the queue is
//! bounded ([`MAX_QUEUED`]: a caller waits while it is full, as with a synchronous write), and
//! a writer that dies (it should not) wakes every waiter and makes appends synchronous again
//! instead of leaving reads waiting forever.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;
use tessera_plugin_api::protocol::ArchiveItem;

/// Most entries one transaction writes.
const BATCH: usize = 1024;
/// Most entries waiting to be written; a caller pushing more waits for the writer.
pub(super) const MAX_QUEUED: usize = 65_536;

/// One queued append: (module, archive, account) and the entry.
pub(super) type Append = ([String; 3], ArchiveItem);

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Append>,
    /// Appends ever queued, and ever written (or given up on).
    queued: u64,
    done: u64,
    stop: bool,
    /// The writer thread ended: appends are written by their callers.
    dead: bool,
}

/// The queue and its writer thread.
#[derive(Debug)]
pub(super) struct AppendQueue {
    state: Mutex<State>,
    /// Something was queued (or stop).
    work: Condvar,
    /// A batch was written.
    written: Condvar,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AppendQueue {
    /// The queue, and its writer on a thread of its own writing through `writer`.
    pub(super) fn start(writer: Arc<Mutex<Connection>>) -> std::io::Result<Arc<Self>> {
        let queue = Arc::new(Self {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            written: Condvar::new(),
        });
        let q = queue.clone();
        std::thread::Builder::new()
            .name("archive-writer".into())
            .spawn(move || {
                let _dead = Dead(&q);
                q.run(&writer);
            })?;
        Ok(queue)
    }

    /// Queue an append; it is visible to every read that [`flush`](Self::flush)es after.
    /// Answers the append back when it must be written by the caller (the writer is gone).
    pub(super) fn push(&self, append: Append) -> Option<Append> {
        let mut s = lock(&self.state);
        while s.queue.len() >= MAX_QUEUED && !s.dead && !s.stop {
            s = self.written.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        if s.dead || s.stop {
            return Some(append);
        }
        s.queue.push_back(append);
        s.queued += 1;
        self.work.notify_one();
        None
    }

    /// Wait until every append queued before this call is written.
    pub(super) fn flush(&self) {
        let mut s = lock(&self.state);
        let target = s.queued;
        while s.done < target && !s.stop && !s.dead {
            s = self.written.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Write what is queued, then stop the writer (the store is going away).
    pub(super) fn stop(&self) {
        self.flush();
        lock(&self.state).stop = true;
        self.work.notify_all();
        self.written.notify_all();
    }

    fn run(&self, writer: &Mutex<Connection>) {
        loop {
            let batch: Vec<Append> = {
                let mut s = lock(&self.state);
                while s.queue.is_empty() && !s.stop {
                    s = self.work.wait(s).unwrap_or_else(PoisonError::into_inner);
                }
                if s.queue.is_empty() {
                    return;
                }
                let n = s.queue.len().min(BATCH);
                s.queue.drain(..n).collect()
            };
            let n = batch.len() as u64;
            {
                let conn = writer.lock().unwrap_or_else(PoisonError::into_inner);
                if let Err(e) = write(&conn, &batch) {
                    // One bad entry (or a transient failure) must not take the batch with it.
                    tracing::warn!(error = %e, entries = n, "archive batch failed; writing its entries one by one");
                    for append in &batch {
                        if let Err(e) = write(&conn, std::slice::from_ref(append)) {
                            tracing::error!(error = %e, id = %append.1.id, "archive entry could not be written; it is lost");
                        }
                    }
                }
            }
            let mut s = lock(&self.state);
            s.done += n;
            self.written.notify_all();
        }
    }
}

/// Marks the queue dead when the writer thread ends (a panic included) and wakes every
/// waiter, so that nothing waits for a writer that is gone.
struct Dead<'a>(&'a AppendQueue);

impl Drop for Dead<'_> {
    fn drop(&mut self) {
        let mut s = lock(&self.0.state);
        if !s.stop {
            tracing::error!(
                pending = s.queue.len(),
                "the archive writer ended; appends are written synchronously from now on"
            );
        }
        s.dead = true;
        self.0.work.notify_all();
        self.0.written.notify_all();
    }
}

/// Write `batch` in one transaction.
pub(super) fn write(conn: &Connection, batch: &[Append]) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    for ([module, archive, user], item) in batch {
        super::sqlite::insert_entry(&tx, [module, archive, user], item, "")?;
    }
    tx.commit()
}

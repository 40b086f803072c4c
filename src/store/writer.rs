//! The one thread that writes the log: appends committed records, fsyncs
//! them (after each batch of commits under `sync = "always"`, once per
//! interval otherwise) and acknowledges the commits waiting for it, and
//! rewrites the file when the store compacts. Executor threads never wait
//! on the disk: they hand records over a channel and, under `always`,
//! await the acknowledgement.
//!
//! A write or fsync that fails cuts the file back to the end of the last
//! good record (so no later record ever sits behind a torn one), answers
//! the batch's commits failed and tells the store, which rolls its index
//! back to what is on disk; commits already queued behind the failed batch
//! were resolved against it and are answered failed too. If even the cut
//! fails, the store is failed: every later commit is refused.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use smol::channel::Receiver;

/// A commit's acknowledgement: `Ok` once its record is on disk (fsynced),
/// or why it is not.
pub type AckSender = smol::channel::Sender<Result<(), String>>;

/// What the writer is asked to do, in commit order. `seq` is the commit's
/// number (a rewrite: the last commit it contains).
pub enum Msg {
    /// Append a framed record; acknowledge it after its fsync when there is
    /// a sender.
    Append(u64, Vec<u8>, Option<AckSender>),
    /// Replace the whole file with these bytes (compaction): write a new
    /// file, fsync it, rename it over the log, fsync the directory.
    Rewrite(u64, Vec<u8>),
}

/// What the writer tells the store after each write.
pub enum Outcome {
    /// Every commit up to this one is on disk.
    Durable(u64),
    /// The last batch is not on disk; `broken`: the file could not be cut
    /// back either, nothing more can be written.
    Failed { why: String, broken: bool },
}

/// When the writer fsyncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Before any commit is acknowledged.
    Always,
    /// At most this long after a commit: what a power cut can lose.
    Every(Duration),
}

/// What the store and the writer share.
pub struct Shared {
    /// Bytes of appended records not yet written (or failed): the store
    /// adds a record's length before sending it, the writer subtracts it
    /// once done with it (`QUEUE_BYTES`).
    pub queued: AtomicU64,
    /// When to fsync; a reload may change it.
    pub durability: Mutex<Durability>,
}

/// The log's file name in the store's directory.
pub const LOG: &str = "kv.log";
/// The compacted file being written, before it replaces [`LOG`].
pub const NEXT: &str = "kv.log.next";

/// The log file as the writer holds it.
struct Log {
    dir: PathBuf,
    file: File,
    /// The end of the last good record.
    len: u64,
    /// Commits up to this one are answered failed without being written.
    discard: u64,
    /// Why nothing more can be written, once so.
    broken: Option<String>,
}

/// Commits gathered for one write and one fsync.
#[derive(Default)]
struct Group {
    buf: Vec<u8>,
    acks: Vec<AckSender>,
    last: u64,
}

/// Gives `len` bytes of queued records back to the store's budget.
fn done(shared: &Shared, len: usize) {
    let _ = shared
        .queued
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
            Some(q.saturating_sub(len as u64))
        });
}

/// Runs the writer until every sender is gone, then flushes what is left.
/// `report` is told each outcome and answers the commit number up to which
/// queued commits are to be discarded.
pub fn run(
    dir: PathBuf,
    file: File,
    len: u64,
    shared: &Shared,
    rx: Receiver<Msg>,
    mut report: impl FnMut(Outcome) -> u64,
) {
    let mut log = Log {
        dir,
        file,
        len,
        discard: 0,
        broken: None,
    };
    let mut last_sync = Instant::now();
    loop {
        // Closed and drained: the store is closed.
        let Ok(first) = rx.recv_blocking() else {
            return;
        };
        let mut msgs = vec![first];
        let durability = *shared.durability.lock().unwrap_or_else(|p| p.into_inner());
        if let Durability::Every(interval) = durability {
            // Gather what the interval brings, so that one write and one
            // fsync carry all of it (SD cards wear per write).
            let left = (last_sync + interval).saturating_duration_since(Instant::now());
            if !left.is_zero() {
                std::thread::sleep(left);
            }
        }
        while let Ok(msg) = rx.try_recv() {
            msgs.push(msg);
        }
        let mut group = Group::default();
        for msg in msgs {
            match msg {
                Msg::Append(seq, bytes, ack) => {
                    if seq <= log.discard || log.broken.is_some() {
                        done(shared, bytes.len());
                        let why = log
                            .broken
                            .clone()
                            .unwrap_or_else(|| "an earlier write failed".into());
                        if let Some(ack) = ack {
                            let _ = ack.try_send(Err(why));
                        }
                        continue;
                    }
                    group.buf.extend_from_slice(&bytes);
                    group.acks.extend(ack);
                    group.last = seq;
                }
                Msg::Rewrite(seq, bytes) => {
                    flush(&mut log, std::mem::take(&mut group), shared, &mut report);
                    if seq > log.discard && log.broken.is_none() {
                        log.rewrite(&bytes, &mut report);
                    }
                }
            }
        }
        flush(&mut log, group, shared, &mut report);
        last_sync = Instant::now();
    }
}

/// Writes and fsyncs `group`, then answers its commits.
fn flush(log: &mut Log, group: Group, shared: &Shared, report: &mut impl FnMut(Outcome) -> u64) {
    if group.buf.is_empty() {
        return;
    }
    let result = log.append(&group.buf);
    done(shared, group.buf.len());
    if let Err(why) = &result {
        let path = log.dir.join(LOG);
        log::error!("state: writing {}: {why}", path.display());
        let broken = log.cut().err().map(|e| {
            format!(
                "cannot cut {} back to {} bytes after a failed write: {e}; the store is read-only until restarted",
                path.display(),
                log.len
            )
        });
        if let Some(why) = &broken {
            log::error!("state: {why}");
            log.broken = broken.clone();
        }
        log.discard = report(Outcome::Failed {
            broken: broken.is_some(),
            why: broken.unwrap_or_else(|| why.clone()),
        });
    } else {
        report(Outcome::Durable(group.last));
    }
    for ack in group.acks {
        let _ = ack.try_send(result.clone());
    }
}

impl Log {
    /// Writes `buf` at the end of the log and fsyncs it.
    fn append(&mut self, buf: &[u8]) -> Result<(), String> {
        #[cfg(test)]
        let buf = match fault::take(&self.dir) {
            Some(fault::Fault::Torn) => {
                let half = buf.get(..buf.len() / 2).unwrap_or_default();
                self.file.write_all(half).map_err(|e| e.to_string())?;
                return Err("injected: torn write".into());
            }
            Some(fault::Fault::Sync) => {
                self.file.write_all(buf).map_err(|e| e.to_string())?;
                return Err("injected: fsync failed".into());
            }
            Some(fault::Fault::Pause { started, go }) => {
                let _ = started.send(());
                let _ = go.recv();
                buf
            }
            None => buf,
        };
        self.file.write_all(buf).map_err(|e| e.to_string())?;
        self.file.sync_data().map_err(|e| e.to_string())?;
        self.len = self.len.saturating_add(buf.len() as u64);
        Ok(())
    }

    /// Cuts the file back to the end of the last good record.
    fn cut(&mut self) -> Result<(), String> {
        #[cfg(test)]
        if fault::take(&self.dir).is_some() {
            return Err("injected: cut failed".into());
        }
        self.file
            .set_len(self.len)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| e.to_string())
    }

    /// Replaces the log with `bytes`, crash-safely: at every instant either
    /// the old or the new file is the log. Failing before the rename keeps
    /// the old log (complete); after it, the store is broken.
    fn rewrite(&mut self, bytes: &[u8], report: &mut impl FnMut(Outcome) -> u64) {
        let next = self.dir.join(NEXT);
        let written = File::create(&next).and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&next, self.dir.join(LOG))
        });
        if let Err(e) = written {
            log::error!(
                "state: compacting into {}: {e}; keeping the log as it is",
                next.display()
            );
            let _ = std::fs::remove_file(&next);
            return;
        }
        match sync_dir(&self.dir).and_then(|()| open_append(&self.dir.join(LOG))) {
            Ok(file) => {
                self.file = file;
                self.len = bytes.len() as u64;
            }
            Err(e) => {
                let why = format!("after compacting: {e}; the store is read-only until restarted");
                log::error!("state: {why}");
                self.broken = Some(why.clone());
                self.discard = report(Outcome::Failed { why, broken: true });
            }
        }
    }
}

/// Opens the log for appending.
pub fn open_append(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Test-only failures of the next write in a directory.
#[cfg(test)]
pub mod fault {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    /// What goes wrong.
    #[derive(Debug)]
    pub enum Fault {
        /// Half the batch is written, then the write fails.
        Torn,
        /// The batch is written, its fsync fails.
        Sync,
        /// The write says it has started, waits until `go` sends or is
        /// dropped, then succeeds.
        Pause {
            started: std::sync::mpsc::Sender<()>,
            go: std::sync::mpsc::Receiver<()>,
        },
    }

    static FAULTS: Mutex<Vec<(PathBuf, Fault)>> = Mutex::new(Vec::new());

    /// Queues `faults` for the next writes (and cuts) in `dir`: each is
    /// used once, in order.
    pub fn inject(dir: &Path, faults: Vec<Fault>) {
        let mut all = FAULTS.lock().unwrap_or_else(|p| p.into_inner());
        all.extend(faults.into_iter().map(|f| (dir.to_path_buf(), f)));
    }

    pub(super) fn take(dir: &Path) -> Option<Fault> {
        let mut all = FAULTS.lock().unwrap_or_else(|p| p.into_inner());
        let i = all.iter().position(|(d, _)| d == dir)?;
        Some(all.remove(i).1)
    }
}

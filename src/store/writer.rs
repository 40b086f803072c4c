//! The one thread that writes the log: appends committed records, fsyncs
//! them (after each batch of commits under `sync = "always"`, once per
//! interval otherwise) and acknowledges the commits waiting for it, and
//! rewrites the file when the store compacts. Executor threads never wait
//! on the disk: they hand records over a channel and, under `always`,
//! await the acknowledgement.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use smol::channel::Receiver;

/// A commit's acknowledgement: `Ok` once its record is on disk (fsynced),
/// or why it is not.
pub type AckSender = smol::channel::Sender<Result<(), String>>;

/// What the writer is asked to do, in commit order.
pub enum Msg {
    /// Append a framed record; acknowledge it after its fsync when there is
    /// a sender.
    Append(Vec<u8>, Option<AckSender>),
    /// Replace the whole file with these bytes (compaction): write a new
    /// file, fsync it, rename it over the log, fsync the directory.
    Rewrite(Vec<u8>),
}

/// When the writer fsyncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Before any commit is acknowledged.
    Always,
    /// At most this long after a commit: what a power cut can lose.
    Every(Duration),
}

/// The log's file name in the store's directory.
pub const LOG: &str = "kv.log";
/// The compacted file being written, before it replaces [`LOG`].
pub const NEXT: &str = "kv.log.next";

/// Runs the writer until every sender is gone, then flushes what is left.
pub fn run(dir: PathBuf, mut file: File, durability: Durability, rx: Receiver<Msg>) {
    let mut last_sync = Instant::now();
    loop {
        // Closed and drained: the store is closed.
        let Ok(first) = rx.recv_blocking() else {
            return;
        };
        let mut msgs = vec![first];
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
        let mut buf = Vec::new();
        let mut acks = Vec::new();
        let mut result = Ok(());
        for msg in msgs {
            match msg {
                Msg::Append(bytes, ack) => {
                    buf.extend_from_slice(&bytes);
                    acks.extend(ack);
                }
                Msg::Rewrite(bytes) => {
                    result = result.and_then(|()| append(&mut file, &mut buf));
                    result = result.and_then(|()| rewrite(&dir, &bytes).map(|f| file = f));
                }
            }
        }
        result = result.and_then(|()| append(&mut file, &mut buf));
        last_sync = Instant::now();
        if let Err(e) = &result {
            log::error!("state: writing {}: {e}", dir.join(LOG).display());
        }
        for ack in acks {
            let _ = ack.try_send(result.clone());
        }
    }
}

/// Writes `buf` at the end of the log and fsyncs it.
fn append(file: &mut File, buf: &mut Vec<u8>) -> Result<(), String> {
    if buf.is_empty() {
        return Ok(());
    }
    file.write_all(buf).map_err(|e| e.to_string())?;
    buf.clear();
    file.sync_data().map_err(|e| e.to_string())
}

/// Replaces the log with `bytes`, crash-safely: at every instant either the
/// old or the new file is the log.
fn rewrite(dir: &Path, bytes: &[u8]) -> Result<File, String> {
    let next = dir.join(NEXT);
    let mut f = File::create(&next).map_err(|e| e.to_string())?;
    f.write_all(bytes).map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| e.to_string())?;
    drop(f);
    std::fs::rename(&next, dir.join(LOG)).map_err(|e| e.to_string())?;
    sync_dir(dir)?;
    open_append(&dir.join(LOG))
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

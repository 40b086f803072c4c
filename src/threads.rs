//! Work that must not run on an executor thread (a module's compile, a
//! host name's resolution) runs on a thread of its own that ends with it.
//!
//! Not on `smol::unblock`'s pool: its idle threads never end, and a second
//! thread in the process makes every system call on a socket take the
//! kernel's shared-file-table path and glibc's cancellation bookkeeping
//! (~10 % of a proxied request's CPU, `vendor/async-io/PATCH.md`). An idle
//! one-worker server is one thread (`tests/workers.rs`).

use std::sync::{Arc, Mutex, PoisonError};

/// Runs `job` on a thread of its own named `name` and waits for its result
/// without blocking the executor; `None` if `job` panicked there (in a
/// test build: release builds abort on a panic). If no thread can be
/// started, the job runs here, on the executor, after a warning: slower,
/// but the request is served. A waiter that goes away leaves the job to
/// finish; its result is dropped on its thread.
pub async fn off_thread<T, F>(name: &str, job: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (done, result) = smol::channel::bounded(1);
    let job = Arc::new(Mutex::new(Some(job)));
    let shared = Arc::clone(&job);
    let take = |job: &Mutex<Option<F>>| job.lock().unwrap_or_else(PoisonError::into_inner).take();
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            if let Some(job) = take(&shared) {
                let _ = done.try_send(job());
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start a {name} thread ({e}); running it on the executor");
    }
    if let Ok(value) = result.recv().await {
        return Some(value);
    }
    // No result: the thread was not started (the job is still here), or
    // `job` panicked on it.
    take(&job).map(|job| job())
}

/// Starts `job` on a thread named `name` and does not wait for it: the
/// error if no thread can be started (`job` is then dropped).
pub fn spawn_detached<F>(name: &str, job: F) -> std::io::Result<()>
where
    F: FnOnce() + Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(job)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn the_result_comes_back_from_a_thread_that_then_ends() {
        let (value, thread) = smol::block_on(off_thread("wasmgate-test", || {
            (7, std::thread::current().name().map(str::to_owned))
        }))
        .expect("a result");
        assert_eq!(value, 7);
        assert_eq!(thread.as_deref(), Some("wasmgate-test"));
    }

    #[test]
    fn a_panicking_job_gives_none() {
        let result: Option<()> =
            smol::block_on(off_thread("wasmgate-test", || panic!("on purpose")));
        assert!(result.is_none());
    }

    #[test]
    fn a_waiter_that_goes_away_leaves_the_job_to_finish_and_drop_its_result() {
        /// Tells when it is dropped.
        struct Held(Arc<AtomicBool>);
        impl Drop for Held {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let held = Held(Arc::clone(&dropped));
        let waiting = off_thread("wasmgate-test", move || {
            let _ = wait.recv();
            held
        });
        // Polled once (the thread starts), then dropped.
        let mut waiting = Box::pin(waiting);
        let waker = std::task::Waker::noop();
        let pending = waiting
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
            .is_pending();
        assert!(pending);
        drop(waiting);
        assert!(!dropped.load(Ordering::SeqCst));
        go.send(()).expect("the job waits");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !dropped.load(Ordering::SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "the result was never dropped"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

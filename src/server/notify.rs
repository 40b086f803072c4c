//! systemd's readiness protocol (`sd_notify`), without libsystemd: one
//! datagram per state change to the Unix socket named by `NOTIFY_SOCKET`
//! (a path, or an abstract socket written `@name`). Without the variable
//! (not started by systemd with `Type=notify`) nothing is sent.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` (`READY=1`, `STOPPING=1`, ...: newline-separated
/// assignments) to the service manager, if there is one. A failure is
/// logged and otherwise ignored: the service keeps serving.
pub fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&socket, state) {
        log::warn!(
            "sd_notify to {}: {e}",
            std::path::Path::new(&socket).display()
        );
    }
}

fn send(socket: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let out = UnixDatagram::unbound()?;
    let bytes = socket.as_bytes();
    match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            out.send_to_addr(state.as_bytes(), &addr)?;
        }
        None => {
            out.send_to(state.as_bytes(), socket)?;
        }
    }
    Ok(())
}

/// `RELOADING=1` with the `MONOTONIC_USEC` that `Type=notify-reload`
/// (systemd 253 and later) requires: the time of the reload on
/// `CLOCK_MONOTONIC`, in microseconds.
pub fn reloading() {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let usec = u64::try_from(now.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000)
        .saturating_add(u64::try_from(now.tv_nsec / 1000).unwrap_or(0));
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
}

/// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC` (as systemd
/// recommends), when it is set and `WATCHDOG_PID`, if set, is this
/// process.
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID")
        && pid.to_str()?.parse::<u32>().ok()? != std::process::id()
    {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

//! The `wasi_snapshot_preview1` import module: the WASI functions a
//! wasi-json guest calls.
//!
//! The WASI subset here is written for this runtime because it must be
//! capability-free: there are no preopened directories, no sockets and no
//! environment beyond what the function's config grants. Every preview1
//! function exists with its standard signature, so toolchains' modules link;
//! the ones outside the subset answer what a host without that resource
//! answers: `EBADF` for a descriptor other than stdio (there is none),
//! an errno fitting a pipe for stdio (`ESPIPE`, `ENOTSOCK`, `ENOTDIR`…),
//! `ENOTCAPABLE` otherwise. The errno values are preview1's
//! (`typenames.witx`); `tests/wasi_testsuite.rs` runs the official suite.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmi::{Caller, FuncType, Linker, Val, ValType};

use crate::error::CallError;
use crate::runtime::imports::host_module::{HostModule, signature_is};
use crate::runtime::state::guest_memory::{self, get_mut, get_u32, put, range};
use crate::runtime::state::{self, Cost, HostState, Stdio, cost};

/// The WASI import module's name.
pub const NAME: &str = "wasi_snapshot_preview1";

/// The module's row in [`HOST_MODULES`](super::HOST_MODULES).
pub const MODULE: HostModule = HostModule {
    name: NAME,
    check: check_import,
    define: add_to_linker,
};

/// WASI errno values used here (`typenames.witx` of preview1).
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
    pub const IO: i32 = 29;
    pub const NOTDIR: i32 = 54;
    pub const NOTSOCK: i32 = 57;
    pub const SPIPE: i32 = 70;
    pub const NOTCAPABLE: i32 = 76;
}

/// Most iovecs one `fd_read`/`fd_write` may pass (POSIX `IOV_MAX`).
const MAX_IOVS: u32 = 1024;
/// A partial stderr line is logged once it reaches this many bytes.
const MAX_STDERR_LINE: usize = 1024;
/// Most bytes one `fd_read`, `fd_write` or `random_get` call processes, so
/// that no single host call holds the thread for long: a host call cannot
/// yield to other requests as guest code does between fuel slices, and
/// 1 MiB is ~3 ms of `random_get` on the development machine. `fd_read`
/// and `fd_write` take at most this much and return the count (a short
/// read or write, which callers repeat); `random_get` of a larger buffer
/// fails with `EINVAL` (28), as `getentropy` does past its maximum
/// (README, "WASI": a deliberate difference from preview1, which sets no
/// maximum).
pub const MAX_IO_PER_CALL: usize = 1 << 20;
/// Most stderr lines one `fd_write` call writes to the log (a line is a
/// write to the server's stderr); the rest is left for the next call (a
/// short write).
pub const MAX_LINES_PER_WRITE: usize = 16;

/// One preview1 function: its name, its core signature, and what it does
/// here.
struct Function {
    name: &'static str,
    params: &'static [ValType],
    results: &'static [ValType],
    body: Body,
}

/// What a preview1 function does here.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Body {
    /// Implemented in [`add_to_linker`].
    Provided,
    /// Nothing it could act on exists: `ENOTCAPABLE`.
    NotCapable,
    /// Its parameter `fd` (an index) is a descriptor, and the function
    /// needs one that is not stdio: `EBADF` for any descriptor but 0–2
    /// (there are no others: no files, no preopened directories, no
    /// sockets), `stdio` (the errno a host gives for a pipe or terminal)
    /// for 0–2.
    OnFd { fd: usize, stdio: i32 },
}

/// Every preview1 function, the one list of them: the linker defines each
/// (the implemented ones in [`add_to_linker`], each a `func_wrap` whose
/// closure has this signature; the rest from their [`Body`]), and
/// [`check_import`] checks imports against it. All return one `i32` errno
/// except `proc_exit`, which returns nothing.
const FUNCTIONS: &[Function] = {
    use ValType::{I32 as I, I64 as L};
    const ERRNO: &[ValType] = &[I];
    const fn f(name: &'static str, params: &'static [ValType], body: Body) -> Function {
        Function {
            name,
            params,
            results: ERRNO,
            body,
        }
    }
    const fn provided(name: &'static str, params: &'static [ValType]) -> Function {
        f(name, params, Body::Provided)
    }
    /// A function on descriptor `params[0]`: stdio answers `stdio`.
    const fn on_fd(name: &'static str, params: &'static [ValType], stdio: i32) -> Function {
        f(name, params, Body::OnFd { fd: 0, stdio })
    }
    use errno::{NOTCAPABLE, NOTDIR, NOTSOCK, SPIPE};
    &[
        provided("args_get", &[I, I]),
        provided("args_sizes_get", &[I, I]),
        provided("environ_get", &[I, I]),
        provided("environ_sizes_get", &[I, I]),
        provided("clock_res_get", &[I, I]),
        provided("clock_time_get", &[I, L, I]),
        on_fd("fd_advise", &[I, L, L, I], SPIPE),
        on_fd("fd_allocate", &[I, L, L], SPIPE),
        provided("fd_close", &[I]),
        on_fd("fd_datasync", &[I], errno::INVAL),
        provided("fd_fdstat_get", &[I, I]),
        on_fd("fd_fdstat_set_flags", &[I, I], NOTCAPABLE),
        on_fd("fd_fdstat_set_rights", &[I, L, L], NOTCAPABLE),
        on_fd("fd_filestat_get", &[I, I], NOTCAPABLE),
        on_fd("fd_filestat_set_size", &[I, L], errno::INVAL),
        on_fd("fd_filestat_set_times", &[I, L, L, I], NOTCAPABLE),
        on_fd("fd_pread", &[I, I, I, L, I], SPIPE),
        provided("fd_prestat_get", &[I, I]),
        provided("fd_prestat_dir_name", &[I, I, I]),
        on_fd("fd_pwrite", &[I, I, I, L, I], SPIPE),
        provided("fd_read", &[I, I, I, I]),
        on_fd("fd_readdir", &[I, I, I, L, I], NOTDIR),
        on_fd("fd_renumber", &[I, I], NOTCAPABLE),
        provided("fd_seek", &[I, L, I, I]),
        on_fd("fd_sync", &[I], errno::INVAL),
        on_fd("fd_tell", &[I, I], SPIPE),
        provided("fd_write", &[I, I, I, I]),
        on_fd("path_create_directory", &[I, I, I], NOTDIR),
        on_fd("path_filestat_get", &[I, I, I, I, I], NOTDIR),
        on_fd("path_filestat_set_times", &[I, I, I, I, L, L, I], NOTDIR),
        on_fd("path_link", &[I, I, I, I, I, I, I], NOTDIR),
        on_fd("path_open", &[I, I, I, I, I, L, L, I, I], NOTDIR),
        on_fd("path_readlink", &[I, I, I, I, I, I], NOTDIR),
        on_fd("path_remove_directory", &[I, I, I], NOTDIR),
        on_fd("path_rename", &[I, I, I, I, I, I], NOTDIR),
        // (old_path, old_path_len, fd, new_path, new_path_len)
        f(
            "path_symlink",
            &[I, I, I, I, I],
            Body::OnFd {
                fd: 2,
                stdio: NOTDIR,
            },
        ),
        on_fd("path_unlink_file", &[I, I, I], NOTDIR),
        provided("poll_oneoff", &[I, I, I, I]),
        Function {
            name: "proc_exit",
            params: &[I],
            results: &[],
            body: Body::Provided,
        },
        f("proc_raise", &[I], Body::NotCapable),
        provided("sched_yield", &[]),
        provided("random_get", &[I, I]),
        on_fd("sock_accept", &[I, I, I], NOTSOCK),
        on_fd("sock_recv", &[I, I, I, I, I, I], NOTSOCK),
        on_fd("sock_send", &[I, I, I, I, I], NOTSOCK),
        on_fd("sock_shutdown", &[I, I], NOTSOCK),
    ]
};

/// Whether a `wasi_snapshot_preview1` import can be provided.
fn check_import(name: &str, ty: &FuncType) -> Result<(), &'static str> {
    let Some(f) = FUNCTIONS.iter().find(|f| f.name == name) else {
        return Err("not a WASI preview1 function");
    };
    if !signature_is(ty, f.params, f.results) {
        return Err("signature differs from the one WASI preview1 defines");
    }
    Ok(())
}

/// The `(offset, len)` buffers of an iovec array, bounds-checked.
fn iovecs(mem: &[u8], iovs: i32, count: i32) -> Option<Vec<std::ops::Range<usize>>> {
    let count = u32::try_from(count).ok().filter(|&c| c <= MAX_IOVS)?;
    (0..count)
        .map(|i| {
            let at = (iovs as u32).checked_add(i * 8)?;
            let (ptr, len) = (get_u32(mem, at)?, get_u32(mem, at.checked_add(4)?)?);
            let r = range(ptr, len as usize)?;
            (r.end <= mem.len()).then_some(r)
        })
        .collect()
}

/// Writes a list of NUL-terminated strings and the pointers to them
/// (`args_get` and `environ_get`).
fn put_strings(mem: &mut [u8], ptrs: i32, buf: i32, items: &[Vec<u8>]) -> i32 {
    let mut at = buf.cast_unsigned();
    for (i, item) in items.iter().enumerate() {
        let slot = (ptrs as u32).wrapping_add(i as u32 * 4);
        let ok = put(mem, slot, &at.to_le_bytes())
            .and_then(|_| put(mem, at, item))
            .and_then(|_| put(mem, (at as usize + item.len()) as u32, &[0]));
        if ok.is_none() {
            return errno::FAULT;
        }
        at += item.len() as u32 + 1;
    }
    errno::SUCCESS
}

fn put_sizes(mem: &mut [u8], count_ptr: i32, size_ptr: i32, items: &[Vec<u8>]) -> i32 {
    let size: usize = items.iter().map(|i| i.len() + 1).sum();
    match put(
        mem,
        count_ptr.cast_unsigned(),
        &(items.len() as u32).to_le_bytes(),
    )
    .and_then(|_| put(mem, size_ptr.cast_unsigned(), &(size as u32).to_le_bytes()))
    {
        Some(()) => errno::SUCCESS,
        None => errno::FAULT,
    }
}

type Ctx<'a> = Caller<'a, HostState>;

/// Runs `f` with the memory and WASI state, or returns `FAULT`/`BADF`.
fn with_wasi(
    caller: &mut Ctx<'_>,
    f: impl FnOnce(&mut [u8], &mut Stdio, &mut state::GuestLog) -> i32,
) -> i32 {
    let Some((mem, state)) = guest_memory::of(caller) else {
        return errno::FAULT;
    };
    let HostState { stdio, log, .. } = state;
    match stdio.as_mut() {
        Some(wasi) => f(mem, wasi, log),
        // A wasi module called on the native path has no stdio.
        None => errno::BADF,
    }
}

/// The time of clock `id` in ns: realtime (0) since the Unix epoch,
/// monotonic (1) and the process and thread CPU-time clocks (2, 3,
/// approximated by it) since the server first read it; `None` for any
/// other id (`EINVAL`).
fn clock_now(id: i32) -> Option<u64> {
    match id {
        0 => Some(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        ),
        1..=3 => Some(monotonic_nanos()),
        _ => None,
    }
}

fn monotonic_nanos() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Charges `cost` for a call that processes no guest-sized data, runs `f`
/// and ends the call (see [`state::finish`]).
fn small(caller: &mut Ctx<'_>, cost: Cost, f: impl FnOnce(&mut Ctx<'_>) -> i32) -> HostResult {
    state::charge(caller, cost, 0)?;
    let code = f(caller);
    state::finish(caller, code)
}

type HostResult = Result<i32, wasmi::Error>;

/// Defines every preview1 function in the linker. Each charges its
/// [`state::cost`] before or right after its work, which is bounded per call
/// ([`MAX_IO_PER_CALL`], [`MAX_LINES_PER_WRITE`]).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    linker.func_wrap(
        NAME,
        "args_get",
        |mut c: Ctx<'_>, argv: i32, buf: i32| -> HostResult {
            let mut work = 0;
            let code = with_wasi(&mut c, |mem, w, _| {
                work = strings_bytes(&w.args);
                put_strings(mem, argv, buf, &w.args)
            });
            state::charge(&mut c, cost::ARGS, work)?;
            state::finish(&mut c, code)
        },
    )?;
    linker.func_wrap(
        NAME,
        "args_sizes_get",
        |mut c: Ctx<'_>, count: i32, size: i32| -> HostResult {
            let mut work = 0;
            let code = with_wasi(&mut c, |mem, w, _| {
                work = 4 * w.args.len() as u64;
                put_sizes(mem, count, size, &w.args)
            });
            state::charge(&mut c, cost::ARGS, work)?;
            state::finish(&mut c, code)
        },
    )?;
    linker.func_wrap(
        NAME,
        "environ_get",
        |mut c: Ctx<'_>, env: i32, buf: i32| -> HostResult {
            let mut work = 0;
            let code = with_wasi(&mut c, |mem, w, _| {
                work = strings_bytes(&w.env);
                put_strings(mem, env, buf, &w.env)
            });
            state::charge(&mut c, cost::ARGS, work)?;
            state::finish(&mut c, code)
        },
    )?;
    linker.func_wrap(
        NAME,
        "environ_sizes_get",
        |mut c: Ctx<'_>, count: i32, size: i32| -> HostResult {
            let mut work = 0;
            let code = with_wasi(&mut c, |mem, w, _| {
                work = 4 * w.env.len() as u64;
                put_sizes(mem, count, size, &w.env)
            });
            state::charge(&mut c, cost::ARGS, work)?;
            state::finish(&mut c, code)
        },
    )?;
    linker.func_wrap(
        NAME,
        "clock_res_get",
        |mut c: Ctx<'_>, id: i32, out: i32| -> HostResult {
            small(&mut c, cost::SMALL, |c| {
                with_wasi(c, |mem, _, _| match id {
                    0..=3 => put(mem, out.cast_unsigned(), &1000u64.to_le_bytes())
                        .map_or(errno::FAULT, |_| errno::SUCCESS),
                    _ => errno::INVAL,
                })
            })
        },
    )?;
    linker.func_wrap(
        NAME,
        "clock_time_get",
        |mut c: Ctx<'_>, id: i32, _precision: i64, out: i32| -> HostResult {
            small(&mut c, cost::CLOCK, |c| {
                let tape = c.data().tape.clone();
                with_wasi(c, |mem, _, _| {
                    // Recorded for a crash dump, or fed back in a replay.
                    let nanos = match tape {
                        None => clock_now(id),
                        Some(tape) => tape.borrow_mut().clock(id, clock_now),
                    };
                    let Some(nanos) = nanos else {
                        return errno::INVAL;
                    };
                    put(mem, out.cast_unsigned(), &nanos.to_le_bytes())
                        .map_or(errno::FAULT, |_| errno::SUCCESS)
                })
            })
        },
    )?;
    linker.func_wrap(
        NAME,
        "random_get",
        |mut c: Ctx<'_>, buf: i32, len: i32| -> HostResult {
            let bytes = len.cast_unsigned();
            let Some(len) = usize::try_from(bytes)
                .ok()
                .filter(|&n| n <= MAX_IO_PER_CALL)
            else {
                return small(&mut c, cost::RANDOM_GET, |_| errno::INVAL);
            };
            // Paid before the work: the one host call that takes
            // milliseconds is refused when the budget cannot cover it.
            state::charge(&mut c, cost::RANDOM_GET, u64::from(bytes))?;
            let tape = c.data().tape.clone();
            let code = with_wasi(&mut c, |mem, _, _| {
                let Some(target) = get_mut(mem, buf.cast_unsigned(), len) else {
                    return errno::FAULT;
                };
                let live = |target: &mut [u8]| getrandom::fill(target).is_ok();
                // Recorded for a crash dump, or fed back in a replay.
                let filled = match tape {
                    None => live(target),
                    Some(tape) => tape.borrow_mut().random(target, live),
                };
                if filled { errno::SUCCESS } else { errno::IO }
            });
            state::finish(&mut c, code)
        },
    )?;
    linker.func_wrap(
        NAME,
        "fd_read",
        |mut c: Ctx<'_>, fd: i32, iovs: i32, count: i32, nread: i32| -> HostResult {
            let mut work = 0;
            let code = with_wasi(&mut c, |mem, w, _| {
                if fd != 0 {
                    return errno::BADF;
                }
                let Some(bufs) = iovecs(mem, iovs, count) else {
                    return errno::FAULT;
                };
                let mut total = 0usize;
                for buf in &bufs {
                    let rest = w.stdin.get(w.stdin_pos..).unwrap_or_default();
                    let n = rest.len().min(buf.len()).min(MAX_IO_PER_CALL - total);
                    mem[buf.start..buf.start + n].copy_from_slice(&rest[..n]);
                    w.stdin_pos += n;
                    total += n;
                }
                work = iovec_work(bufs.len(), total);
                put(mem, nread.cast_unsigned(), &(total as u32).to_le_bytes())
                    .map_or(errno::FAULT, |_| errno::SUCCESS)
            });
            state::charge(&mut c, cost::FD_READ, work)?;
            state::finish(&mut c, code)
        },
    )?;
    linker.func_wrap(
        NAME,
        "fd_write",
        |mut c: Ctx<'_>, fd: i32, iovs: i32, count: i32, nwritten: i32| -> HostResult {
            let mut overflow = None;
            let mut work = 0;
            let mut lines_fuel = 0u64;
            let code = with_wasi(&mut c, |mem, w, log| {
                // The descriptor first, as hosts with a descriptor table
                // do: a bad one is `EBADF` whatever the iovecs are.
                if !matches!(fd, 1 | 2) {
                    return errno::BADF;
                }
                let Some(bufs) = iovecs(mem, iovs, count) else {
                    return errno::FAULT;
                };
                // Bytes taken; fewer than offered when a per-call bound is
                // reached (a short write, which callers repeat).
                let mut total = 0usize;
                let mut lines = 0usize;
                'bufs: for buf in &bufs {
                    let take = buf.len().min(MAX_IO_PER_CALL - total);
                    let bytes = &mem[buf.start..buf.start + take];
                    if fd == 1 {
                        if (w.stdout.len() + bytes.len()) as u64 > w.max_stdout {
                            overflow = Some(w.max_stdout);
                            return errno::IO;
                        }
                        w.stdout.extend_from_slice(bytes);
                        total += take;
                    } else {
                        // Only what the log can still take is looked at;
                        // the rest is counted as written (and paid for in
                        // fuel) but never scanned.
                        let mut room = log.accepts(log::Level::Info);
                        for (i, &b) in bytes.iter().enumerate() {
                            if room == 0 {
                                log.note_dropped();
                                total += take - i;
                                break;
                            }
                            if b == b'\n' || w.stderr.len() >= MAX_STDERR_LINE {
                                let line = std::mem::take(&mut w.stderr);
                                lines_fuel =
                                    lines_fuel.saturating_add(log.line(log::Level::Info, &line));
                                lines += 1;
                                room = log.accepts(log::Level::Info);
                            }
                            if b != b'\n' {
                                w.stderr.push(b);
                            }
                            total += 1;
                            if lines == MAX_LINES_PER_WRITE {
                                break 'bufs;
                            }
                        }
                    }
                    if total == MAX_IO_PER_CALL || take < buf.len() {
                        break;
                    }
                }
                work = iovec_work(bufs.len(), total);
                put(mem, nwritten.cast_unsigned(), &(total as u32).to_le_bytes())
                    .map_or(errno::FAULT, |_| errno::SUCCESS)
            });
            state::charge(&mut c, cost::FD_WRITE, work)?;
            state::charge_fuel(&mut c, lines_fuel)?;
            if let Some(max) = overflow {
                return Err(wasmi::Error::host(CallError::BadResponse(format!(
                    "stdout exceeds max_response ({max} bytes)"
                ))));
            }
            state::finish(&mut c, code)
        },
    )?;
    linker.func_wrap(
        NAME,
        "fd_fdstat_get",
        |mut c: Ctx<'_>, fd: i32, out: i32| -> HostResult {
            small(&mut c, cost::SMALL, |c| {
                with_wasi(c, |mem, _, _| {
                    const FD_READ: u64 = 1 << 1;
                    const FD_WRITE: u64 = 1 << 6;
                    let rights = match fd {
                        0 => FD_READ,
                        1 | 2 => FD_WRITE,
                        _ => return errno::BADF,
                    };
                    // struct fdstat { u8 filetype; u16 flags; u64 rights_base; u64 rights_inheriting }
                    let mut stat = [0u8; 24];
                    stat[0] = 2; // character device
                    stat[8..16].copy_from_slice(&rights.to_le_bytes());
                    put(mem, out.cast_unsigned(), &stat).map_or(errno::FAULT, |_| errno::SUCCESS)
                })
            })
        },
    )?;
    // No preopened directories: every descriptor after stdio is "bad".
    linker.func_wrap(
        NAME,
        "fd_prestat_get",
        |mut c: Ctx<'_>, _fd: i32, _out: i32| -> HostResult {
            small(&mut c, cost::SMALL, |_| errno::BADF)
        },
    )?;
    linker.func_wrap(
        NAME,
        "fd_prestat_dir_name",
        |mut c: Ctx<'_>, _fd: i32, _p: i32, _l: i32| -> HostResult {
            small(&mut c, cost::SMALL, |_| errno::BADF)
        },
    )?;
    linker.func_wrap(NAME, "fd_close", |mut c: Ctx<'_>, fd: i32| -> HostResult {
        small(&mut c, cost::SMALL, |_| match fd {
            0..=2 => errno::SUCCESS,
            _ => errno::BADF,
        })
    })?;
    linker.func_wrap(
        NAME,
        "fd_seek",
        |mut c: Ctx<'_>, fd: i32, _off: i64, _whence: i32, _out: i32| -> HostResult {
            small(&mut c, cost::SMALL, |_| match fd {
                0..=2 => errno::SPIPE,
                _ => errno::BADF,
            })
        },
    )?;
    linker.func_wrap(
        NAME,
        "proc_exit",
        |mut c: Ctx<'_>, code: i32| -> Result<(), wasmi::Error> {
            state::charge(&mut c, cost::PROC_EXIT, 0)?;
            Err(wasmi::Error::i32_exit(code))
        },
    )?;
    linker.func_wrap(
        NAME,
        "poll_oneoff",
        |mut c: Ctx<'_>, subs: i32, events: i32, n: i32, nevents: i32| -> HostResult {
            // Paid before the work, as if every subscription were a clock
            // (read once each) and had its event written: a poll the
            // budget cannot cover ends the request before it runs, and
            // `MAX_SUBSCRIPTIONS` bounds what one call does.
            let count = u64::from(n.cast_unsigned()).min(MAX_SUBSCRIPTIONS as u64);
            let bytes = count.saturating_mul(SUBSCRIPTION + EVENT);
            state::charge(&mut c, cost::POLL_ONEOFF, bytes)?;
            state::charge_fuel(&mut c, cost::CLOCK.fuel(0).saturating_mul(count))?;
            let code = with_wasi(&mut c, |mem, w, _| {
                poll_oneoff(mem, w, [subs, events, n, nevents])
            });
            state::finish(&mut c, code)
        },
    )?;
    linker.func_wrap(NAME, "sched_yield", |mut c: Ctx<'_>| -> HostResult {
        small(&mut c, cost::SMALL, |_| errno::SUCCESS)
    })?;
    for f in FUNCTIONS {
        let body = f.body;
        if body == Body::Provided {
            continue;
        }
        let ty = FuncType::new(f.params.iter().copied(), f.results.iter().copied());
        linker.func_new(
            NAME,
            f.name,
            ty,
            move |mut c, params: &[Val], results: &mut [Val]| {
                state::charge(&mut c, cost::STUB, 0)?;
                let code = stub_errno(body, params);
                if let Some(r) = results.first_mut() {
                    *r = Val::I32(code);
                }
                state::finish(&mut c, code).map(drop)
            },
        )?;
    }
    Ok(())
}

/// Bytes of a preview1 `subscription` and of an `event`.
const SUBSCRIPTION: u64 = 48;
const EVENT: u64 = 32;

/// Most subscriptions one `poll_oneoff` takes: 4,096, ~330 KiB of
/// subscriptions and events, a fraction of a millisecond of host work. A
/// host call cannot yield to other requests mid-way as guest code does
/// between fuel slices, so one call is bounded; more is `EINVAL` (28), as
/// no subscription (preview1 sets no maximum; Go's and wasi-libc's polls
/// hold a few).
const MAX_SUBSCRIPTIONS: usize = 4096;

/// `poll_oneoff(subscriptions, events, n, nevents)`. Nothing here ever has
/// to be waited for: stdin is all in memory (readable, or at its end),
/// stdout and stderr always take bytes, so every descriptor subscription is
/// ready at once (`EBADF` in its event for any other descriptor or
/// direction), and a clock fires when it is already due (a relative timeout
/// of 0, an absolute time passed). A poll that would have to wait for a
/// clock (a sleep) answers `ENOTCAPABLE`: a request does not sleep, its
/// deadline is an instruction budget. At most [`MAX_SUBSCRIPTIONS`].
fn poll_oneoff(mem: &mut [u8], w: &Stdio, [subs, events, n, nevents]: [i32; 4]) -> i32 {
    const CLOCK: u8 = 0;
    const FD_READ: u8 = 1;
    const FD_WRITE: u8 = 2;
    const ABSTIME: u16 = 1;
    const HANGUP: u16 = 1;
    let Ok(n) = usize::try_from(n.cast_unsigned()) else {
        return errno::FAULT;
    };
    if n == 0 {
        return errno::INVAL;
    }
    // The subscriptions, and room for as many events (preview1's
    // contract), both inside memory: events are then written in place,
    // without a host buffer as large as the guest's.
    let span = |ptr: i32, each: u64| {
        n.checked_mul(each as usize)
            .and_then(|size| range(ptr.cast_unsigned(), size))
            .filter(|r| r.end <= mem.len())
            .map(|r| r.start)
    };
    let (Some(subs), Some(events)) = (span(subs, SUBSCRIPTION), span(events, EVENT)) else {
        return errno::FAULT;
    };
    if n > MAX_SUBSCRIPTIONS {
        return errno::INVAL;
    }
    let (mut ready_count, mut waits) = (0usize, false);
    for i in 0..n {
        let mut sub = [0u8; SUBSCRIPTION as usize];
        // In bounds: checked above for all `n`.
        let at = subs + i * SUBSCRIPTION as usize;
        sub.copy_from_slice(&mem[at..at + SUBSCRIPTION as usize]);
        let u64_at = |at: usize| u64::from_le_bytes(sub[at..at + 8].try_into().unwrap_or_default());
        let u32_at = |at: usize| u32::from_le_bytes(sub[at..at + 4].try_into().unwrap_or_default());
        let (tag, fd) = (sub[8], u32_at(16));
        // (error, nbytes, flags) of a ready subscription
        let ready = match tag {
            CLOCK => {
                let id = u32_at(16).cast_signed();
                let (timeout, flags) = (u64_at(24), u16::from_le_bytes([sub[40], sub[41]]));
                match clock_now(id) {
                    None => Some((errno::INVAL, 0, 0)),
                    Some(now) if flags & ABSTIME != 0 && now >= timeout => {
                        Some((errno::SUCCESS, 0, 0))
                    }
                    Some(_) if flags & ABSTIME == 0 && timeout == 0 => Some((errno::SUCCESS, 0, 0)),
                    Some(_) => {
                        waits = true;
                        None
                    }
                }
            }
            FD_READ if fd == 0 => {
                let left = w.stdin.len().saturating_sub(w.stdin_pos) as u64;
                Some((errno::SUCCESS, left, if left == 0 { HANGUP } else { 0 }))
            }
            FD_WRITE if fd == 1 => {
                let room = w.max_stdout.saturating_sub(w.stdout.len() as u64);
                Some((errno::SUCCESS, room.min(MAX_IO_PER_CALL as u64), 0))
            }
            FD_WRITE if fd == 2 => Some((errno::SUCCESS, MAX_IO_PER_CALL as u64, 0)),
            FD_READ | FD_WRITE => Some((errno::BADF, 0, 0)),
            _ => return errno::INVAL,
        };
        if let Some((error, nbytes, flags)) = ready {
            // struct event { u64 userdata; u16 error; u8 type; (u64 nbytes; u16 flags) at 16 }
            let at = events + ready_count * EVENT as usize;
            let event = &mut mem[at..at + EVENT as usize];
            event.fill(0);
            event[..8].copy_from_slice(&sub[..8]);
            event[8..10].copy_from_slice(&(error as u16).to_le_bytes());
            event[10] = tag;
            if tag != CLOCK {
                event[16..24].copy_from_slice(&nbytes.to_le_bytes());
                event[24..26].copy_from_slice(&flags.to_le_bytes());
            }
            ready_count += 1;
        }
    }
    if ready_count == 0 && waits {
        return errno::NOTCAPABLE;
    }
    put(
        mem,
        nevents.cast_unsigned(),
        &(ready_count as u32).to_le_bytes(),
    )
    .map_or(errno::FAULT, |_| errno::SUCCESS)
}

/// What a function outside the subset answers, given its parameters.
fn stub_errno(body: Body, params: &[Val]) -> i32 {
    match body {
        Body::OnFd { fd, stdio } => match params.get(fd) {
            Some(Val::I32(0..=2)) => stdio,
            _ => errno::BADF,
        },
        Body::Provided | Body::NotCapable => errno::NOTCAPABLE,
    }
}

/// Bytes written by `args_get`/`environ_get`: the strings, their NULs and
/// the pointers to them.
fn strings_bytes(items: &[Vec<u8>]) -> u64 {
    items.iter().map(|i| i.len() as u64 + 5).sum()
}

/// The work of an `fd_read`/`fd_write` in bytes of its [`Cost`].
fn iovec_work(iovecs: usize, bytes: usize) -> u64 {
    (iovecs as u64)
        .saturating_mul(state::IOVEC_BYTES)
        .saturating_add(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `_start` of a module with `imports` (WAT import fields) and a
    /// 3 MiB memory, `body` as `_start`'s code, stdin `{}`; returns the
    /// code `body` passes to `$exit` (`proc_exit`, imported always).
    fn exit_code(imports: &str, body: &str) -> i32 {
        let wasm = wat::parse_str(format!(
            r#"(module
  (import "{NAME}" "proc_exit" (func $exit (param i32)))
  {imports}
  (memory (export "memory") 48)
  (func (export "_start") {body}))"#
        ))
        .unwrap();
        let runtime = crate::runtime::Runtime::new();
        let module = wasmi::Module::new(runtime.engine(), &wasm).unwrap();
        let mut state = HostState::new("t".into(), "t".into(), 4 << 20, 0);
        state.stdio = Some(Stdio::new(b"{}".to_vec(), 1 << 10, vec![], vec![]));
        let mut store = wasmi::Store::new(runtime.engine(), state);
        store.set_fuel(1 << 40).unwrap();
        let instance = runtime
            .linker()
            .instantiate_and_start(&mut store, &module)
            .unwrap();
        let start = instance.get_typed_func::<(), ()>(&store, "_start").unwrap();
        let error = start.call(&mut store, ()).unwrap_err();
        error.i32_exit_status().unwrap_or_else(|| panic!("{error}"))
    }

    fn import(name: &str) -> String {
        let f = FUNCTIONS.iter().find(|f| f.name == name).unwrap();
        let types = |types: &[ValType]| {
            types
                .iter()
                .map(|t| if *t == ValType::I64 { " i64" } else { " i32" })
                .collect::<String>()
        };
        format!(
            "(import \"{NAME}\" \"{name}\" (func ${name} (param{}) (result{})))",
            types(f.params),
            types(f.results)
        )
    }

    #[test]
    fn fd_write_to_a_bad_descriptor_is_ebadf_whatever_the_iovecs() {
        // An iovec array outside memory: the descriptor is checked first.
        let body = "(call $exit (call $fd_write (i32.const -31337) (i32.const -16) (i32.const 4) (i32.const 0)))";
        assert_eq!(exit_code(&import("fd_write"), body), errno::BADF);
        let body =
            "(call $exit (call $fd_write (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0)))";
        assert_eq!(exit_code(&import("fd_write"), body), errno::BADF);
    }

    #[test]
    fn descriptor_functions_are_ebadf_beyond_stdio_and_say_what_stdio_is() {
        let cases: &[(&str, &str, i32)] = &[
            ("sock_shutdown", "(i32.const 3) (i32.const 0)", errno::BADF),
            (
                "sock_shutdown",
                "(i32.const 1) (i32.const 0)",
                errno::NOTSOCK,
            ),
            (
                "sock_accept",
                "(i32.const 0) (i32.const 0) (i32.const 0)",
                errno::NOTSOCK,
            ),
            (
                "sock_recv",
                "(i32.const 9) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)",
                errno::BADF,
            ),
            (
                "path_open",
                "(i32.const 3) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0)",
                errno::BADF,
            ),
            (
                "path_open",
                "(i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0)",
                errno::NOTDIR,
            ),
            // The descriptor is its third parameter.
            (
                "path_symlink",
                "(i32.const 0) (i32.const 0) (i32.const 3) (i32.const 0) (i32.const 0)",
                errno::BADF,
            ),
            (
                "path_symlink",
                "(i32.const 9) (i32.const 0) (i32.const 2) (i32.const 0) (i32.const 0)",
                errno::NOTDIR,
            ),
            ("fd_tell", "(i32.const 1) (i32.const 0)", errno::SPIPE),
            (
                "fd_pread",
                "(i32.const -1) (i32.const 0) (i32.const 0) (i64.const 0) (i32.const 0)",
                errno::BADF,
            ),
            (
                "fd_filestat_get",
                "(i32.const 2) (i32.const 0)",
                errno::NOTCAPABLE,
            ),
            ("proc_raise", "(i32.const 9)", errno::NOTCAPABLE),
        ];
        for (name, args, expected) in cases {
            let body = format!("(call $exit (call ${name} {args}))");
            assert_eq!(exit_code(&import(name), &body), *expected, "{name} {args}");
        }
    }

    #[test]
    fn the_four_preview1_clocks_answer_and_any_other_id_is_einval() {
        let imports = import("clock_res_get") + &import("clock_time_get");
        for id in 0..=3 {
            let body = format!(
                "(if (call $clock_res_get (i32.const {id}) (i32.const 0)) (then (call $exit (i32.const 1))))
                 (if (i64.eqz (i64.load (i32.const 0))) (then (call $exit (i32.const 2))))
                 (call $exit (call $clock_time_get (i32.const {id}) (i64.const 0) (i32.const 8)))"
            );
            assert_eq!(exit_code(&imports, &body), errno::SUCCESS, "clock {id}");
        }
        for id in [4, -1] {
            let body = format!("(call $exit (call $clock_res_get (i32.const {id}) (i32.const 0)))");
            assert_eq!(exit_code(&imports, &body), errno::INVAL, "clock {id}");
            let body = format!(
                "(call $exit (call $clock_time_get (i32.const {id}) (i64.const 0) (i32.const 0)))"
            );
            assert_eq!(exit_code(&imports, &body), errno::INVAL, "clock {id}");
        }
    }

    #[test]
    fn random_get_fills_up_to_the_per_call_cap_and_refuses_more() {
        // MAX_IO_PER_CALL bytes, then exit with its errno, or 99 if the
        // last 8 bytes are still zero.
        let body = format!(
            "(if (i32.ne (call $random_get (i32.const 65536) (i32.const {len})) (i32.const 0))
               (then (call $exit (i32.const 28))))
             (if (i64.eqz (i64.load (i32.const {last}))) (then (call $exit (i32.const 99))))
             (call $exit (i32.const 0))",
            len = MAX_IO_PER_CALL,
            last = 65536 + MAX_IO_PER_CALL - 8,
        );
        assert_eq!(exit_code(&import("random_get"), &body), 0);
        // One byte more is EINVAL, as getentropy past its maximum.
        let body = format!(
            "(call $exit (call $random_get (i32.const 0) (i32.const {})))",
            MAX_IO_PER_CALL + 1
        );
        assert_eq!(exit_code(&import("random_get"), &body), errno::INVAL);
        // A zero-length buffer at the end of memory is fine; past it, not.
        let body = "(call $exit (call $random_get (i32.const 3145728) (i32.const 0)))";
        assert_eq!(exit_code(&import("random_get"), body), errno::SUCCESS);
        let body = "(call $exit (call $random_get (i32.const 3145729) (i32.const 0)))";
        assert_eq!(exit_code(&import("random_get"), body), errno::FAULT);
    }

    /// `_start` body: `n` subscriptions at 0 (built by `subs`), events at
    /// 4096, the count at 8192; exits with the errno, or with
    /// `1000 + nevents` on success.
    fn poll(subs: &str, n: u32) -> i32 {
        let body = format!(
            "{subs}
             (local.set $e (call $poll_oneoff (i32.const 0) (i32.const 4096) (i32.const {n}) (i32.const 8192)))
             (if (local.get $e) (then (call $exit (local.get $e))))
             (call $exit (i32.add (i32.const 1000) (i32.load (i32.const 8192))))"
        );
        exit_code(&import("poll_oneoff"), &format!("(local $e i32) {body}"))
    }

    /// A subscription at index `i`: userdata `i + 1`, `tag`, then the
    /// clock id or descriptor, a timeout and flags.
    fn sub(i: u32, tag: u32, id_or_fd: u32, timeout: i64, flags: u32) -> String {
        let at = i * 48;
        format!(
            "(i64.store (i32.const {at}) (i64.const {user}))
             (i32.store8 (i32.const {tag_at}) (i32.const {tag}))
             (i32.store (i32.const {id_at}) (i32.const {id_or_fd}))
             (i64.store (i32.const {timeout_at}) (i64.const {timeout}))
             (i32.store16 (i32.const {flags_at}) (i32.const {flags}))",
            user = i + 1,
            tag_at = at + 8,
            id_at = at + 16,
            timeout_at = at + 24,
            flags_at = at + 40,
        )
    }

    #[test]
    fn poll_oneoff_takes_at_most_max_subscriptions_per_call() {
        // Zeroed subscriptions are due clocks: all of them fire.
        let n = u32::try_from(MAX_SUBSCRIPTIONS).unwrap();
        let body = format!(
            "(call $exit (call $poll_oneoff (i32.const 0) (i32.const 0) (i32.const {n}) (i32.const 262144)))"
        );
        assert_eq!(exit_code(&import("poll_oneoff"), &body), errno::SUCCESS);
        // One more (in memory) is refused before any subscription is read.
        let body = format!(
            "(call $exit (call $poll_oneoff (i32.const 0) (i32.const 0) (i32.const {}) (i32.const 262144)))",
            n + 1
        );
        assert_eq!(exit_code(&import("poll_oneoff"), &body), errno::INVAL);
    }

    #[test]
    fn poll_oneoff_answers_what_is_ready_and_never_waits() {
        // stdin readable, stdout and stderr writable, a 200 ms clock: the
        // three descriptors are ready, the clock is not.
        let subs = [sub(0, 1, 0, 0, 0), sub(1, 2, 1, 0, 0), sub(2, 2, 2, 0, 0)].concat()
            + &sub(3, 0, 1, 200_000_000, 0);
        assert_eq!(poll(&subs, 4), 1003);
        // A bad descriptor is reported in its event, not as the call's error.
        assert_eq!(poll(&sub(0, 1, 7, 0, 0), 1), 1001);
        // A due clock (relative 0, or an absolute time passed) fires.
        assert_eq!(poll(&sub(0, 0, 1, 0, 0), 1), 1001);
        assert_eq!(poll(&sub(0, 0, 0, 1, 1), 1), 1001);
        // Only a clock to wait for: no sleeping here.
        assert_eq!(poll(&sub(0, 0, 1, 1_000_000, 0), 1), errno::NOTCAPABLE);
        assert_eq!(poll("", 0), errno::INVAL);
        // Subscriptions or room for their events outside memory, however
        // many: EFAULT, without the work (or its fuel) of that many.
        let outside = |args: &str| {
            let body = format!("(call $exit (call $poll_oneoff {args}))");
            exit_code(&import("poll_oneoff"), &body)
        };
        let args = "(i32.const 0) (i32.const 3145712) (i32.const 1) (i32.const 8192)";
        assert_eq!(outside(args), errno::FAULT);
        let args = "(i32.const 0) (i32.const 4096) (i32.const -1) (i32.const 8192)";
        assert_eq!(outside(args), errno::FAULT);
        assert_eq!(poll(&sub(0, 9, 0, 0, 0), 1), errno::INVAL);
    }

    #[test]
    fn poll_oneoff_events_carry_userdata_type_error_and_bytes() {
        // stdin (2 bytes of `{}` unread) and a descriptor 5: check the
        // second event's userdata/error/type, and the first's nbytes.
        let subs = sub(0, 1, 0, 0, 0) + &sub(1, 2, 5, 0, 0);
        let body = format!(
            "(local $e i32) {subs}
             (local.set $e (call $poll_oneoff (i32.const 0) (i32.const 4096) (i32.const 2) (i32.const 8192)))
             (if (local.get $e) (then (call $exit (local.get $e))))
             (if (i64.ne (i64.load (i32.const 4112)) (i64.const 2)) (then (call $exit (i32.const 101))))
             (if (i64.ne (i64.load (i32.const 4128)) (i64.const 2)) (then (call $exit (i32.const 102))))
             (if (i32.ne (i32.load16_u (i32.const 4136)) (i32.const {badf})) (then (call $exit (i32.const 103))))
             (if (i32.ne (i32.load8_u (i32.const 4138)) (i32.const 2)) (then (call $exit (i32.const 104))))
             (call $exit (i32.const 0))",
            badf = errno::BADF,
        );
        assert_eq!(exit_code(&import("poll_oneoff"), &body), 0);
    }

    #[test]
    fn every_stub_has_a_standard_signature() {
        for f in FUNCTIONS {
            let ty = FuncType::new(f.params.iter().copied(), f.results.iter().copied());
            assert!(check_import(f.name, &ty).is_ok(), "{}", f.name);
        }
        let wrong = FuncType::new([ValType::I32], [ValType::I32]);
        assert!(check_import("fd_write", &wrong).is_err());
        assert!(check_import("not_wasi", &wrong).is_err());
        // The linker defines every function of the list with the list's
        // signature: a module importing all of them instantiates (an
        // implemented function missing its `func_wrap`, or whose closure
        // has another signature, would fail to link).
        let imports: String = FUNCTIONS.iter().map(|f| import(f.name)).collect();
        let wasm = wat::parse_str(format!("(module {imports})")).unwrap();
        let runtime = crate::runtime::Runtime::new();
        let module = wasmi::Module::new(runtime.engine(), &wasm).unwrap();
        let state = HostState::new("t".into(), "t".into(), 1 << 20, 0);
        let mut store = wasmi::Store::new(runtime.engine(), state);
        store.set_fuel(1).unwrap();
        assert!(
            runtime
                .linker()
                .instantiate_and_start(&mut store, &module)
                .is_ok()
        );
        assert_eq!(
            FUNCTIONS
                .iter()
                .filter(|f| f.body == Body::Provided)
                .count(),
            17
        );
    }
}

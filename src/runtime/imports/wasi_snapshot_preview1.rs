//! The `wasi_snapshot_preview1` import module: the WASI functions a
//! wasi-json guest calls.
//!
//! The WASI subset here is written for this runtime because it must be
//! capability-free: there are no preopened directories, no sockets and no
//! environment beyond what the function's config grants. Every preview1
//! function exists with its standard signature, so toolchains' modules link;
//! the ones outside the subset return `ENOTCAPABLE`.

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

/// WASI errno values used here.
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
    pub const IO: i32 = 29;
    pub const SPIPE: i32 = 70;
    pub const NOTCAPABLE: i32 = 76;
}

/// Most iovecs one `fd_read`/`fd_write` may pass (POSIX `IOV_MAX`).
const MAX_IOVS: u32 = 1024;
/// A partial stderr line is logged once it reaches this many bytes.
const MAX_STDERR_LINE: usize = 1024;
/// Most bytes one `fd_read`, `fd_write` or `random_get` call processes, so
/// that no single host call holds the thread for long: 1 MiB is ~3 ms of
/// `random_get` on the development machine. `fd_read` and `fd_write` take
/// at most this much and return the count (a short read or write, which
/// callers repeat); `random_get` of a larger buffer fails with `EINVAL`
/// (28), as `getentropy` does past its maximum.
pub const MAX_IO_PER_CALL: usize = 1 << 20;
/// Most stderr lines one `fd_write` call writes to the log (a line is a
/// write to the server's stderr); the rest is left for the next call (a
/// short write).
pub const MAX_LINES_PER_WRITE: usize = 16;

/// One preview1 function: its name, its core signature, and whether it is
/// implemented here (the others are stubs that return `ENOTCAPABLE`).
struct Function {
    name: &'static str,
    params: &'static [ValType],
    results: &'static [ValType],
    implemented: bool,
}

/// Every preview1 function, the one list of them: the linker defines each
/// (the implemented ones in [`add_to_linker`], each a `func_wrap` whose
/// closure has this signature; the rest as stubs), and [`check_import`]
/// checks imports against it. All return one `i32` errno except
/// `proc_exit`, which returns nothing.
const FUNCTIONS: &[Function] = {
    use ValType::{I32 as I, I64 as L};
    const ERRNO: &[ValType] = &[I];
    const fn provided(name: &'static str, params: &'static [ValType]) -> Function {
        Function {
            name,
            params,
            results: ERRNO,
            implemented: true,
        }
    }
    const fn stub(name: &'static str, params: &'static [ValType]) -> Function {
        Function {
            name,
            params,
            results: ERRNO,
            implemented: false,
        }
    }
    &[
        provided("args_get", &[I, I]),
        provided("args_sizes_get", &[I, I]),
        provided("environ_get", &[I, I]),
        provided("environ_sizes_get", &[I, I]),
        provided("clock_res_get", &[I, I]),
        provided("clock_time_get", &[I, L, I]),
        stub("fd_advise", &[I, L, L, I]),
        stub("fd_allocate", &[I, L, L]),
        provided("fd_close", &[I]),
        stub("fd_datasync", &[I]),
        provided("fd_fdstat_get", &[I, I]),
        stub("fd_fdstat_set_flags", &[I, I]),
        stub("fd_fdstat_set_rights", &[I, L, L]),
        stub("fd_filestat_get", &[I, I]),
        stub("fd_filestat_set_size", &[I, L]),
        stub("fd_filestat_set_times", &[I, L, L, I]),
        stub("fd_pread", &[I, I, I, L, I]),
        provided("fd_prestat_get", &[I, I]),
        provided("fd_prestat_dir_name", &[I, I, I]),
        stub("fd_pwrite", &[I, I, I, L, I]),
        provided("fd_read", &[I, I, I, I]),
        stub("fd_readdir", &[I, I, I, L, I]),
        stub("fd_renumber", &[I, I]),
        provided("fd_seek", &[I, L, I, I]),
        stub("fd_sync", &[I]),
        stub("fd_tell", &[I, I]),
        provided("fd_write", &[I, I, I, I]),
        stub("path_create_directory", &[I, I, I]),
        stub("path_filestat_get", &[I, I, I, I, I]),
        stub("path_filestat_set_times", &[I, I, I, I, L, L, I]),
        stub("path_link", &[I, I, I, I, I, I, I]),
        stub("path_open", &[I, I, I, I, I, L, L, I, I]),
        stub("path_readlink", &[I, I, I, I, I, I]),
        stub("path_remove_directory", &[I, I, I]),
        stub("path_rename", &[I, I, I, I, I, I]),
        stub("path_symlink", &[I, I, I, I, I]),
        stub("path_unlink_file", &[I, I, I]),
        stub("poll_oneoff", &[I, I, I, I]),
        Function {
            name: "proc_exit",
            params: &[I],
            results: &[],
            implemented: true,
        },
        stub("proc_raise", &[I]),
        provided("sched_yield", &[]),
        provided("random_get", &[I, I]),
        stub("sock_accept", &[I, I, I]),
        stub("sock_recv", &[I, I, I, I, I, I]),
        stub("sock_send", &[I, I, I, I, I]),
        stub("sock_shutdown", &[I, I]),
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
                with_wasi(c, |mem, _, _| {
                    let nanos = match id {
                        0 => SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
                        // Monotonic, and process/thread CPU time approximated by it.
                        1..=3 => monotonic_nanos(),
                        _ => return errno::INVAL,
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
            let len = len as u32 as usize;
            if len > MAX_IO_PER_CALL {
                return small(&mut c, cost::RANDOM_GET, |_| errno::INVAL);
            }
            // Paid before the work: the one host call that takes
            // milliseconds is refused when the budget cannot cover it.
            state::charge(&mut c, cost::RANDOM_GET, len as u64)?;
            let code = with_wasi(&mut c, |mem, _, _| {
                let Some(target) = get_mut(mem, buf.cast_unsigned(), len) else {
                    return errno::FAULT;
                };
                getrandom::fill(target).map_or(errno::IO, |_| errno::SUCCESS)
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
            state::charge(&mut c, cost::FD_WRITE, work)?;
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
                let Some(bufs) = iovecs(mem, iovs, count) else {
                    return errno::FAULT;
                };
                if !matches!(fd, 1 | 2) {
                    return errno::BADF;
                }
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
    linker.func_wrap(NAME, "sched_yield", |mut c: Ctx<'_>| -> HostResult {
        small(&mut c, cost::SMALL, |_| errno::SUCCESS)
    })?;
    for f in FUNCTIONS.iter().filter(|f| !f.implemented) {
        let ty = FuncType::new(f.params.iter().copied(), f.results.iter().copied());
        linker.func_new(NAME, f.name, ty, |mut c, _, results: &mut [Val]| {
            state::charge(&mut c, cost::STUB, 0)?;
            let code = errno::NOTCAPABLE;
            if let Some(r) = results.first_mut() {
                *r = Val::I32(code);
            }
            state::finish(&mut c, code).map(drop)
        })?;
    }
    Ok(())
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
        let types = |types: &[ValType]| {
            types
                .iter()
                .map(|t| if *t == ValType::I64 { " i64" } else { " i32" })
                .collect::<String>()
        };
        let imports: String = FUNCTIONS
            .iter()
            .map(|f| {
                format!(
                    "(import \"{NAME}\" \"{}\" (func (param{}) (result{})))",
                    f.name,
                    types(f.params),
                    types(f.results)
                )
            })
            .collect();
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
        assert_eq!(FUNCTIONS.iter().filter(|f| f.implemented).count(), 16);
    }
}

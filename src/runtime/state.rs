//! What a guest can reach on the host: the per-request [`HostState`] and
//! what host work costs in fuel ([`Cost`], [`charge`]). Nothing here touches files, sockets or the
//! environment; the only way out of the sandbox is the response and the log.

use std::cell::RefCell;
use std::rc::Rc;

use wasmi::{Caller, ResourceLimiter, Val};
use wasmi_core::LimiterError;

use super::exchange::Exchange;
use crate::error::CallError;
use crate::store::Txn;

/// Longest single guest log line kept; longer ones are cut.
pub(crate) const MAX_LOG_LINE: usize = 1024;

impl wasmi::errors::HostError for CallError {}

/// Everything one request's store holds besides the guest's own state.
#[derive(Debug)]
pub struct HostState {
    /// Enforces the `memory` limit.
    pub limiter: MemoryLimiter,
    /// Where guest log lines go.
    pub log: GuestLog,
    /// The guest's stdio, args and environment, when it runs as a command
    /// (the wasi-json ABI fills it in).
    pub stdio: Option<Stdio>,
    /// What host functions may charge beyond the store's current slice.
    pub fuel: HostFuel,
    /// The HTTP exchange, when the guest runs as http-wasm middleware
    /// (the ABI adapter fills it in).
    pub http: Option<Box<Exchange>>,
    /// The request's KV transaction, shared with the ABI that commits it
    /// after the call (`imports::kv`).
    pub kv: Rc<RefCell<KvSlot>>,
    /// The request's nondeterministic inputs, recorded for a crash dump or
    /// fed back by `wasmgate replay` ([`tape`](super::tape)); `None`, and
    /// nothing recorded, without `[dumps]`.
    pub tape: Option<super::tape::Shared>,
}

/// The request's KV transaction, or why there is none.
#[derive(Default)]
pub struct KvSlot {
    /// The transaction on the function's namespace.
    pub txn: Option<Txn>,
    /// Why there is no store, when it failed to open.
    pub unavailable: Option<String>,
    /// Whether a refusal was logged in this request already.
    pub warned: bool,
}

impl KvSlot {
    /// The slot of a request with `kv` as its transaction (`Err`: why
    /// there is none), to share with the ABI that commits it.
    pub fn shared(kv: Result<Txn, String>) -> Rc<RefCell<Self>> {
        let (txn, unavailable) = match kv {
            Ok(txn) => (Some(txn), None),
            Err(why) => (None, Some(why)),
        };
        Rc::new(RefCell::new(Self {
            txn,
            unavailable,
            warned: false,
        }))
    }
}

impl std::fmt::Debug for KvSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvSlot")
            .field("txn", &self.txn.is_some())
            .finish()
    }
}

impl HostState {
    /// Host state for one call of `function` with a memory limit in bytes.
    pub fn new(function: Rc<str>, trace_id: Rc<str>, memory: u64, max_log: u64) -> Self {
        Self {
            limiter: MemoryLimiter::new(memory),
            log: GuestLog {
                function,
                trace_id,
                budget: max_log,
                exhausted: false,
                level: None,
            },
            stdio: None,
            fuel: HostFuel::default(),
            kv: Rc::default(),
            http: None,
            tape: None,
        }
    }

    /// The state of a store at rest between requests (an instance pool's):
    /// no request, no log, no KV, a zero memory limit.
    pub fn idle() -> Self {
        Self::new(Rc::from(""), Rc::from(""), 0, 0)
    }

    /// Logs a last stderr line the guest did not end. It is written after
    /// the guest ran and is not charged (it is at most one line).
    pub fn flush_stderr(&mut self) {
        if let Some(stdio) = self.stdio.as_mut()
            && !stdio.stderr.is_empty()
        {
            let line = std::mem::take(&mut stdio.stderr);
            self.log.line(log::Level::Info, &line);
        }
    }
}

/// What a guest run as a command sees of the world: stdin to read, stdout
/// captured up to a bound, stderr split into log lines, its arguments and
/// environment. Plain data, ABI-neutral: the host functions of
/// [`imports`](super::imports) read and write it, the ABI that runs the
/// guest fills it in and reads stdout.
#[derive(Debug, Default)]
pub struct Stdio {
    pub(in crate::runtime) stdin: Vec<u8>,
    pub(in crate::runtime) stdin_pos: usize,
    pub(in crate::runtime) stdout: Vec<u8>,
    pub(in crate::runtime) max_stdout: u64,
    pub(in crate::runtime) stderr: Vec<u8>,
    pub(in crate::runtime) args: Vec<Vec<u8>>,
    pub(in crate::runtime) env: Vec<Vec<u8>>,
}

impl Stdio {
    /// `stdin` to read, at most `max_stdout` bytes of stdout, and the
    /// guest's `args` and `env` (`KEY=VALUE`).
    pub fn new(stdin: Vec<u8>, max_stdout: u64, args: Vec<Vec<u8>>, env: Vec<Vec<u8>>) -> Self {
        Self {
            stdin,
            max_stdout,
            args,
            env,
            ..Self::default()
        }
    }

    /// What the guest wrote to stdout.
    pub fn stdout(&self) -> &[u8] {
        &self.stdout
    }

    /// The most bytes stdout may hold (the function's `max_response`).
    pub fn max_stdout(&self) -> u64 {
        self.max_stdout
    }
}

/// Caps the linear memory (one per store), tables and instances of
/// one store, and remembers whether it ever said no, so that the trap that
/// follows is reported as `memory-limit` rather than a generic trap.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: usize,
    /// Bytes of the instance and its tables.
    used: usize,
    /// Bytes of the linear memory (one per store), as last allowed. Kept
    /// apart because wasmi may ask twice for one `memory.grow`: when the
    /// grow's fuel ends the slice after the limiter said yes, the
    /// instruction runs again on resume, with the memory not yet grown.
    /// Counting `desired` in place of this makes the second answer the
    /// same as the first (summing the two counted one grow twice: a
    /// module with an 8 MiB limit could not grow past 6.2 MiB).
    memory: usize,
    /// Whether a growth past the limit was refused.
    pub denied: bool,
}

impl MemoryLimiter {
    /// Table elements a guest may hold: function tables of real programs
    /// have a few thousand entries.
    const MAX_TABLE_ELEMENTS: usize = 100_000;

    fn new(limit: u64) -> Self {
        Self {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            used: 0,
            memory: 0,
            denied: false,
        }
    }

    /// Bytes a table element is counted as (see
    /// [`crate::limits::InstanceCost::TABLE_ELEMENT_BYTES`]).
    const TABLE_ELEMENT_BYTES: usize = crate::limits::InstanceCost::TABLE_ELEMENT_BYTES as usize;

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit as u64
    }

    /// What it counts now (instance and tables; memory), for a store that
    /// takes over this one's instance (see [`MemoryLimiter::restore`]).
    pub fn counted(&self) -> (usize, usize) {
        (self.used, self.memory)
    }

    /// Counts what `counted` gave, as if this store had made that
    /// instance; false, counting nothing, if it does not fit the limit.
    pub fn restore(&mut self, (used, memory): (usize, usize)) -> bool {
        if used.saturating_add(memory) > self.limit {
            return false;
        }
        self.used = used;
        self.memory = memory;
        true
    }

    /// Counts `bytes` the instance holds outside its memories and tables
    /// (globals, functions: see [`crate::limits::InstanceCost`]) against the
    /// limit. Returns whether they fit; if not, remembers the denial.
    pub fn reserve(&mut self, bytes: u64) -> bool {
        let total = usize::try_from(bytes)
            .ok()
            .and_then(|b| self.used.checked_add(b))
            .filter(|&total| total.saturating_add(self.memory) <= self.limit);
        match total {
            Some(total) => self.used = total,
            None => self.denied = true,
        }
        total.is_some()
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        let total = self.used.saturating_add(desired);
        if total > self.limit {
            self.denied = true;
            // A trap, not a -1 from memory.grow: a guest that ignores the
            // failure would otherwise spin until its deadline.
            return Err(LimiterError::ResourceLimiterDeniedAllocation);
        }
        self.memory = desired;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        let bytes = |elements: usize| elements.saturating_mul(Self::TABLE_ELEMENT_BYTES);
        let total = (self.used - bytes(current).min(self.used)).saturating_add(bytes(desired));
        if desired > Self::MAX_TABLE_ELEMENTS || total.saturating_add(self.memory) > self.limit {
            self.denied = true;
            return Err(LimiterError::ResourceLimiterDeniedAllocation);
        }
        self.used = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}

/// Guest log output of one request: tagged, escaped and capped.
#[derive(Debug)]
pub struct GuestLog {
    function: Rc<str>,
    trace_id: Rc<str>,
    budget: u64,
    exhausted: bool,
    /// The level lines are written (and charged) at, when it is not the
    /// logger's: a replay charges them as the recorded request did.
    level: Option<log::LevelFilter>,
}

impl GuestLog {
    /// Writes and charges lines up to `level`, whatever the logger's
    /// filter (`wasmgate replay`).
    pub fn set_level(&mut self, level: log::LevelFilter) {
        self.level = Some(level);
    }

    /// Whether lines at `level` are written.
    pub fn enabled(&self, level: log::Level) -> bool {
        match self.level {
            Some(max) => level <= max,
            None => log::log_enabled!(target: "guest", level),
        }
    }

    /// How many more bytes of guest output at `level` would be logged: 0 when
    /// the level is off or the budget is spent, so callers can skip the work.
    pub fn accepts(&self, level: log::Level) -> usize {
        if self.enabled(level) {
            usize::try_from(self.budget).unwrap_or(usize::MAX)
        } else {
            0
        }
    }

    /// Logs a warning of the host's about this request's guest (not the
    /// guest's own text: not counted against its budget), tagged like its
    /// lines.
    pub fn host_warning(&self, message: &str) {
        log::warn!(target: "guest", "[{} {}] {message}", self.function, self.trace_id);
    }

    /// Says once per request that the budget is spent and output is dropped.
    pub fn note_dropped(&mut self) {
        if self.budget == 0 && !self.exhausted {
            self.exhausted = true;
            log::warn!(target: "guest", "[{} {}] log limit reached; further lines dropped", self.function, self.trace_id);
        }
    }

    /// Logs one line from the guest at `level`, if the budget allows, and
    /// returns the fuel that writing it costs ([`cost::LOG_LINE`]; 0 when
    /// nothing was written).
    pub fn line(&mut self, level: log::Level, bytes: &[u8]) -> u64 {
        if !self.enabled(level) {
            return 0;
        }
        if self.budget == 0 {
            self.note_dropped();
            return 0;
        }
        let budget = usize::try_from(self.budget).unwrap_or(usize::MAX);
        let kept = &bytes[..bytes.len().min(MAX_LOG_LINE).min(budget)];
        self.budget = self.budget.saturating_sub(kept.len().max(1) as u64);
        let lossy = String::from_utf8_lossy(kept);
        let text = escape(lossy.trim_end_matches(['\n', '\r']));
        log::log!(target: "guest", level, "[{} {}] {text}", self.function, self.trace_id);
        cost::LOG_LINE.fuel(text.len() as u64)
    }
}

/// Guest-controlled text made safe for a log line: printable characters stay
/// (quotes too, so JSON stays readable), everything else is escaped as Rust
/// does (`\n`, `\u{1b}`, `\\`): line breaks (CR, LF, NEL, U+2028/9),
/// terminal escapes, bidi overrides and other invisible characters cannot
/// start a forged line or disguise one.
///
/// Text with nothing to escape is returned as it is, without a copy.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if text.bytes().all(|b| matches!(b, b' '..=b'~') && b != b'\\') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut clean = String::new();
    for c in text.chars() {
        match c {
            ' '..='~' if c != '\\' => clean.push(c),
            c => clean.extend(c.escape_debug()),
        }
    }
    std::borrow::Cow::Owned(clean)
}

/// What a host function costs in fuel: a part per call and a part per byte
/// it processes, so that one unit of fuel never buys much more host time
/// than it buys guest instructions (`benches/host.rs` measures the ratio;
/// the README lists the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// Fuel per call.
    pub per_call: u64,
    /// Fuel per KiB processed, so that costs below one fuel per byte can be
    /// said; rounded up per call.
    pub per_kib: u64,
}

impl Cost {
    /// The fuel for one call that processes `bytes` bytes:
    /// `per_call + per_kib * bytes / 1024`, rounded up and saturating.
    pub const fn fuel(self, bytes: u64) -> u64 {
        self.per_call
            .saturating_add(bytes.saturating_mul(self.per_kib).div_ceil(1024))
    }
}

/// The cost of every host function, measured with `cargo bench --bench
/// host` against the guest's own instructions (see the README table).
pub mod cost {
    use super::Cost;

    /// `wasmgate.log`: per byte copied out of the guest (at most one line).
    pub const LOG: Cost = Cost {
        per_call: 250,
        per_kib: 64,
    };
    /// One guest log line actually written (`wasmgate.log`, a stderr line):
    /// formatting, escaping and the write to the server's stderr; per byte
    /// of the escaped line (an escaped control byte is 2–6 bytes).
    pub const LOG_LINE: Cost = Cost {
        per_call: 4_000,
        per_kib: 16_384,
    };
    /// `random_get`: the host CSPRNG, per byte filled.
    pub const RANDOM_GET: Cost = Cost {
        per_call: 2_500,
        per_kib: 10_240,
    };
    /// `fd_read`: per byte copied from stdin, and per iovec (counted as
    /// `IOVEC_BYTES` bytes). A copy out of a buffer the host already holds
    /// (~0.06 ns per byte, ~172 ns for a 16 B call), but reading and
    /// checking an iovec costs ~13 ns, which sets the rate per KiB: 1024
    /// empty iovecs are 64 KiB of work, 41,360 fuel for ~13.6 µs (ratio
    /// 0.89); a 64 KiB copy is then overcharged (~0.26). It was charged at
    /// `FD_WRITE`'s 3,072 per KiB, ~5× this.
    pub const FD_READ: Cost = Cost {
        per_call: 400,
        per_kib: 640,
    };
    /// `fd_write`: per byte taken (stdout grows a buffer; stderr is scanned
    /// for lines, each also paying [`LOG_LINE`]), and per iovec (counted as
    /// `IOVEC_BYTES` bytes).
    pub const FD_WRITE: Cost = Cost {
        per_call: 300,
        per_kib: 3_072,
    };
    /// `args_get`, `args_sizes_get`, `environ_get`, `environ_sizes_get`:
    /// per byte written.
    pub const ARGS: Cost = Cost {
        per_call: 300,
        per_kib: 256,
    };
    /// `clock_time_get` (reads a clock).
    pub const CLOCK: Cost = Cost {
        per_call: 400,
        per_kib: 0,
    };
    /// The small functions that read or write a few bytes: `clock_res_get`,
    /// `fd_fdstat_get`, `fd_prestat_get`, `fd_prestat_dir_name`,
    /// `fd_close`, `fd_seek`, `sched_yield`.
    pub const SMALL: Cost = Cost {
        per_call: 250,
        per_kib: 0,
    };
    /// `proc_exit`: unwinding the guest's call, once per request.
    pub const PROC_EXIT: Cost = Cost {
        per_call: 1_000,
        per_kib: 0,
    };
    /// `poll_oneoff`: per byte of subscriptions read and events written
    /// (48 + 32 per subscription), like [`FD_WRITE`]'s copying; each clock
    /// read also pays [`CLOCK`].
    pub const POLL_ONEOFF: Cost = Cost {
        per_call: 400,
        per_kib: 3_072,
    };
    /// The `http_handler` functions that copy bytes between the exchange
    /// and guest memory (methods, URIs, header names and values, bodies,
    /// config): per byte copied, like [`FD_WRITE`]; header functions also
    /// count every field they look at as [`HEADER_FIELD_BYTES`](super::HEADER_FIELD_BYTES).
    pub const HTTP_COPY: Cost = Cost {
        per_call: 300,
        per_kib: 3_072,
    };
    /// `kv_get`, `host_kv_get`: per byte of key read and of value copied
    /// back (a map lookup under the store's lock and a copy).
    pub const KV_READ: Cost = Cost {
        per_call: 1_500,
        per_kib: 1_024,
    };
    /// `kv_list`: per byte of prefix and cursor read and of keys copied
    /// back (a range of the store's map, the request's own writes merged
    /// in, sorted: 1.6 µs for 10 keys, `benches/host.rs`).
    pub const KV_LIST: Cost = Cost {
        per_call: 5_000,
        per_kib: 4_096,
    };
    /// `kv_set`, `kv_delete`, `kv_incr`, `host_kv_set`: per byte of key and
    /// value; the call also pays for its share of the commit (encoding,
    /// the write and the fsync happen after the request, off the thread).
    pub const KV_WRITE: Cost = Cost {
        per_call: 3_000,
        per_kib: 2_048,
    };
    /// `sha256`, `hmac_sha256`: per byte hashed (key and data; ~11 ns a
    /// byte in the host, `benches/host.rs`), still ~6× less fuel than a
    /// SHA-256 compiled to wasm spends in instructions (~100 a byte).
    pub const DIGEST: Cost = Cost {
        per_call: 1_500,
        per_kib: 16_384,
    };
    /// Every function outside the subset (`path_open`, `sock_*`…): it
    /// answers an errno (`EBADF`, `ENOTCAPABLE`…) without doing anything.
    pub const STUB: Cost = Cost {
        per_call: 400,
        per_kib: 0,
    };
}

/// Weight of one iovec of `fd_read`/`fd_write` in bytes of [`cost::FD_READ`] and [`cost::FD_WRITE`]:
/// reading and checking it costs about as much as copying this many bytes.
pub const IOVEC_BYTES: u64 = 64;

/// Weight of one header field looked at by an `http_handler` header
/// function, in bytes of [`cost::HTTP_COPY`]: comparing its name and
/// stepping over it.
pub const HEADER_FIELD_BYTES: u64 = 32;

/// The fuel host functions may draw on beyond what the store holds, kept by
/// the sandbox: whenever it gives the store a slice, it says how much of the
/// request's budget is left beyond it.
#[derive(Debug, Default)]
pub struct HostFuel {
    budget: u64,
    reserve: u64,
    debt: u64,
    overdrawn: bool,
}

impl HostFuel {
    /// The store was just given a slice; `reserve` is what is left of the
    /// request's `budget` beyond it (0: host work must fit the slice, as in
    /// a start function).
    pub fn new_slice(&mut self, budget: u64, reserve: u64) {
        self.budget = budget;
        self.reserve = reserve;
        self.overdrawn = false;
    }

    /// Fuel charged beyond the slice since the last call; the sandbox adds
    /// it to the request's fuel use.
    pub fn take_debt(&mut self) -> u64 {
        std::mem::take(&mut self.debt)
    }
}

/// Charges a host call that processes `bytes` bytes at `cost` (see
/// [`charge_fuel`]). Call it before the work when the size is known.
pub fn charge(
    caller: &mut Caller<'_, HostState>,
    cost: Cost,
    bytes: u64,
) -> Result<(), wasmi::Error> {
    charge_fuel(caller, cost.fuel(bytes))
}

/// Takes `fuel` from the store's slice. What the slice cannot cover is
/// taken from the rest of the request's budget: the call then ends the
/// slice (see [`finish`]), so the executor gets the thread back before the
/// guest runs on. What the budget cannot cover ends the request as 504
/// `deadline` ([`CallError::OutOfFuel`]).
pub fn charge_fuel(caller: &mut Caller<'_, HostState>, fuel: u64) -> Result<(), wasmi::Error> {
    // Only the benchmarks run without metering; there is nothing to charge.
    let Ok(left) = caller.get_fuel() else {
        return Ok(());
    };
    if fuel <= left {
        return caller.set_fuel(left - fuel);
    }
    let over = fuel - left;
    let account = &mut caller.data_mut().fuel;
    if over > account.reserve {
        let budget = account.budget;
        return Err(wasmi::Error::host(CallError::OutOfFuel { budget }));
    }
    account.reserve -= over;
    account.debt = account.debt.saturating_add(over);
    account.overdrawn = true;
    caller.set_fuel(0)
}

/// Ends a host call with `result`. If the call's cost overdrew the slice,
/// the call returns [`SliceSpent`] instead: the sandbox yields to the
/// executor and resumes the guest with `result` as if the call had just
/// returned. (wasmi checks fuel when a block starts, not after a call: a
/// run of calls in one block would otherwise go on without yielding.)
pub fn finish<R: HostResult>(
    caller: &mut Caller<'_, HostState>,
    result: R,
) -> Result<R, wasmi::Error> {
    let account = &mut caller.data_mut().fuel;
    if std::mem::take(&mut account.overdrawn) {
        return Err(wasmi::Error::host(SliceSpent(result.value())));
    }
    Ok(result)
}

/// A host function's result type, as the values to resume a call with.
pub trait HostResult {
    /// The result as a wasm value, if the function has one.
    fn value(&self) -> Option<Val>;
}

impl HostResult for () {
    fn value(&self) -> Option<Val> {
        None
    }
}

impl HostResult for i32 {
    fn value(&self) -> Option<Val> {
        Some(Val::I32(*self))
    }
}

impl HostResult for i64 {
    fn value(&self) -> Option<Val> {
        Some(Val::I64(*self))
    }
}

impl HostResult for Option<Val> {
    fn value(&self) -> Option<Val> {
        self.clone()
    }
}

/// A host call that used up its fuel slice and has returned this value:
/// not an error, a request to yield (see [`finish`]).
#[derive(Debug)]
pub struct SliceSpent(Option<Val>);

impl SliceSpent {
    /// The host function's results, to resume the call with.
    pub fn results(&self) -> &[Val] {
        self.0.as_slice()
    }
}

impl std::fmt::Display for SliceSpent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a host call used up its fuel slice")
    }
}

impl wasmi::errors::HostError for SliceSpent {}

/// Bounds-checked access to a guest's linear memory: the one way host code
/// reads and writes it (the host functions of [`imports`](super::imports)
/// and the native ABI). A guest pointer is a `u32` offset; a range past the
/// memory's end, or past `usize`, is `None`, never a panic.
pub mod guest_memory {
    use std::ops::Range;

    use wasmi::{Caller, Extern};

    use super::HostState;

    /// The calling instance's exported `memory` and the host state,
    /// borrowed together.
    pub fn of<'a>(
        caller: &'a mut Caller<'_, HostState>,
    ) -> Option<(&'a mut [u8], &'a mut HostState)> {
        let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
            return None;
        };
        Some(memory.data_and_store_mut(caller))
    }

    /// `ptr..ptr + len` as indices, if the end does not overflow (not
    /// checked against a memory: see [`get`]).
    pub fn range(ptr: u32, len: usize) -> Option<Range<usize>> {
        let start = usize::try_from(ptr).ok()?;
        Some(start..start.checked_add(len)?)
    }

    /// The `len` bytes at `ptr`, if they lie inside `mem`.
    pub fn get(mem: &[u8], ptr: u32, len: usize) -> Option<&[u8]> {
        mem.get(range(ptr, len)?)
    }

    /// The `len` bytes at `ptr`, writable, if they lie inside `mem`.
    pub fn get_mut(mem: &mut [u8], ptr: u32, len: usize) -> Option<&mut [u8]> {
        mem.get_mut(range(ptr, len)?)
    }

    /// Copies `bytes` to `ptr`, if they fit inside `mem`.
    pub fn put(mem: &mut [u8], ptr: u32, bytes: &[u8]) -> Option<()> {
        get_mut(mem, ptr, bytes.len())?.copy_from_slice(bytes);
        Some(())
    }

    /// The little-endian `u32` at `ptr`, if it lies inside `mem`.
    pub fn get_u32(mem: &[u8], ptr: u32) -> Option<u32> {
        let b = get(mem, ptr, 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_per_call_plus_per_kib_rounded_up_and_saturating() {
        let c = Cost {
            per_call: 10,
            per_kib: 3,
        };
        assert_eq!(c.fuel(0), 10);
        assert_eq!(c.fuel(1), 11);
        assert_eq!(c.fuel(1024), 13);
        assert_eq!(c.fuel(u64::MAX), u64::MAX.div_ceil(1024) + 10);
        let huge = Cost {
            per_call: u64::MAX,
            per_kib: u64::MAX,
        };
        assert_eq!(huge.fuel(u64::MAX), u64::MAX);
    }

    #[test]
    fn escape_keeps_printable_ascii_and_escapes_the_rest() {
        assert_eq!(escape(r#"GET /x "q" 'a' ok"#), r#"GET /x "q" 'a' ok"#);
        assert_eq!(escape("a\nb\r\u{1b}[2K\\"), r"a\nb\r\u{1b}[2K\\");
        assert_eq!(escape("\u{2028}\u{202e}\u{85}"), r"\u{2028}\u{202e}\u{85}");
        assert_eq!(escape("caf\u{e9}"), "caf\u{e9}");
        assert!(matches!(
            escape("/api/x?q=1"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn limiter_counts_growth_and_remembers_denial() {
        let mut l = MemoryLimiter::new(4 * 65536);
        assert_eq!(l.memory_growing(0, 2 * 65536, None).ok(), Some(true));
        assert_eq!(
            l.memory_growing(2 * 65536, 4 * 65536, None).ok(),
            Some(true)
        );
        assert!(!l.denied);
        assert!(l.memory_growing(4 * 65536, 5 * 65536, None).is_err());
        assert!(l.denied);
    }

    #[test]
    fn a_grow_asked_twice_is_counted_once() {
        // wasmi asks again when the grow's fuel ended the slice after the
        // limiter said yes: the memory has not grown yet.
        let mut l = MemoryLimiter::new(8 * 65536);
        assert!(l.reserve(4096));
        assert_eq!(l.memory_growing(0, 65536, None).ok(), Some(true));
        for _ in 0..3 {
            assert_eq!(l.memory_growing(65536, 7 * 65536, None).ok(), Some(true));
        }
        assert!(!l.denied);
        // Tables and the instance still count with the memory.
        assert!(!l.reserve(65536));
        assert!(l.denied);
    }
}

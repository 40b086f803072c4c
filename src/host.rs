//! What a guest can reach on the host: the per-request [`HostState`] and the
//! `wasmgate` import module (`log`). Nothing here touches files, sockets or
//! the environment; the only way out of the sandbox is the response and the
//! log.

use std::fmt::Write as _;
use std::rc::Rc;

use wasmi::{Caller, Extern, Linker, ResourceLimiter};
use wasmi_core::LimiterError;

use crate::error::CallError;

/// The import module of native host functions.
pub const MODULE: &str = "wasmgate";

/// Host functions in [`MODULE`] and their signatures (params, results), as
/// `check` reports them and the loader verifies them.
pub const FUNCTIONS: &[(&str, &[wasmi::ValType], &[wasmi::ValType])] = {
    use wasmi::ValType::I32;
    &[("log", &[I32, I32, I32], &[])]
};

/// Longest single guest log line kept; longer ones are cut.
const MAX_LOG_LINE: usize = 1024;

impl wasmi::errors::HostError for CallError {}

/// Everything one request's store holds besides the guest's own state.
#[derive(Debug)]
pub struct HostState {
    /// Enforces the `memory` limit.
    pub limiter: MemoryLimiter,
    /// Where guest log lines go.
    pub log: GuestLog,
    /// State of the wasi-json ABI, when the guest speaks it.
    pub wasi: Option<crate::abi::wasi_json::WasiState>,
    /// Fuel charged by host functions that the current slice could not
    /// cover; the sandbox adds it to the request's fuel use.
    pub fuel_debt: u64,
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
            },
            wasi: None,
            fuel_debt: 0,
        }
    }
}

/// Caps the linear memory (all memories together), tables and instances of
/// one store, and remembers whether it ever said no, so that the trap that
/// follows is reported as `memory-limit` rather than a generic trap.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: usize,
    used: usize,
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

    /// Counts `bytes` the instance holds outside its memories and tables
    /// (globals, functions: see [`crate::limits::InstanceCost`]) against the
    /// limit. Returns whether they fit; if not, remembers the denial.
    pub fn reserve(&mut self, bytes: u64) -> bool {
        let total = usize::try_from(bytes)
            .ok()
            .and_then(|b| self.used.checked_add(b))
            .filter(|&total| total <= self.limit);
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
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        let total = (self.used - current.min(self.used)).saturating_add(desired);
        if total > self.limit {
            self.denied = true;
            // A trap, not a -1 from memory.grow: a guest that ignores the
            // failure would otherwise spin until its deadline.
            return Err(LimiterError::ResourceLimiterDeniedAllocation);
        }
        self.used = total;
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
        if desired > Self::MAX_TABLE_ELEMENTS || total > self.limit {
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

/// Guest log output of one request: tagged, sanitised and capped.
#[derive(Debug)]
pub struct GuestLog {
    function: Rc<str>,
    trace_id: Rc<str>,
    budget: u64,
    exhausted: bool,
}

impl GuestLog {
    /// How many more bytes of guest output at `level` would be logged: 0 when
    /// the level is off or the budget is spent, so callers can skip the work.
    pub fn accepts(&self, level: log::Level) -> usize {
        if log::log_enabled!(target: "guest", level) {
            usize::try_from(self.budget).unwrap_or(usize::MAX)
        } else {
            0
        }
    }

    /// Says once per request that the budget is spent and output is dropped.
    pub fn note_dropped(&mut self) {
        if self.budget == 0 && !self.exhausted {
            self.exhausted = true;
            log::warn!(target: "guest", "[{} {}] log limit reached; further lines dropped", self.function, self.trace_id);
        }
    }

    /// Logs one line from the guest at `level`, if the budget allows.
    pub fn line(&mut self, level: log::Level, bytes: &[u8]) {
        if !log::log_enabled!(target: "guest", level) {
            return;
        }
        if self.budget == 0 {
            self.note_dropped();
            return;
        }
        let kept = &bytes[..bytes.len().min(MAX_LOG_LINE).min(self.budget as usize)];
        self.budget -= kept.len().max(1) as u64;
        let text = String::from_utf8_lossy(kept);
        let mut clean = String::with_capacity(text.len());
        for c in text.trim_end_matches(['\n', '\r']).chars() {
            if c.is_control() {
                let _ = write!(clean, "\\u{{{:x}}}", c as u32);
            } else {
                clean.push(c);
            }
        }
        log::log!(target: "guest", level, "[{} {}] {clean}", self.function, self.trace_id);
    }
}

/// A linker with the `wasmgate` host functions defined.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    linker.func_wrap(
        MODULE,
        "log",
        |caller: Caller<'_, HostState>,
         level: i32,
         ptr: i32,
         len: i32|
         -> Result<(), wasmi::Error> {
            let level = match level {
                1 => log::Level::Error,
                2 => log::Level::Warn,
                3 => log::Level::Info,
                4 => log::Level::Debug,
                _ => log::Level::Trace,
            };
            let mut caller = caller;
            charge(&mut caller, u64::from(len.max(0) as u32))?;
            let bytes = guest_slice(&caller, ptr, len).ok_or_else(|| {
                wasmi::Error::host(CallError::Trap(
                    "wasmgate.log: message is out of bounds".into(),
                ))
            })?;
            // Copy only what can be logged: the rest is never looked at.
            let keep = bytes
                .len()
                .min(MAX_LOG_LINE)
                .min(caller.data().log.accepts(level));
            let bytes = bytes[..keep].to_vec();
            caller.data_mut().log.line(level, &bytes);
            Ok(())
        },
    )?;
    Ok(())
}

/// Bytes of host work per unit of fuel, the rate wasmi charges for bulk
/// memory instructions.
const BYTES_PER_FUEL: u64 = 64;

/// Charges the fuel for a host function that handles `bytes` bytes, so
/// that host work counts against the request's budget and a guest cannot
/// pack unmetered work into one fuel slice: a call that costs more than the
/// slice has left ends the slice (the executor gets the thread back) and the
/// rest is carried as debt into the request's fuel use.
pub fn charge(caller: &mut Caller<'_, HostState>, bytes: u64) -> Result<(), wasmi::Error> {
    let cost = bytes / BYTES_PER_FUEL + 1;
    let fuel = caller.get_fuel()?;
    if fuel >= cost {
        caller.set_fuel(fuel - cost)
    } else {
        caller.set_fuel(0)?;
        caller.data_mut().fuel_debt += cost - fuel;
        Ok(())
    }
}

/// The guest memory range `ptr..ptr+len` of the calling instance, if valid.
pub fn guest_slice<'a>(caller: &'a Caller<'_, HostState>, ptr: i32, len: i32) -> Option<&'a [u8]> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return None;
    };
    let start = u32::try_from(ptr).ok()? as usize;
    let end = start.checked_add(u32::try_from(len).ok()? as usize)?;
    memory.data(caller).get(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

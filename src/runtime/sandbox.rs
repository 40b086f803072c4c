//! One request's sandbox: a fresh wasmi `Store` and instance, run in fuel
//! slices so that a busy guest yields the thread between slices, and dropped
//! when the request ends so nothing survives into the next one.
//!
//! The fuel budget is the deadline. The `timeout` is a backstop for work
//! metering does not see (a host call or a slice that runs long on its
//! own), so it counts the CPU time of this request's own work only —
//! instantiation and its fuel slices with the host calls in them — never
//! the time it waited while other requests' slices ran: under any
//! concurrency, the same request stops at the same fuel figure. How it is
//! counted cheaply: [`OwnTime`].

use wasmi::{Instance, Memory, Module, ResumableCall, Store, TrapCode, Val};

use crate::error::CallError;
use crate::limits::{FunctionLimits, InstanceCost};
use crate::runtime::clock::{Mark, OwnTime};
use crate::runtime::engine::Runtime;
use crate::runtime::state::{HostState, SliceSpent};

/// What a new instance's sandbox starts with (see [`Sandbox::fresh`]).
#[derive(Debug, Clone, Copy)]
pub struct Fresh {
    /// Fuel charged for instantiating.
    used: u64,
    /// What the store's limiter counted once it was made.
    counted: (usize, usize),
}

impl Fresh {
    /// The instance's bytes as the limiter counts them: its memory, its
    /// tables and its estimated host bytes.
    pub fn bytes(&self) -> u64 {
        let (used, memory) = self.counted;
        u64::try_from(used.saturating_add(memory)).unwrap_or(u64::MAX)
    }
}

/// A live instance for exactly one request.
pub struct Sandbox {
    store: Store<HostState>,
    instance: Instance,
    budget: u64,
    used: u64,
    slice: u64,
    /// The time of this request's own work so far (see the module doc).
    time: OwnTime,
    /// The reading taken when this request's guest code last stopped,
    /// while nothing else has run on the thread since (it is cleared before
    /// each yield): the next call starts its count there instead of reading
    /// the clock again. A native request makes three guest runs
    /// (instantiation, `wasmgate_alloc`, `wasmgate_handle`).
    last: Option<Mark>,
}

impl Sandbox {
    /// Instantiates `module` in a fresh store. What instantiation costs
    /// (`cost`, from the module's structure) is charged first: its bytes to
    /// the `memory` limit, its fuel to the budget, so a request that cannot
    /// afford it fails without doing the work. A `start` function runs here
    /// without slicing, so it gets at most one fuel slice. On failure, also
    /// returns the fuel used.
    pub fn new(
        runtime: &Runtime,
        module: &Module,
        cost: InstanceCost,
        limits: &FunctionLimits,
        state: HostState,
    ) -> Result<Self, (CallError, u64)> {
        Self::start(runtime, module, cost, limits, state).map_err(|(e, fuel, _)| (e, fuel))
    }

    /// [`Sandbox::new`], giving back the host state when instantiation
    /// fails: a wasi guest whose start function exits has its output there.
    pub fn start(
        runtime: &Runtime,
        module: &Module,
        cost: InstanceCost,
        limits: &FunctionLimits,
        state: HostState,
    ) -> Result<Self, (CallError, u64, Box<HostState>)> {
        if cost.fuel > limits.fuel {
            let budget = limits.fuel;
            return Err((CallError::OutOfFuel { budget }, budget, Box::new(state)));
        }
        let mut store = Store::new(runtime.engine(), state);
        if !store.data_mut().limiter.reserve(cost.bytes) {
            let limit = store.data().limiter.limit();
            let state = Box::new(store.into_data());
            return Err((CallError::MemoryLimit { limit }, cost.fuel, state));
        }
        store.limiter(|state| &mut state.limiter);
        let given = limits.fuel_slice.min(limits.fuel - cost.fuel);
        if let Err(e) = store.set_fuel(given) {
            let state = Box::new(store.into_data());
            return Err((CallError::Trap(e.to_string()), cost.fuel, state));
        }
        // No reserve: host calls in a start function must fit its slice.
        store.data_mut().fuel.new_slice(limits.fuel, 0);
        let mut time = OwnTime::new(limits.timeout);
        let mark = time.mark();
        let result = runtime.linker().instantiate_and_start(&mut store, module);
        let end = time.count(mark);
        let used = consumed(&mut store, given).saturating_add(cost.fuel);
        let instance = match result {
            Ok(instance) => instance,
            Err(e) => {
                let error = match classify(&store, given, e) {
                    // The slice, not the budget, is what ran out.
                    CallError::OutOfFuel { .. } if given == limits.fuel_slice => {
                        CallError::StartOutOfFuel { slice: given }
                    }
                    error => error,
                };
                return Err((error, used, Box::new(store.into_data())));
            }
        };
        Ok(Self {
            store,
            instance,
            budget: limits.fuel,
            used,
            slice: limits.fuel_slice,
            time,
            last: Some(end),
        })
    }

    /// What instantiating left, right after [`Sandbox::new`]: how a
    /// sandbox [`resumed`](Sandbox::resume) on this instance starts.
    pub fn fresh(&self) -> Fresh {
        Fresh {
            used: self.used,
            counted: self.store.data().limiter.counted(),
        }
    }

    /// The instance.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// The store and its instance, the request's state still in it.
    pub fn into_parts(self) -> (Store<HostState>, Instance) {
        (self.store, self.instance)
    }

    /// A sandbox for a new request (`limits`, `state`) on `instance`, which
    /// `store` holds in the state a new instance of its module has, as
    /// `fresh` records: fuel used and memory counted as instantiating it
    /// would have. Gives `state` back if that is over the `memory` limit.
    pub fn resume(
        mut store: Store<HostState>,
        instance: Instance,
        fresh: Fresh,
        limits: &FunctionLimits,
        state: HostState,
    ) -> Result<Self, Box<HostState>> {
        let mut time = OwnTime::new(limits.timeout);
        let mark = time.mark();
        *store.data_mut() = state;
        if !store.data_mut().limiter.restore(fresh.counted) {
            let state = std::mem::replace(store.data_mut(), HostState::idle());
            return Err(Box::new(state));
        }
        let end = time.count(mark);
        Ok(Self {
            store,
            instance,
            budget: limits.fuel,
            used: fresh.used,
            slice: limits.fuel_slice,
            time,
            last: Some(end),
        })
    }

    /// Fuel consumed so far, instantiation included.
    pub fn fuel_used(&self) -> u64 {
        self.used
    }

    /// The instance's export `name`.
    pub fn export(&self, name: &str) -> Option<wasmi::Extern> {
        self.instance.get_export(&self.store, name)
    }

    /// Charges `fuel` for work done before this instance existed (a
    /// pre-initialised `_start`): an out-of-fuel error if the budget cannot
    /// cover it.
    pub fn charge(&mut self, fuel: u64) -> Result<(), CallError> {
        self.used = self.used.saturating_add(fuel);
        if self.used > self.budget {
            self.used = self.budget;
            return Err(CallError::OutOfFuel {
                budget: self.budget,
            });
        }
        Ok(())
    }

    /// The instance's exported `memory`.
    pub fn memory(&self) -> Option<Memory> {
        self.instance.get_memory(&self.store, "memory")
    }

    /// The store, for reading and writing guest memory.
    pub fn store(&self) -> &Store<HostState> {
        &self.store
    }

    /// The store, for reading and writing guest memory.
    pub fn store_mut(&mut self) -> &mut Store<HostState> {
        &mut self.store
    }

    /// Calls the export `name` in fuel slices, yielding to the executor
    /// between slices, until it returns, traps or runs out of fuel or time.
    pub async fn call(
        &mut self,
        name: &str,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<(), CallError> {
        let func = self
            .instance
            .get_func(&self.store, name)
            .ok_or_else(|| CallError::Trap(format!("export `{name}` is missing")))?;
        let mut given = self.refuel(1)?;
        let mut mark = self.last.take().unwrap_or_else(|| self.time.mark());
        let mut call = func.call_resumable(&mut self.store, params, results);
        loop {
            self.account(given, mark);
            match call {
                Ok(ResumableCall::Finished) => return Ok(()),
                Ok(ResumableCall::OutOfFuel(invocation)) => {
                    given = self.next_slice(invocation.required_fuel()).await?;
                    mark = self.time.mark();
                    call = invocation.resume(&mut self.store, results);
                }
                Ok(ResumableCall::HostTrap(invocation)) => {
                    // A host call that used up the slice: yield, then resume
                    // the guest with the call's results.
                    if let Some(spent) = invocation.host_error().downcast_ref::<SliceSpent>() {
                        let inputs = spent.results().to_vec();
                        given = self.next_slice(1).await?;
                        mark = self.time.mark();
                        call = invocation.resume(&mut self.store, &inputs, results);
                        continue;
                    }
                    return Err(classify(
                        &self.store,
                        self.budget,
                        invocation.into_host_error(),
                    ));
                }
                Err(e) => return Err(classify(&self.store, self.budget, e)),
            }
        }
    }

    /// Refuels (see [`Sandbox::refuel`]) and yields to the executor before
    /// the guest runs on; fails when the budget or the timeout is spent.
    async fn next_slice(&mut self, need: u64) -> Result<u64, CallError> {
        // The budget decides first, so a request that used it up gets the
        // same answer however slow the machine was.
        let given = self.refuel(need)?;
        // Only this request's own CPU time counts: the time it waits below,
        // while other requests' slices run, does not.
        self.last = None;
        if self.time.expired() {
            return Err(CallError::Timeout {
                timeout_ms: u64::try_from(self.time.timeout().as_millis()).unwrap_or(u64::MAX),
            });
        }
        smol::future::yield_now().await;
        Ok(given)
    }

    /// Gives the store the next slice of fuel (at least `need`), or fails if
    /// the budget cannot cover it. Host functions may draw on the rest of the
    /// budget ([`charge`](crate::runtime::state::charge)).
    fn refuel(&mut self, need: u64) -> Result<u64, CallError> {
        let remaining = self.budget - self.used.min(self.budget);
        if remaining < need.max(1) {
            return Err(CallError::OutOfFuel {
                budget: self.budget,
            });
        }
        let given = self.slice.max(need).min(remaining);
        self.store
            .set_fuel(given)
            .map_err(|e| CallError::Trap(e.to_string()))?;
        self.store
            .data_mut()
            .fuel
            .new_slice(self.budget, remaining - given);
        Ok(given)
    }

    /// Adds what the last slice consumed to `used`, and the time it ran
    /// since `mark` to `time`; the reading is kept as [`Self::last`].
    fn account(&mut self, given: u64, mark: Mark) {
        self.used += consumed(&mut self.store, given);
        self.last = Some(self.time.count(mark));
    }
}

/// Fuel consumed since the store was given `given`: what the guest ran plus
/// what host functions charged beyond the slice (see [`charge`](crate::runtime::state::charge)).
fn consumed(store: &mut Store<HostState>, given: u64) -> u64 {
    let left = store.get_fuel().unwrap_or(0);
    let debt = store.data_mut().fuel.take_debt();
    (given - left.min(given)).saturating_add(debt)
}

/// Turns a wasmi error into the precise [`CallError`].
fn classify(store: &Store<HostState>, budget: u64, error: wasmi::Error) -> CallError {
    let state = store.data();
    if state.limiter.denied {
        return CallError::MemoryLimit {
            limit: state.limiter.limit(),
        };
    }
    if let Some(code) = error.i32_exit_status() {
        return CallError::ExitCode(code.cast_unsigned());
    }
    if let Some(e) = error.downcast_ref::<CallError>() {
        return e.clone();
    }
    match error.as_trap_code() {
        Some(TrapCode::OutOfFuel) => CallError::OutOfFuel { budget },
        Some(TrapCode::StackOverflow) => CallError::Trap("stack overflow".into()),
        Some(code) => CallError::Trap(code.to_string()),
        None => CallError::Trap(error.to_string()),
    }
}

//! The http-wasm handler ABI (<https://http-wasm.io/http-handler-abi/>):
//! a guest imports `http_handler` (the host functions of
//! [`imports::http_handler`](crate::runtime::imports::http_handler)) and
//! exports `handle_request() -> i64` and `handle_response(req_ctx: i32,
//! is_error: i32)`. One [`Layer`] is one guest instance for one request,
//! kept from `handle_request` to `handle_response`; the request and the
//! response ([`Message`]) move from one layer's store to the next.
//! [`terminal`] runs a guest with no next handler (an http-wasm module as
//! a function).

use std::rc::Rc;
use std::sync::Arc;

use wasmi::{Val, ValType};

use super::{Compiled, Outcome};
use crate::config::FunctionSpec;
use crate::error::CallError;
use crate::limits::{FunctionLimits, ServerLimits};
use crate::runtime::exchange::{BUFFER_RESPONSE, Exchange, ExchangeLimits, Message};
use crate::runtime::state::KvSlot;
use crate::runtime::{HostState, Runtime, Sandbox};
use crate::store::Txn;

/// The request handler export.
pub const HANDLE_REQUEST: &str = "handle_request";
/// The response handler export.
pub const HANDLE_RESPONSE: &str = "handle_response";
/// The WASI command entry point: when exported, it runs once per instance
/// before `handle_request` (guests built with `http-wasm-guest` register
/// their handler and enable features there).
pub const START: &str = "_start";
/// Function exports an http-wasm module must have, with their signatures.
pub const EXPORTS: &[(&str, &[ValType], &[ValType])] = &[
    (HANDLE_REQUEST, &[], &[ValType::I64]),
    (HANDLE_RESPONSE, &[ValType::I32, ValType::I32], &[]),
];

/// Who a layer is, for its log lines and limits.
pub struct Guest<'a> {
    /// The middleware's (or function's) name.
    pub name: &'a str,
    /// The request's trace id.
    pub trace_id: &'a str,
    /// Its limits.
    pub limits: &'a FunctionLimits,
    /// Its `config`, as JSON (`get_config`).
    pub config: Arc<[u8]>,
    /// What the exchange may hold.
    pub exchange: ExchangeLimits,
    /// Its KV transaction for this request (`Err`: why there is none).
    pub kv: Result<Txn, String>,
}

/// One guest instance, alive from `handle_request` to `handle_response`.
pub struct Layer {
    sandbox: Sandbox,
    /// The context value `handle_request` returned.
    ctx: i32,
}

impl Layer {
    /// Instantiates `compiled` in a fresh sandbox and runs its `_start`,
    /// if it exports one. On failure, also returns the fuel used.
    pub async fn start(
        runtime: &Runtime,
        compiled: &Compiled,
        guest: Guest<'_>,
    ) -> Result<Self, (CallError, u64)> {
        compiled
            .shape
            .fits(guest.limits.memory)
            .map_err(|e| (e, 0))?;
        let mut state = HostState::new(
            Rc::from(guest.name),
            Rc::from(guest.trace_id),
            guest.limits.memory,
            guest.limits.max_log,
        );
        state.http = Some(Box::new(Exchange::new(guest.config, guest.exchange)));
        state.kv = KvSlot::shared(guest.kv);
        state.stdio = Some(crate::runtime::state::Stdio::new(
            Vec::new(),
            0,
            Vec::new(),
            Vec::new(),
        ));
        let runtime = compiled.runtime(runtime);
        let sandbox = Sandbox::new(
            runtime,
            &compiled.module,
            compiled.cost,
            guest.limits,
            state,
        )?;
        let mut layer = Self { sandbox, ctx: 0 };
        if compiled.module.get_export(START).is_some() {
            match layer.sandbox.call(START, &[], &mut []).await {
                // A command that exits 0 (`proc_exit(0)`) has started.
                Ok(()) | Err(CallError::ExitCode(0)) => {}
                Err(e) => return Err((e, layer.fuel_used())),
            }
        }
        Ok(layer)
    }

    /// Fuel used so far, instantiation included.
    pub fn fuel_used(&self) -> u64 {
        self.sandbox.fuel_used()
    }

    /// The instance's KV writes, taken out of it to commit once the
    /// request has succeeded (dropping them discards them).
    pub fn take_kv(&mut self) -> Option<Txn> {
        self.sandbox.store().data().kv.borrow_mut().txn.take()
    }

    /// Whether the guest enabled `buffer_response`: the next handler's
    /// response must then be held whole for `handle_response`.
    pub fn buffers_response(&self) -> bool {
        self.exchange()
            .is_some_and(|ex| ex.features & BUFFER_RESPONSE != 0)
    }

    fn exchange(&self) -> Option<&Exchange> {
        self.sandbox.store().data().http.as_deref()
    }

    /// Moves `message` into the guest's exchange, calls the export `name`, and moves it
    /// back out, whatever the call returned.
    async fn with_message(
        &mut self,
        message: &mut Message,
        name: &str,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<(), CallError> {
        let state = self.sandbox.store_mut().data_mut();
        let Some(ex) = state.http.as_deref_mut() else {
            return Err(CallError::Trap("the instance has no exchange".into()));
        };
        ex.message = std::mem::take(message);
        let result = self.sandbox.call(name, params, results).await;
        if let Some(ex) = self.sandbox.store_mut().data_mut().http.as_deref_mut() {
            *message = std::mem::take(&mut ex.message);
        }
        result
    }

    /// Runs `handle_request` on `message`: whether to continue to the next
    /// handler (otherwise the response in `message` is the answer).
    pub async fn handle_request(&mut self, message: &mut Message) -> Result<bool, CallError> {
        let mut out = [Val::I64(0)];
        self.with_message(message, HANDLE_REQUEST, &[], &mut out)
            .await?;
        let Val::I64(packed) = out[0] else {
            return Err(CallError::BadResponse(format!(
                "{HANDLE_REQUEST} returned no i64"
            )));
        };
        let packed = packed.cast_unsigned();
        // High 32 bits: the context; low 32 bits: next (non-zero continues).
        self.ctx = ((packed >> 32) as u32).cast_signed();
        Ok(packed & 0xffff_ffff != 0)
    }

    /// Runs `handle_response` on the next handler's response in `message`;
    /// `is_error` says the next handler failed.
    pub async fn handle_response(
        &mut self,
        message: &mut Message,
        is_error: bool,
    ) -> Result<(), CallError> {
        if let Some(ex) = self.sandbox.store_mut().data_mut().http.as_deref_mut() {
            ex.after_next = true;
            ex.response_read = 0;
            ex.response_written = false;
        }
        let params = [Val::I32(self.ctx), Val::I32(i32::from(is_error))];
        self.with_message(message, HANDLE_RESPONSE, &params, &mut [])
            .await
    }
}

/// Runs an http-wasm guest as a function: `handle_request`, and when it
/// continues, the reference host's behaviour with a next handler that
/// writes nothing (its tests' `noopHandler`): the response is what the
/// guest wrote so far (200 and an empty body unless it set them), and
/// `handle_response` runs on it. Returns the message with the response,
/// the fuel used and, if it succeeded, its KV writes.
pub async fn terminal(
    runtime: &Runtime,
    compiled: &Compiled,
    guest: Guest<'_>,
    mut message: Message,
) -> (Result<Message, CallError>, u64, Option<Txn>) {
    let mut layer = match Layer::start(runtime, compiled, guest).await {
        Ok(layer) => layer,
        Err((e, fuel)) => return (Err(e), fuel, None),
    };
    let result = async {
        if layer.handle_request(&mut message).await? {
            layer.handle_response(&mut message, false).await?;
        }
        Ok(message)
    }
    .await;
    let kv = if result.is_ok() {
        layer.take_kv()
    } else {
        None
    };
    (result, layer.fuel_used(), kv)
}

/// Runs `function`, an http-wasm module, as a request's handler on
/// `message` (the request), with `server`'s request limits, no config and
/// `kv` as its KV transaction: [`terminal`], as an [`Outcome`].
pub async fn call(
    runtime: &Runtime,
    compiled: &Compiled,
    function: &FunctionSpec,
    server: &ServerLimits,
    trace_id: &str,
    message: Message,
    kv: Result<Txn, String>,
) -> Outcome {
    let guest = Guest {
        name: &function.name,
        trace_id,
        limits: &function.limits,
        config: Arc::from(&b""[..]),
        exchange: ExchangeLimits::new(server, &function.limits),
        kv,
    };
    let (result, fuel, kv) = terminal(runtime, compiled, guest, message).await;
    Outcome {
        result: result.map(response),
        fuel,
        kv,
    }
}

/// The response in `message`, as a guest response.
pub fn response(message: Message) -> super::GuestResponse {
    super::GuestResponse {
        status: message.status,
        headers: message.response_headers,
        body: message.response_body,
    }
}

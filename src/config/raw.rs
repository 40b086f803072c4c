//! The input structs: what `wasmgate.toml` may contain, as written, read
//! from the TOML tree by [`table!`] (see `extract.rs`). Unknown keys are
//! refused; values keep their span so that validation can name the line.
//!
//! The numeric keys of `[server]` and `[limits]` are written once, as rows
//! of `keys!`: the row is the key's input field, its value type, the
//! field it fills and its range (the `*_RANGE` constants in
//! [`crate::limits`], next to the default and the reason for both). A new
//! limit is a field in `limits.rs` and a row here.

use std::collections::BTreeMap;

use super::extract::{FromValue, Read, table, type_error};
use super::text::ConfigText;
use super::toml::{Spanned, Value};
use super::units::{Int, Size, Time};
use crate::error::ConfigError;
use crate::limits::{FunctionLimits, ModuleLimits, ProxyLimits, ServerLimits, StateLimits};

/// A raw table whose numeric keys are rows `key: Type => field in RANGE`.
/// Each row is an optional input field of that value type (`Int`, `Size`,
/// `Time`), and `apply` reads every one present into `limits.field`,
/// checked against `RANGE`, in row order (so the first error is the first
/// key's). Other fields (`before` and `after` the rows: unknown-key
/// errors list the keys in this order) are read by hand.
macro_rules! keys {
    (
        $(#[$attr:meta])*
        struct $name:ident into $limits:ty {
            $(before { $($before:ident: $before_ty:ty,)+ })?
            keys { $($key:ident: $value:ty => $($field:ident).+ in $range:expr,)+ }
            $(after { $($after:ident: $after_ty:ty,)+ })?
        }
    ) => {
        table! {
            $(#[$attr])*
            struct $name {
                $($($before: $before_ty,)+)?
                $($key: Option<Spanned<$value>>,)+
                $($($after: $after_ty,)+)?
            }
        }

        impl $name {
            /// Every row's key that is present, checked and read into
            /// `limits`, which holds the defaults.
            pub(crate) fn apply(
                &self,
                input: &ConfigText,
                limits: &mut $limits,
            ) -> Result<(), ConfigError> {
                $(if let Some(value) = &self.$key {
                    limits.$($field).+ = input.read(stringify!($key), value, &$range)?;
                })+
                Ok(())
            }
        }
    };
}

table! {
    struct RawConfig {
        board: Option<Spanned<String>>,
        server: Option<RawServer>,
        limits: Option<RawLimits>,
        state: Option<RawState>,
        functions = "function": Vec<RawFunction>,
        middleware: Vec<RawMiddleware>,
        /// The defaults of every `[[proxy]]`'s keys (its route keys refused).
        gateway: Option<RawProxy>,
        proxies = "proxy": Vec<RawProxy>,
        admin: Option<RawAdmin>,
        signatures: Option<RawSignatures>,
        dumps: Option<RawDumps>,
    }
}

keys! {
    /// `[dumps]`: crash dumps for `wasmgate replay` (off without it).
    struct RawDumps into super::DumpsConfig {
        before {
            dir: Spanned<String>,
        }
        keys {
        max_files: Int => max_files in super::DumpsConfig::MAX_FILES_RANGE,
        max_bytes: Size => max_bytes in super::DumpsConfig::MAX_BYTES_RANGE,
        }
    }
}

table! {
    /// `[signatures]`: the keys modules must be signed with.
    struct RawSignatures {
        trusted_keys: Option<Spanned<Vec<Spanned<String>>>>,
        require: Option<Spanned<bool>>,
    }
}

table! {
    /// `[admin]`: the admin listener (health, readiness, metrics).
    struct RawAdmin {
        listen: Option<Spanned<String>>,
    }
}

type S = ServerLimits;
type M = ModuleLimits;
type F = FunctionLimits;
type P = ProxyLimits;

keys! {
    /// `[server]`, in wasmgate.toml and in a board profile.
    struct RawServer into ServerLimits {
        before {
            listen: Option<Spanned<String>>,
            functions_dir: Option<Spanned<String>>,
            fuel_per_ms: Option<Spanned<Int>>,
        }
        keys {
        max_connections: Int => max_connections in S::MAX_CONNECTIONS_RANGE,
        max_connections_per_ip: Int => max_connections_per_ip in S::MAX_CONNECTIONS_PER_IP_RANGE,
        max_in_flight: Int => max_in_flight in S::MAX_IN_FLIGHT_RANGE,
        memory_budget: Size => memory_budget in S::MEMORY_BUDGET_RANGE,
        max_body: Size => max_body in S::MAX_BODY_RANGE,
        instance_pool: Size => instance_pool in S::INSTANCE_POOL_RANGE,
        max_header_bytes: Size => max_header_bytes in S::MAX_HEADER_BYTES_RANGE,
        max_headers: Int => max_headers in S::MAX_HEADERS_RANGE,
        idle_timeout: Time => idle_timeout in S::TIMEOUT_RANGE,
        header_timeout: Time => header_timeout in S::TIMEOUT_RANGE,
        body_timeout: Time => body_timeout in S::TIMEOUT_RANGE,
        write_timeout: Time => write_timeout in S::TIMEOUT_RANGE,
        module_cache: Int => module_cache in S::MODULE_CACHE_RANGE,
        module_check_interval: Time => module_check_interval in S::MODULE_CHECK_INTERVAL_RANGE,
        max_module_size: Size => max_module_size in S::MAX_MODULE_SIZE_RANGE,
        module_cache_bytes: Size => module_cache_bytes in S::MODULE_CACHE_BYTES_RANGE,
        max_module_globals: Int => module.max_globals in M::MAX_GLOBALS_RANGE,
        max_module_functions: Int => module.max_functions in M::MAX_FUNCTIONS_RANGE,
        max_module_table_elements: Int => module.max_table_elements in M::MAX_TABLE_ELEMENTS_RANGE,
        max_module_element_segments: Int => module.max_element_segments in M::MAX_SEGMENTS_RANGE,
        max_module_data_segments: Int => module.max_data_segments in M::MAX_SEGMENTS_RANGE,
        min_module_function_bytes: Int => module.min_function_bytes in M::MIN_FUNCTION_BYTES_RANGE,
        max_module_imports: Int => module.max_imports in M::MAX_IMPORTS_RANGE,
        max_module_exports: Int => module.max_exports in M::MAX_EXPORTS_RANGE,
        max_module_function_size: Size => module.max_function_bytes in M::MAX_FUNCTION_BYTES_RANGE,
        max_module_nesting: Int => module.max_nesting in M::MAX_NESTING_RANGE,
        drain_timeout: Time => drain_timeout in S::DRAIN_TIMEOUT_RANGE,
        admission_queue: Int => admission_queue in S::ADMISSION_QUEUE_RANGE,
        admission_timeout: Time => admission_timeout in S::ADMISSION_TIMEOUT_RANGE,
        workers: Int => workers in S::WORKERS_RANGE,
        }
        after {
            // Whole seconds, into `retry_after_secs`: see `validate::retry_after`.
            retry_after: Option<Spanned<Time>>,
            // "text" or "json", into `log_json`: see `validate::server_limits`.
            log_format: Option<Spanned<String>>,
            // Into `allow_encoded_slash`: see `validate::server_limits`.
            allow_encoded_slash: Option<Spanned<bool>>,
        }
    }
}

keys! {
    /// `[limits]`, a function's `limits`, and a board profile's `[limits]`.
    #[derive(Default)]
    struct RawLimits into FunctionLimits {
        keys {
        fuel: Int => fuel in F::FUEL_RANGE,
        fuel_slice: Int => fuel_slice in F::FUEL_SLICE_RANGE,
        timeout: Time => timeout in F::TIMEOUT_RANGE,
        memory: Size => memory in F::MEMORY_RANGE,
        max_response: Size => max_response in F::MAX_RESPONSE_RANGE,
        max_log: Size => max_log in F::MAX_LOG_RANGE,
        }
        after {
            // "text" or "refuse": see `validate::plain_output`.
            plain_output: Option<Spanned<String>>,
        }
    }
}

keys! {
    /// `[state]`: the KV store and the quotas of each namespace.
    struct RawState into StateLimits {
        before {
            dir: Option<Spanned<String>>,
            // "always" or an interval: see `validate::state`.
            sync: Option<Spanned<String>>,
        }
        keys {
        // `max_keys` and `max_bytes` are capped by the store's log as well
        // (one namespace is one record): see `StateConfig`'s ranges.
        max_keys: Int => max_keys in super::StateConfig::MAX_KEYS_RANGE,
        max_bytes: Size => max_bytes in super::StateConfig::MAX_BYTES_RANGE,
        max_value: Size => max_value in StateLimits::MAX_VALUE_RANGE,
        }
    }
}

table! {
    /// `[[function]]`.
    struct RawFunction {
        name: Option<Spanned<String>>,
        route: Spanned<String>,
        module: Spanned<String>,
        methods: Option<Spanned<Vec<Spanned<String>>>>,
        abi: Option<Spanned<String>>,
        env: Option<Spanned<BTreeMap<String, String>>>,
        args: Option<Spanned<Vec<String>>>,
        limits: Option<RawLimits>,
        kv: Option<Spanned<String>>,
        middleware: Option<Spanned<Vec<Spanned<String>>>>,
    }
}

table! {
    /// `[[middleware]]`.
    struct RawMiddleware {
        name: Spanned<String>,
        module: Spanned<String>,
        config: Option<Spanned<Value>>,
        limits: Option<RawLimits>,
        kv: Option<Spanned<String>>,
    }
}

keys! {
    /// `[[proxy]]`, and `[gateway]` (the defaults of the numeric keys; the
    /// others belong to a route and are refused there).
    struct RawProxy into ProxyLimits {
        before {
            name: Option<Spanned<String>>,
            route: Option<Spanned<String>>,
            upstream: Option<Spanned<Upstreams>>,
            middleware: Option<Spanned<Vec<Spanned<String>>>>,
        }
        keys {
        connect_timeout: Time => connect_timeout in P::TIMEOUT_RANGE,
        response_timeout: Time => response_timeout in P::TIMEOUT_RANGE,
        upstream_body_timeout: Time => upstream_body_timeout in P::TIMEOUT_RANGE,
        pool_size: Int => pool_size in P::POOL_SIZE_RANGE,
        pool_idle_timeout: Time => pool_idle_timeout in P::TIMEOUT_RANGE,
        fail_threshold: Int => fail_threshold in P::FAIL_THRESHOLD_RANGE,
        fail_skip: Time => fail_skip in P::TIMEOUT_RANGE,
        max_upstream_body: Size => max_upstream_body in P::MAX_UPSTREAM_BODY_RANGE,
        max_response: Size => max_response in F::MAX_RESPONSE_RANGE,
        }
    }
}

/// `upstream`: one URL or a list of them.
pub(crate) enum Upstreams {
    One(String),
    Many(Vec<String>),
}

impl FromValue for Upstreams {
    fn from_value(key: &str, value: Spanned<Value>) -> Read<Self> {
        match value.get_ref() {
            Value::String(_) => String::from_value(key, value).map(Upstreams::One),
            Value::Array(_) => Vec::from_value(key, value).map(Upstreams::Many),
            _ => type_error(key, "a string or an array of strings", &value),
        }
    }
}

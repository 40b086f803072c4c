//! The serde input structs: what `wasmgate.toml` may contain, as written.
//! Every key is optional and unknown keys are refused; values keep their
//! span so that validation can name the line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::units::{Int, Size, Time};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) board: Option<Spanned<String>>,
    pub(crate) server: Option<RawServer>,
    pub(crate) limits: Option<RawLimits>,
    #[serde(default, rename = "function")]
    pub(crate) functions: Vec<RawFunction>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub(crate) listen: Option<Spanned<String>>,
    pub(crate) functions_dir: Option<Spanned<String>>,
    pub(crate) fuel_per_ms: Option<Spanned<Int>>,
    pub(crate) max_connections: Option<Spanned<Int>>,
    pub(crate) max_connections_per_ip: Option<Spanned<Int>>,
    pub(crate) max_in_flight: Option<Spanned<Int>>,
    pub(crate) memory_budget: Option<Spanned<Size>>,
    pub(crate) max_body: Option<Spanned<Size>>,
    pub(crate) max_header_bytes: Option<Spanned<Size>>,
    pub(crate) max_headers: Option<Spanned<Int>>,
    pub(crate) idle_timeout: Option<Spanned<Time>>,
    pub(crate) header_timeout: Option<Spanned<Time>>,
    pub(crate) body_timeout: Option<Spanned<Time>>,
    pub(crate) write_timeout: Option<Spanned<Time>>,
    pub(crate) module_cache: Option<Spanned<Int>>,
    pub(crate) module_check_interval: Option<Spanned<Time>>,
    pub(crate) max_module_size: Option<Spanned<Size>>,
    pub(crate) module_cache_bytes: Option<Spanned<Size>>,
    pub(crate) max_module_globals: Option<Spanned<Int>>,
    pub(crate) max_module_functions: Option<Spanned<Int>>,
    pub(crate) max_module_table_elements: Option<Spanned<Int>>,
    pub(crate) max_module_element_segments: Option<Spanned<Int>>,
    pub(crate) max_module_data_segments: Option<Spanned<Int>>,
    pub(crate) min_module_function_bytes: Option<Spanned<Int>>,
    pub(crate) max_module_imports: Option<Spanned<Int>>,
    pub(crate) max_module_function_size: Option<Spanned<Size>>,
    pub(crate) max_module_nesting: Option<Spanned<Int>>,
    pub(crate) retry_after: Option<Spanned<Time>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub(crate) fuel: Option<Spanned<Int>>,
    pub(crate) fuel_slice: Option<Spanned<Int>>,
    pub(crate) timeout: Option<Spanned<Time>>,
    pub(crate) memory: Option<Spanned<Size>>,
    pub(crate) max_response: Option<Spanned<Size>>,
    pub(crate) max_log: Option<Spanned<Size>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFunction {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) route: Spanned<String>,
    pub(crate) module: Spanned<String>,
    pub(crate) methods: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) abi: Option<Spanned<String>>,
    pub(crate) env: Option<Spanned<BTreeMap<String, String>>>,
    pub(crate) args: Option<Spanned<Vec<String>>>,
    pub(crate) limits: Option<RawLimits>,
}

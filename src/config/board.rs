//! Board profiles: `boards/NAME.toml` files that describe a board (CPU,
//! cores, RAM, Rust target) and set the defaults sized for it: memory
//! budget, requests in flight, module cache, per-function memory, the KV
//! store's `sync` (group commit: an SD card wears with every fsync), and
//! `fuel_per_ms`, the instructions per millisecond measured there by
//! `wasmgate calibrate`.
//!
//! The profiles in the repository's `boards/` are built into the binary, so
//! one static file is enough on a board. A `boards/NAME.toml` next to the
//! config file (or in the working directory) takes precedence, so an
//! integrator can add or correct a profile without rebuilding.

use std::borrow::Cow;
use std::path::Path;

use super::extract::table;
use super::raw::{RawLimits, RawServer, RawState};
use super::text::{ConfigText, read_text};
use super::toml::Spanned;
use super::units::{Int, Size};
use super::{Board, Config, validate};
use crate::error::ConfigError;
use crate::limits::{CORES_RANGE, RAM_RANGE, ServerLimits};

/// The profiles built into the binary: `(name, TOML)`.
const BUILTIN: &[(&str, &str)] = &[
    (
        "beaglebone-black",
        include_str!("../../boards/beaglebone-black.toml"),
    ),
    (
        "generic-aarch64",
        include_str!("../../boards/generic-aarch64.toml"),
    ),
    (
        "revpi-connect4",
        include_str!("../../boards/revpi-connect4.toml"),
    ),
    ("rpi-zero-2w", include_str!("../../boards/rpi-zero-2w.toml")),
    ("rpi3b", include_str!("../../boards/rpi3b.toml")),
    ("rpi4b", include_str!("../../boards/rpi4b.toml")),
    ("rpi5", include_str!("../../boards/rpi5.toml")),
];

/// Names of the built-in profiles.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(name, _)| *name)
}

/// Finds profile `name`: `dir/boards/NAME.toml` if it exists, else the
/// built-in one. Returns the file name (for errors) and the TOML text.
pub fn find(name: &str, dir: &Path) -> Result<(String, Cow<'static, str>), ConfigError> {
    let error = |message| ConfigError {
        file: format!("board `{name}`"),
        line: None,
        message,
    };
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return Err(error(
            "a board name is lower-case letters, digits and `-`".into(),
        ));
    }
    let local = dir.join("boards").join(format!("{name}.toml"));
    if local.is_file() {
        let text = read_text(&local)?;
        return Ok((local.display().to_string(), Cow::Owned(text)));
    }
    match BUILTIN.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => Ok((
            format!("boards/{name}.toml (built in)"),
            Cow::Borrowed(text),
        )),
        None => Err(error(format!(
            "unknown board; known boards: {}",
            builtin_names().collect::<Vec<_>>().join(", ")
        ))),
    }
}

table! {
    /// A board profile file.
    struct RawBoard {
        name: String,
        target: String,
        cpu: String,
        cores: Spanned<Int>,
        ram: Spanned<Size>,
        fuel_per_ms: Option<Spanned<Int>>,
        server: Option<RawServer>,
        limits: Option<RawLimits>,
        state: Option<RawState>,
    }
}

/// A board profile: its description, then its defaults over the
/// built-in ones.
pub(crate) fn validate_board(
    input: &ConfigText,
    raw: RawBoard,
    key: &str,
) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    let cores: u32 = input.read("cores", &raw.cores, &CORES_RANGE)?;
    // One worker per core, unless the profile's `[server]` says otherwise.
    config.server.workers = usize::try_from(cores)
        .unwrap_or(usize::MAX)
        .min(ServerLimits::MAX_WORKERS);
    if let Some(s) = &raw.server {
        let misplaced = [
            ("listen", s.listen.as_ref().map(|v| v.span())),
            ("functions_dir", s.functions_dir.as_ref().map(|v| v.span())),
        ];
        for (k, span) in misplaced {
            if let Some(span) = span {
                return input.error(
                    span,
                    format!("`{k}` belongs in wasmgate.toml, not in a board profile"),
                );
            }
        }
        config.server = validate::server_limits(input, s, &config.server)?;
    }
    if let Some(st) = &raw.state {
        if let Some(dir) = &st.dir {
            return input.error(
                dir.span(),
                "`dir` belongs in wasmgate.toml, not in a board profile".into(),
            );
        }
        validate::state(input, st, Path::new(""), &mut config.state)?;
    }
    config.fuel_per_ms = input.fuel_per_ms(&raw.fuel_per_ms)?;
    if let Some(l) = &raw.limits {
        config.defaults =
            validate::function_limits(input, l, &config.defaults, config.fuel_per_ms)?;
    }
    config.board = Some(Board {
        key: key.to_owned(),
        name: raw.name,
        target: raw.target,
        cpu: raw.cpu,
        cores,
        ram: input.read("ram", &raw.ram, &RAM_RANGE)?,
    });
    validate::check_budget(input, &config)?;
    Ok(config)
}

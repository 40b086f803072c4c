//! Config parsing: any text (and any bytes, through a file) is either a
//! valid config or a config error; it never panics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wasmgate::internals::config::Config;

fuzz_target!(|data: &[u8]| {
    // Relative paths resolve under a directory that does not exist: nothing
    // the input names is read from the fuzzing machine.
    let base = Path::new("/nonexistent/wasmgate-fuzz");
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(text, "fuzz.toml", base, None);
        let _ = Config::parse(text, "fuzz.toml", base, Some("rpi3b"));
    }
    // The bytes path (invalid UTF-8, NUL): the way `serve --config` reads it.
    let file =
        std::env::temp_dir().join(format!("wasmgate-fuzz-config-{}.toml", std::process::id()));
    if std::fs::write(&file, data).is_ok() {
        let _ = Config::load(&file, None);
    }
});

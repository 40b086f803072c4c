//! The config's TOML parser against the `toml` crate: for any text, both
//! refuse it or both read the same values (compared as JSON, which is what
//! a middleware's `config` becomes). Allowed differences: integers past
//! `i64` (wasmgate reads 128 bits so that a range error shows the number
//! written), dates and times (wasmgate refuses them: no key takes one),
//! floats past `f64` (kept as written), and dotted keys adding to a table
//! a header created as a parent (the crate takes `[a.b.c]` `[a]`
//! `b.x.y = 1` but refuses `b.x = 1`; wasmgate refuses both).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmgate::internals::config::toml_to_json;

/// What the toml crate refuses and wasmgate reads: integers past `i64`,
/// floats past `f64`.
const ALLOWED_REFUSALS: &[&str] = &["too large", "as i128", "overflowed"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mine = toml_to_json(text);
    let theirs = text.parse::<toml::Table>();
    match (mine, theirs) {
        (Ok(mine), Ok(theirs)) => {
            // A float past f64 is written as is; serde_json refuses it.
            let Ok(mine) = serde_json::from_str::<serde_json::Value>(&mine) else {
                return;
            };
            let theirs = serde_json::to_value(&theirs).expect("a TOML table as JSON");
            assert_eq!(mine, theirs, "{text:?}");
        }
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) if ALLOWED_REFUSALS.iter().any(|a| e.message().contains(a)) => {}
        (Err(e), Ok(_)) if e.starts_with("dates and times") => {}
        (Err(e), Ok(_)) if e.ends_with("a dotted key cannot add to it") => {}
        (mine, theirs) => panic!("{text:?}: wasmgate {mine:?}, toml {theirs:?}"),
    }
});

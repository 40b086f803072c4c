//! Two link arguments for the shipped binary (see README, "Size budget").
//!
//! The release `wasmgate` binary for aarch64-unknown-linux-musl is linked
//! without `.eh_frame_hdr` (45,292 bytes of the 2 MiB budget): with
//! `panic = "abort"` nothing unwinds, and a panic still prints its message
//! and aborts. Only there: the unwinder needs that table to find frames, so
//! tests (always `panic = unwind`, and tests/conformance.rs catches panics)
//! and debug builds keep it. `rustc-link-arg-bins` reaches the binaries, not
//! test harnesses.
//!
//! It is also linked with `-z norelro`: GNU ld pads the file so that the
//! RELRO region ends on the 64 KiB maximum page size (~60 KiB of zeros),
//! and a static musl executable never applies `PT_GNU_RELRO` (only musl's
//! dynamic linker mprotects it), so the header protects nothing here.
//!
//! And it is linked without the `.eh_frame` unwind tables themselves
//! (`cross/no-eh-frame.ld`, 196 KiB: our crates are built without them,
//! `force-unwind-tables=no` in `.cargo/config.toml`, but Rust's prebuilt
//! std keeps its own): with `panic = "abort"` nothing reads them but a
//! panic's backtrace (`RUST_BACKTRACE`), which then lists no frames; the
//! panic's message and the abort are unchanged.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    if target == "aarch64-unknown-linux-musl" && profile == "release" {
        println!("cargo::rustc-link-arg-bins=-Wl,--no-eh-frame-hdr");
        println!("cargo::rustc-link-arg-bins=-Wl,-z,norelro");
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
        println!("cargo::rerun-if-changed=cross/no-eh-frame.ld");
        println!("cargo::rustc-link-arg-bins=-Wl,-T,{dir}/cross/no-eh-frame.ld");
    }
}

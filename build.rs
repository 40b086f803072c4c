//! One link argument for the shipped binary (see README, "Size budget").
//!
//! The release `wasmgate` binary for aarch64-unknown-linux-musl is linked
//! without `.eh_frame_hdr` (45,292 bytes of the 2 MiB budget): with
//! `panic = "abort"` nothing unwinds, and a panic still prints its message
//! and aborts. Only there: the unwinder needs that table to find frames, so
//! tests (always `panic = unwind`, and tests/conformance.rs catches panics)
//! and debug builds keep it. `rustc-link-arg-bins` reaches the binaries, not
//! test harnesses.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    if target == "aarch64-unknown-linux-musl" && profile == "release" {
        println!("cargo::rustc-link-arg-bins=-Wl,--no-eh-frame-hdr");
    }
}

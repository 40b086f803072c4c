//! Which toolchain built a module, read from its custom sections, so that
//! `wasmgate check` can name the flag that sets the module's stack size in
//! that toolchain's own words (most of a large initial memory is usually
//! the stack, and every request pays for the initial memory).
//!
//! What each toolchain leaves in a module (checked with Rust 1.95, Go
//! 1.27, Zig 0.17): Rust and clang write a `producers` section (`language:
//! Rust` / `C11`, `processed-by: rustc` / `clang`), Go writes `language:
//! Go` and a `go:buildid` section; Zig writes none in release builds, and
//! only `language: C99` in debug builds (its compiler-rt; so C is
//! recognised by `processed-by: clang`, not by its language): Zig builds
//! get the generic advice, which names Zig's flag too. Only the
//! `producers` reader is used: reading the `name` section as well (Zig's
//! `std.` names in debug builds) cost 14 KiB of binary.

use wasmparser::{BinaryReader, Parser, Payload, ProducersSectionReader};

/// A toolchain whose stack flag `check` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toolchain {
    /// rustc (its wasi-libc objects also list C in `producers`).
    Rust,
    /// `zig build-exe` (not `zig cc`, which is clang: [`Toolchain::C`]).
    Zig,
    /// C or C++ through clang and wasm-ld (wasi-sdk, `zig cc`).
    C,
    /// The standard Go toolchain (`GOOS=wasip1 GOARCH=wasm`).
    Go,
}

impl Toolchain {
    /// The toolchain that built the module `bytes`, if its custom sections
    /// say so. Bytes that do not parse are simply not recognised.
    pub fn of(bytes: &[u8]) -> Option<Self> {
        let (mut languages, mut processors) = (Vec::new(), Vec::new());
        for payload in Parser::new(0).parse_all(bytes) {
            let Ok(Payload::CustomSection(section)) = payload else {
                continue;
            };
            match section.name() {
                "go:buildid" => return Some(Toolchain::Go),
                "producers" => {}
                _ => continue,
            }
            let reader = BinaryReader::new(section.data(), section.data_offset());
            let Ok(fields) = ProducersSectionReader::new(reader) else {
                continue;
            };
            for field in fields.into_iter().flatten() {
                let values = field.values.into_iter().flatten().map(|v| v.name);
                match field.name {
                    "language" => languages.extend(values),
                    "processed-by" => processors.extend(values),
                    _ => {}
                }
            }
        }
        let any = |list: &[&str], test: fn(&str) -> bool| list.iter().any(|v| test(v));
        if any(&languages, |l| l == "Rust") || any(&processors, |p| p == "rustc") {
            Some(Toolchain::Rust)
        } else if any(&languages, |l| l == "Go") {
            Some(Toolchain::Go)
        } else if any(&languages, |l| l == "Zig") {
            Some(Toolchain::Zig)
        } else if any(&processors, |p| p == "clang") {
            Some(Toolchain::C)
        } else {
            None
        }
    }
}

/// What a large initial memory of a module built by `toolchain` usually is,
/// and what makes it smaller (a 64 KiB stack); each toolchain's flag when
/// the toolchain is not known.
pub fn stack_advice(toolchain: Option<Toolchain>) -> &'static str {
    match toolchain {
        Some(Toolchain::Rust) => {
            "usually Rust's 1 MiB default stack: build with\n  \
                 RUSTFLAGS=\"-C link-arg=-zstack-size=65536\" for a 64 KiB one"
        }
        Some(Toolchain::Zig) => {
            "usually Zig's 16 MiB default stack: build with\n  \
                 `zig build-exe --stack 65536` (build.zig: `exe.stack_size = 65536`) for a 64 KiB one"
        }
        Some(Toolchain::C) => {
            "usually the stack: link with `-Wl,-z,stack-size=65536` (clang, wasi-sdk,\n  \
                 zig cc) for a 64 KiB one"
        }
        Some(Toolchain::Go) => {
            "the Go runtime's own layout (Go builds start at ~2 MiB): no flag makes it\n  \
                 smaller; TinyGo builds far smaller modules"
        }
        None => {
            "usually the stack, set when the module is linked; for a 64 KiB one:\n  \
                 Rust: -C link-arg=-zstack-size=65536; Zig: --stack 65536;\n  \
                 C (clang, wasm-ld): -Wl,-z,stack-size=65536"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module with one custom section `name` holding `payload`.
    fn with_custom(name: &str, payload: &[u8]) -> Vec<u8> {
        let mut section = vec![u8::try_from(name.len()).unwrap()];
        section.extend_from_slice(name.as_bytes());
        section.extend_from_slice(payload);
        let mut module = b"\0asm\x01\0\0\0\0".to_vec();
        module.push(u8::try_from(section.len()).unwrap());
        module.extend(section);
        module
    }

    /// `(field, [values])` of a `producers` section.
    type Fields<'a> = &'a [(&'a str, &'a [&'a str])];

    /// A `producers` payload of `fields`.
    fn producers(fields: Fields<'_>) -> Vec<u8> {
        let string = |out: &mut Vec<u8>, s: &str| {
            out.push(u8::try_from(s.len()).unwrap());
            out.extend_from_slice(s.as_bytes());
        };
        let mut out = vec![u8::try_from(fields.len()).unwrap()];
        for (field, values) in fields {
            string(&mut out, field);
            out.push(u8::try_from(values.len()).unwrap());
            for value in *values {
                string(&mut out, value);
                string(&mut out, "1.0");
            }
        }
        out
    }

    #[test]
    fn producers_name_the_toolchain() {
        let cases: [(Fields<'_>, Option<Toolchain>); 7] = [
            // rustc for wasm32-wasip1: wasi-libc's C objects come along.
            (
                &[
                    ("language", &["C11", "Rust"]),
                    ("processed-by", &["clang", "rustc"]),
                ],
                Some(Toolchain::Rust),
            ),
            (
                &[("language", &["Go"]), ("processed-by", &["Go cmd/compile"])],
                Some(Toolchain::Go),
            ),
            (
                &[("language", &["C11", "C99"]), ("processed-by", &["clang"])],
                Some(Toolchain::C),
            ),
            (&[("language", &["Zig"])], Some(Toolchain::Zig)),
            // A Zig debug build: its compiler-rt is C, nothing says Zig.
            (&[("language", &["C99"])], None),
            (&[("processed-by", &["wat"])], None),
            (&[], None),
        ];
        for (fields, want) in cases {
            let module = with_custom("producers", &producers(fields));
            assert_eq!(Toolchain::of(&module), want, "{fields:?}");
        }
        assert_eq!(
            Toolchain::of(&with_custom("go:buildid", b"x")),
            Some(Toolchain::Go)
        );
        assert_eq!(Toolchain::of(b"not wasm"), None);
    }
}

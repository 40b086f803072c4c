//! A module's declared initial memory costs the host only the pages the
//! guest touches (the `wasmi_core` patch in `vendor/`, see Cargo.toml), while
//! the memory limit still counts all of it.
//!
//! One test per file on purpose: the resident-size check reads the whole
//! process, and glibc serves a large allocation from fresh (zero, untouched)
//! pages only while no earlier large block has been freed in the process.

use std::rc::Rc;

use wasmgate::internals::limits::FunctionLimits;
use wasmgate::internals::runtime::{HostState, Runtime, Sandbox, Shape};

/// 64 MiB of declared initial memory; the guest touches one page of it.
const PAGES: u64 = 1024;
const MIB: u64 = 1 << 20;

fn module(rt: &Runtime) -> (wasmi::Module, Shape) {
    let wat = format!(
        r#"(module
            (memory (export "memory") {PAGES})
            (func (export "touch") (i32.store (i32.const 65536) (i32.const 7))))"#
    );
    let bytes = wat::parse_str(wat).unwrap();
    let shape = Shape::of(&bytes).unwrap();
    (wasmi::Module::new(rt.engine(), &bytes).unwrap(), shape)
}

/// The sandbox, or the error's message.
fn instantiate(rt: &Runtime, limit: u64) -> Result<Sandbox, String> {
    let (module, shape) = module(rt);
    let limits = FunctionLimits {
        memory: limit,
        ..FunctionLimits::default()
    };
    let state = HostState::new(Rc::from("big"), Rc::from("t"), limits.memory, 1024);
    Sandbox::new(rt, &module, shape.cost(), &limits, state).map_err(|(e, _)| e.to_string())
}

/// The process's resident set in bytes, from `/proc/self/statm` (Linux).
fn resident() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn untouched_initial_memory_is_not_resident_but_counts_against_the_limit() {
    let rt = Runtime::new();
    let before = resident();
    let mut sandbox = instantiate(&rt, 2 * PAGES * 64 * 1024).unwrap();
    smol::future::block_on(sandbox.call("touch", &[], &mut [])).unwrap();
    let after = resident();

    // The memory reads as zero everywhere, and the guest's write is there.
    let memory = sandbox.memory().unwrap();
    let data = memory.data(sandbox.store());
    assert_eq!(data.len() as u64, PAGES * 64 * 1024);
    assert_eq!(data[65536], 7);
    for offset in (0..data.len()).step_by(1 << 20) {
        assert_eq!(data[offset], 0, "byte {offset} of fresh memory");
    }
    // Writing zeros over 64 MiB made it all resident; a zeroed allocation
    // leaves untouched pages to the kernel. (No `/proc`: nothing to check.)
    if let (Some(before), Some(after)) = (before, after) {
        let grown = after.saturating_sub(before);
        assert!(
            grown < 16 * MIB,
            "instantiating 64 MiB of declared memory made {} KiB resident",
            grown / 1024
        );
    }
    drop(sandbox);

    // The limit still counts the declared size: 64 MiB does not fit in 32.
    match instantiate(&rt, 32 * MIB) {
        Err(message) => assert!(message.contains("memory"), "{message}"),
        Ok(_) => panic!("64 MiB of declared memory fit a 32 MiB limit"),
    }
}

//! The wasmi engine and the linker holding every host function, built once
//! and shared by every request of a module.

use wasmi::{CompilationMode, Config, CustomFuelCosts, Engine, Linker, Module};

use crate::limits::{MAX_RECURSION_DEPTH, MAX_STACK_HEIGHT};
use crate::runtime::state::HostState;
use crate::runtime::{imports, snapshot};

/// The engine and linker shared by every request. Built once at start-up.
#[derive(Debug)]
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
}

impl Runtime {
    /// An engine with fuel metering, eager compilation and the stack bounds of
    /// `limits`, and a linker holding every host function.
    pub fn new() -> Self {
        Self::with_fuel_metering(true)
    }

    /// The same engine and linker with fuel metering on or off: the
    /// benchmarks measure what metering costs with everything else equal.
    /// The server always meters.
    pub fn with_fuel_metering(consume_fuel: bool) -> Self {
        let mut config = Config::default();
        config
            .consume_fuel(consume_fuel)
            // Translation is a host cost paid once per module, not the
            // guest's work: it is not charged in fuel. Bulk memory and table
            // operations pay one unit per 8 bytes: at wasmi's 64, a loop of
            // `table.fill` bought 4.3x the wall time per fuel of a plain
            // guest loop (0.65 vs 0.15 s for 100 M fuel); at 8, ~1.6x, and
            // `memory.fill`/`copy` are charged above their time.
            .fuel_cost(CustomFuelCosts {
                bytes_copied_per_fuel: 8,
                fuel_per_bytes_translated: 0,
                fuel_per_bytes_validated: 0,
            })
            // Translate every function when the module loads, on the load
            // helper thread. Lazily, the first call translated it on the
            // serving thread, unmetered: ~90 ms for a 1 MiB function, 0.4 s
            // for 15 MiB. Eager costs ~80 KB of resident memory per bundled
            // function (6 loaded: 5.0 -> 5.5 MB) and no measurable load time.
            .compilation_mode(CompilationMode::Eager)
            .set_max_recursion_depth(MAX_RECURSION_DEPTH)
            .set_max_stack_height(MAX_STACK_HEIGHT);
        let engine = Engine::new(&config);
        let mut linker = Linker::new(&engine);
        imports::define_all(&mut linker).expect("host function names are unique");
        Self { engine, linker }
    }

    /// The shared engine, to compile modules with.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker holding every host function.
    pub fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    /// This runtime with, in its linker, the stubs `module`'s imports need
    /// and its `gojinn.host_kv_get` of the type it declares
    /// ([`imports::gojinn::define_stubs`]); `None` when it needs neither. The
    /// module's own: each load logs its stubs' calls once.
    pub fn with_stubs(&self, module: &Module) -> Result<Option<Self>, wasmi::Error> {
        if imports::gojinn::stubs(module).is_empty() && imports::gojinn::kv_get(module).is_none() {
            return Ok(None);
        }
        let mut linker = self.linker.clone();
        imports::gojinn::define_stubs(&mut linker, module)?;
        Ok(Some(Self {
            engine: self.engine.clone(),
            linker,
        }))
    }
}

impl Runtime {
    /// This runtime with, in its linker, a function that traps for each
    /// import of `module` from a module named [`snapshot::REFUSED_MODULE`]
    /// and more: the imports a `_start` being pre-initialised may not call.
    /// One definition per name: a function imported twice links to one.
    pub fn with_refused(&self, module: &Module) -> Result<Self, wasmi::Error> {
        let mut linker = self.linker.clone();
        let mut defined = std::collections::HashSet::new();
        for import in module.imports() {
            let wasmi::ExternType::Func(ty) = import.ty() else {
                continue;
            };
            if !import.module().starts_with(snapshot::REFUSED_MODULE)
                || !defined.insert((import.module(), import.name()))
            {
                continue;
            }
            let name = import.name().to_owned();
            linker.func_new(
                import.module(),
                import.name(),
                ty.clone(),
                move |_, _, _| {
                    Err(wasmi::Error::new(format!(
                        "`{name}` is refused before a snapshot"
                    )))
                },
            )?;
        }
        Ok(Self {
            engine: self.engine.clone(),
            linker,
        })
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

// Shared by every thread that serves requests of the module it compiled
// (wasmi's and hyper's way of keeping a type `Send + Sync`).
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Runtime>();
};

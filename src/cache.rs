//! Compiled modules, loaded on first use and kept in a bounded LRU.
//!
//! A module is keyed by its path and ABI choice and stamped with the file's
//! size and modification time: a changed file is recompiled on its next
//! request. Load failures are cached with the same stamp, so a broken module
//! costs one compile attempt per change, not one per request. Compilation is
//! lazy (wasmi validates eagerly and translates each function on its first
//! call), so a large module that serves one route costs little.
//!
//! Each cached module has an engine of its own: a wasmi engine keeps every
//! function it ever compiled until it is dropped, so with one shared engine
//! each evicted or reloaded module would leak its code (60–75 KiB for a
//! small Rust function). Dropping the entry drops the engine and its code.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::SystemTime;

use wasmi::{Engine, Module};

use crate::abi::{self, Abi};
use crate::config::AbiChoice;
use crate::error::LoadError;
use crate::sandbox::Runtime;

/// A compiled, inspected module.
#[derive(Debug)]
pub struct Compiled {
    /// The compiled module.
    pub module: Module,
    /// The ABI it speaks.
    pub abi: Abi,
}

/// A cached module with the engine (and linker) that owns its code.
pub struct Loaded {
    /// The engine the module was compiled with, and its linker.
    pub runtime: Runtime,
    /// The compiled module.
    pub module: Module,
    /// The ABI it speaks.
    pub abi: Abi,
}

/// Reads, validates and inspects one module file, compiling it with `engine`.
pub fn load(
    engine: &Engine,
    path: &Path,
    choice: AbiChoice,
    max_size: u64,
) -> Result<Compiled, LoadError> {
    let read_error = |error| LoadError::Read {
        path: path.to_owned(),
        error,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > max_size {
        return Err(LoadError::TooLarge {
            path: path.to_owned(),
            size,
            limit: max_size,
        });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    let module = Module::new(engine, &bytes).map_err(|e| LoadError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let abi = abi::inspect(&module, path, choice)?;
    Ok(Compiled { module, abi })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

struct Entry {
    stamp: Option<Stamp>,
    loaded: Result<Rc<Loaded>, Rc<LoadError>>,
    last_used: u64,
}

/// The module cache. Single-threaded: lives on the executor's thread.
pub struct ModuleCache {
    capacity: usize,
    max_module_size: u64,
    entries: RefCell<HashMap<(PathBuf, AbiChoice), Entry>>,
    clock: Cell<u64>,
}

impl ModuleCache {
    /// A cache holding at most `capacity` modules.
    pub fn new(capacity: usize, max_module_size: u64) -> Self {
        Self {
            capacity: capacity.max(1),
            max_module_size,
            entries: RefCell::new(HashMap::new()),
            clock: Cell::new(0),
        }
    }

    /// Modules currently held.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Whether the cache holds no module.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The module at `path`, compiling it if it is new or changed.
    pub fn get(&self, path: &Path, choice: AbiChoice) -> Result<Rc<Loaded>, Rc<LoadError>> {
        let now = self.clock.get() + 1;
        self.clock.set(now);
        let stamp = Stamp::of(path);
        let key = (path.to_owned(), choice);
        let mut entries = self.entries.borrow_mut();
        // Same size and mtime (or still missing): the cached result stands,
        // so a broken or missing module is reported once, not per request.
        if let Some(entry) = entries.get_mut(&key)
            && entry.stamp == stamp
        {
            entry.last_used = now;
            return entry.loaded.clone();
        }
        let runtime = Runtime::new();
        let loaded = load(runtime.engine(), path, choice, self.max_module_size)
            .map(|c| {
                Rc::new(Loaded {
                    runtime,
                    module: c.module,
                    abi: c.abi,
                })
            })
            .map_err(Rc::new);
        match &loaded {
            Ok(l) => log::info!("loaded {} ({} ABI)", path.display(), l.abi),
            Err(e) => log::warn!("module unavailable: {e}"),
        }
        if entries.len() >= self.capacity
            && !entries.contains_key(&key)
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(
            key,
            Entry {
                stamp,
                loaded: loaded.clone(),
                last_used: now,
            },
        );
        loaded
    }
}

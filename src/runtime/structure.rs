//! A module's structure: the counts in its sections that decide what one
//! instantiation costs. Read once when a module loads, checked against
//! [`ModuleLimits`], and turned into the [`InstanceCost`] every request pays.
//!
//! wasmi's own `EnforcedLimits` cannot carry configured values (wasmi 2.0
//! builds them only as "none" or its fixed `strict()` set), so the counts are
//! read here with the same `wasmparser` wasmi uses: no code is added.

use crate::error::{CallError, LimitExceeded};

use wasmparser::{ElementItems, FunctionBody, Operator, Parser, Payload, TypeRef};

use crate::limits::{
    InstanceCost, MAX_MEMORIES, MAX_TABLES, MIN_FUNCTION_BYTES_FROM, ModuleLimits,
};

/// Compiled code is estimated at this many bytes per byte of function
/// bodies: wasmi's register code is ~1 times the size of compiled Wasm (the
/// bundled functions), up to ~6 times for straight-line arithmetic (a 1 MiB
/// function of `local.get; i32.const; i32.add; local.set` stays at 7 MB).
const CODE_BYTES_PER_BODY_BYTE: u64 = 6;

/// Added per `block`, `loop` and `if`: translating one peaks at ~64 bytes
/// (a 1 MiB function of 260,000 loops took ~17 MB more than a function of
/// a few), 16 times its Wasm, so a module of nothing but blocks would be
/// underestimated by the per-byte rate alone (deep nesting: 20 times).
const CODE_BYTES_PER_BLOCK: u64 = 64;

/// The counts of one module that instantiation works through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Global variables, imported ones included.
    pub globals: u64,
    /// Functions, imported ones included.
    pub functions: u64,
    /// Function bodies (defined functions).
    pub bodies: u64,
    /// Bytes of the code section.
    pub code_bytes: u64,
    /// Tables, imported ones included.
    pub tables: u64,
    /// Initial elements of all tables together.
    pub table_elements: u64,
    /// Linear memories, imported ones included.
    pub memories: u64,
    /// Initial pages of all memories together.
    pub memory_pages: u64,
    /// Element segments.
    pub element_segments: u64,
    /// Items in all element segments together.
    pub element_items: u64,
    /// Data segments.
    pub data_segments: u64,
    /// Imports of any kind.
    pub imports: u64,
    /// Exports of any kind: wasmi copies each name into every instance.
    pub exports: u64,
    /// Bytes of all export names together.
    pub export_name_bytes: u64,
    /// Bytes of the largest function body.
    pub largest_body: u64,
    /// Deepest nesting of blocks (`block`, `loop`, `if`, `try_table`) in
    /// any function body; the body itself is level 0.
    pub deepest_nesting: u64,
    /// Blocks in all function bodies together: wasmi's code for one is far
    /// larger than its two bytes of Wasm (see [`CODE_BYTES_PER_BLOCK`]).
    pub blocks: u64,
    /// Bytes in all data segments together.
    pub data_bytes: u64,
}

impl Shape {
    /// Estimated bytes a module compiled from a file of `file_bytes` bytes
    /// with this shape holds (the module cache's measure): the file (wasmi
    /// keeps its data segments) and its code at
    /// [`CODE_BYTES_PER_BODY_BYTE`] and [`CODE_BYTES_PER_BLOCK`]. An
    /// http-wasm snapshot, a second module compiled from the file rewritten
    /// with the state `_start` left, is estimated the same way.
    pub fn cache_bytes(&self, file_bytes: usize) -> u64 {
        u64::try_from(file_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(self.code_bytes.saturating_mul(CODE_BYTES_PER_BODY_BYTE))
            .saturating_add(self.blocks.saturating_mul(CODE_BYTES_PER_BLOCK))
    }

    /// Reads the counts of a module's sections. `bytes` should already be
    /// validated; an error is the parser's message.
    pub fn of(bytes: &[u8]) -> Result<Self, String> {
        let mut shape = Shape::default();
        let error = |e: wasmparser::BinaryReaderError| e.to_string();
        for payload in Parser::new(0).parse_all(bytes) {
            match payload.map_err(error)? {
                Payload::ImportSection(reader) => {
                    for import in reader {
                        shape.imports = shape.imports.saturating_add(1);
                        match import.map_err(error)?.ty {
                            TypeRef::Func(_) => shape.functions = shape.functions.saturating_add(1),
                            TypeRef::Global(_) => shape.globals = shape.globals.saturating_add(1),
                            TypeRef::Table(t) => {
                                shape.tables = shape.tables.saturating_add(1);
                                shape.table_elements =
                                    shape.table_elements.saturating_add(t.initial);
                            }
                            TypeRef::Memory(m) => {
                                shape.memories = shape.memories.saturating_add(1);
                                shape.memory_pages = shape.memory_pages.saturating_add(m.initial);
                            }
                            TypeRef::Tag(_) => {}
                        }
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let len =
                            u64::try_from(export.map_err(error)?.name.len()).unwrap_or(u64::MAX);
                        shape.exports = shape.exports.saturating_add(1);
                        shape.export_name_bytes = shape.export_name_bytes.saturating_add(len);
                    }
                }
                Payload::FunctionSection(reader) => {
                    shape.functions = shape.functions.saturating_add(reader.count().into());
                }
                Payload::TableSection(reader) => {
                    for table in reader {
                        let table = table.map_err(error)?;
                        shape.tables = shape.tables.saturating_add(1);
                        shape.table_elements =
                            shape.table_elements.saturating_add(table.ty.initial);
                    }
                }
                Payload::MemorySection(reader) => {
                    for memory in reader {
                        shape.memories = shape.memories.saturating_add(1);
                        shape.memory_pages = shape
                            .memory_pages
                            .saturating_add(memory.map_err(error)?.initial);
                    }
                }
                Payload::GlobalSection(reader) => {
                    shape.globals = shape.globals.saturating_add(reader.count().into());
                }
                Payload::ElementSection(reader) => {
                    for element in reader {
                        shape.element_segments = shape.element_segments.saturating_add(1);
                        let items = match element.map_err(error)?.items {
                            ElementItems::Functions(r) => r.count(),
                            ElementItems::Expressions(_, r) => r.count(),
                        };
                        shape.element_items = shape.element_items.saturating_add(items.into());
                    }
                }
                Payload::DataSection(reader) => {
                    for data in reader {
                        shape.data_segments = shape.data_segments.saturating_add(1);
                        let len =
                            u64::try_from(data.map_err(error)?.data.len()).unwrap_or(u64::MAX);
                        shape.data_bytes = shape.data_bytes.saturating_add(len);
                    }
                }
                Payload::CodeSectionStart { count, size, .. } => {
                    shape.bodies = u64::from(count);
                    shape.code_bytes = u64::from(size);
                }
                Payload::CodeSectionEntry(body) => {
                    let len = u64::try_from(body.range().len()).unwrap_or(u64::MAX);
                    shape.largest_body = shape.largest_body.max(len);
                    let (deepest, blocks) = nesting(&body).map_err(error)?;
                    shape.deepest_nesting = shape.deepest_nesting.max(deepest);
                    shape.blocks = shape.blocks.saturating_add(blocks);
                }
                _ => {}
            }
        }
        Ok(shape)
    }

    /// The first limit this module is over, if any.
    pub fn check(&self, limits: &ModuleLimits) -> Result<(), LimitExceeded> {
        let over = |what, actual: u64, limit: u64, key| match actual > limit {
            true => Err(LimitExceeded {
                what,
                actual,
                limit,
                key,
            }),
            false => Ok(()),
        };
        over(
            "imports",
            self.imports,
            limits.max_imports.into(),
            Some("max_module_imports"),
        )?;
        over(
            "exports",
            self.exports,
            limits.max_exports.into(),
            Some("max_module_exports"),
        )?;
        over(
            "bytes in its largest function",
            self.largest_body,
            limits.max_function_bytes,
            Some("max_module_function_size"),
        )?;
        over(
            "levels of nested blocks",
            self.deepest_nesting,
            limits.max_nesting.into(),
            Some("max_module_nesting"),
        )?;
        over("memories", self.memories, MAX_MEMORIES.into(), None)?;
        over("tables", self.tables, MAX_TABLES.into(), None)?;
        over(
            "globals",
            self.globals,
            limits.max_globals.into(),
            Some("max_module_globals"),
        )?;
        over(
            "functions",
            self.functions,
            limits.max_functions.into(),
            Some("max_module_functions"),
        )?;
        over(
            "table elements",
            self.table_elements,
            limits.max_table_elements,
            Some("max_module_table_elements"),
        )?;
        over(
            "element segments",
            self.element_segments,
            limits.max_element_segments.into(),
            Some("max_module_element_segments"),
        )?;
        over(
            "data segments",
            self.data_segments,
            limits.max_data_segments.into(),
            Some("max_module_data_segments"),
        )?;
        if self.code_bytes >= MIN_FUNCTION_BYTES_FROM && self.bodies > 0 {
            let average = self.code_bytes / self.bodies;
            let min = u64::from(limits.min_function_bytes);
            if average < min {
                return Err(LimitExceeded {
                    what: "average function bytes",
                    actual: average,
                    limit: min,
                    key: Some("min_module_function_bytes"),
                });
            }
        }
        Ok(())
    }

    /// What one instantiation costs. Saturates: only ever compared with
    /// limits. The bytes leave out tables and linear memory: the store's
    /// limiter counts those as they are created and grown. Exports are
    /// charged as wasmi makes them: every instance gets its own map of
    /// copied names (`InstanceEntityBuilder::push_export`).
    pub fn cost(&self) -> InstanceCost {
        let table_elements = self.table_elements.saturating_add(self.element_items);
        let bytes = InstanceCost::BASE_BYTES
            .saturating_add(self.globals.saturating_mul(InstanceCost::GLOBAL_BYTES))
            .saturating_add(self.functions.saturating_mul(InstanceCost::FUNCTION_BYTES))
            .saturating_add(
                self.element_items
                    .saturating_mul(InstanceCost::TABLE_ELEMENT_BYTES),
            )
            .saturating_add(
                self.data_segments
                    .saturating_mul(InstanceCost::DATA_SEGMENT_BYTES),
            )
            .saturating_add(self.exports.saturating_mul(InstanceCost::EXPORT_BYTES))
            .saturating_add(self.export_name_bytes);
        let fuel = InstanceCost::BASE_FUEL
            .saturating_add(self.globals.saturating_mul(InstanceCost::GLOBAL_FUEL))
            .saturating_add(self.functions.saturating_mul(InstanceCost::FUNCTION_FUEL))
            .saturating_add(table_elements.saturating_mul(InstanceCost::TABLE_ELEMENT_FUEL))
            .saturating_add(
                self.data_segments
                    .saturating_mul(InstanceCost::DATA_SEGMENT_FUEL),
            )
            .saturating_add(self.data_bytes / InstanceCost::DATA_BYTES_PER_FUEL)
            .saturating_add(self.exports.saturating_mul(InstanceCost::EXPORT_FUEL))
            .saturating_add(
                self.export_name_bytes
                    .saturating_mul(InstanceCost::EXPORT_NAME_BYTE_FUEL),
            );
        InstanceCost { bytes, fuel }
    }

    /// Bytes of initial linear memory the module declares.
    pub fn initial_memory(&self) -> u64 {
        self.memory_pages.saturating_mul(64 * 1024)
    }

    /// Whether one request can instantiate the module within a `memory`
    /// limit ([`Shape::initial_bytes`]). A compiled module is shared by
    /// every function serving it, whatever their limits, so this is
    /// checked per function, before each instantiation: a Zig build's
    /// 16 MiB stack under an 8 MiB limit is refused as such, not reported
    /// as the guest growing its memory at fuel 0.
    pub fn fits(&self, limit: u64) -> Result<(), CallError> {
        let needed = self.initial_bytes();
        if needed <= limit {
            return Ok(());
        }
        Err(CallError::InitialMemory {
            declared: self.initial_memory(),
            needed,
            limit,
        })
    }

    /// The least memory one request needs: the instance, its tables and
    /// its initial linear memory, all counted against the `memory` limit.
    pub fn initial_bytes(&self) -> u64 {
        self.cost()
            .bytes
            .saturating_add(
                self.table_elements
                    .saturating_mul(InstanceCost::TABLE_ELEMENT_BYTES),
            )
            .saturating_add(self.initial_memory())
    }
}

/// The deepest nesting of blocks in one function body, and how many blocks
/// it has. Reads every operator, on the load thread: ~5 ms per MiB of code.
fn nesting(body: &FunctionBody<'_>) -> Result<(u64, u64), wasmparser::BinaryReaderError> {
    let mut reader = body.get_operators_reader()?;
    let (mut depth, mut deepest, mut blocks) = (0u64, 0u64, 0u64);
    while !reader.eof() {
        match reader.read()? {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::TryTable { .. } => {
                depth = depth.saturating_add(1);
                deepest = deepest.max(depth);
                blocks = blocks.saturating_add(1);
            }
            Operator::End => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok((deepest, blocks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(wat: &str) -> Shape {
        Shape::of(&wat::parse_str(wat).unwrap()).unwrap()
    }

    #[test]
    fn counts_what_instantiation_works_through() {
        let s = shape(
            r#"(module
                (import "wasmgate" "log" (func (param i32 i32 i32)))
                (func) (func)
                (table 10 funcref)
                (memory 2)
                (global i32 (i32.const 0)) (global (mut i32) (i32.const 1))
                (elem (i32.const 0) func 0 1 2)
                (data (i32.const 0) "hello"))"#,
        );
        assert_eq!(
            s,
            Shape {
                globals: 2,
                functions: 3,
                bodies: 2,
                code_bytes: s.code_bytes,
                tables: 1,
                table_elements: 10,
                memories: 1,
                memory_pages: 2,
                element_segments: 1,
                element_items: 3,
                data_segments: 1,
                data_bytes: 5,
                imports: 1,
                exports: 0,
                export_name_bytes: 0,
                largest_body: s.largest_body,
                deepest_nesting: 0,
                blocks: 0,
            }
        );
        let cost = s.cost();
        assert_eq!(
            cost.bytes,
            InstanceCost::BASE_BYTES + 2 * 40 + 3 * 72 + 3 * 8 + 32
        );
        assert_eq!(s.initial_bytes(), cost.bytes + 10 * 8 + 2 * 65536);
        assert_eq!(
            cost.fuel,
            InstanceCost::BASE_FUEL + 2 * 140 + 3 * 420 + 13 + 100
        );
    }

    #[test]
    fn exports_are_charged_per_export_and_per_name_byte() {
        let bare = shape("(module (func) (memory 1) (global i32 (i32.const 0)))");
        let exported = shape(
            r#"(module (func (export "f") (export "run"))
                (memory (export "memory") 1)
                (global (export "g") i32 (i32.const 0)))"#,
        );
        assert_eq!((exported.exports, exported.export_name_bytes), (4, 11));
        let (bare, exported) = (bare.cost(), exported.cost());
        assert_eq!(
            exported.fuel - bare.fuel,
            4 * InstanceCost::EXPORT_FUEL + 11 * InstanceCost::EXPORT_NAME_BYTE_FUEL
        );
        assert_eq!(
            exported.bytes - bare.bytes,
            4 * InstanceCost::EXPORT_BYTES + 11
        );
        let limits = ModuleLimits {
            max_exports: 3,
            ..ModuleLimits::default()
        };
        let e = shape(r#"(module (func (export "a") (export "b") (export "c") (export "d")))"#)
            .check(&limits)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "it has 4 exports, more than `max_module_exports` (3)"
        );
    }

    #[test]
    fn each_limit_is_named() {
        let limits = ModuleLimits {
            max_globals: 1,
            ..ModuleLimits::default()
        };
        let two = shape("(module (global i32 (i32.const 0)) (global i32 (i32.const 0)))");
        let e = two.check(&limits).unwrap_err();
        assert_eq!((e.what, e.actual, e.limit), ("globals", 2, 1));
        assert_eq!(
            e.to_string(),
            "it has 2 globals, more than `max_module_globals` (1)"
        );
        let nested =
            shape("(module (func block loop i32.const 0 if end end end) (func block end))");
        assert_eq!((nested.deepest_nesting, nested.blocks), (3, 4));
        let limits = ModuleLimits {
            max_nesting: 2,
            ..ModuleLimits::default()
        };
        assert_eq!(
            nested.check(&limits).unwrap_err().to_string(),
            "it has 3 levels of nested blocks, more than `max_module_nesting` (2)"
        );
        let e = shape("(module (memory 1) (memory 1))")
            .check(&ModuleLimits::default())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "it has 2 memories, more than the 1 wasmgate can instantiate"
        );
        // Many tiny functions: refused once the bodies pass 1,000 bytes.
        let tiny = |n| format!("(module {})", "(func)".repeat(n));
        assert!(shape(&tiny(100)).check(&ModuleLimits::default()).is_ok());
        let e = shape(&tiny(1000))
            .check(&ModuleLimits::default())
            .unwrap_err();
        assert_eq!(e.key, Some("min_module_function_bytes"));
    }
}

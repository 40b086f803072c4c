//! Pre-initialised modules: the binary rewriting behind http-wasm
//! snapshots (`abi::http_wasm::Snapshot`).
//!
//! A guest built with `http-wasm-guest` runs `_start` on every instance
//! before `handle_request`: it parses its config and registers its handler,
//! ~15 µs of a ~60 µs middleware call, the same work with the same result
//! on every request. [`instrument`] makes a copy of the module that exports
//! its mutable globals and its memory, and whose imports outside an allowed
//! set (anything that reads the clock, randomness or state, or writes a log
//! or output) are moved to [`REFUSED_MODULE`] (prefixed to their module's
//! name, so that each keeps its own name and type), whose functions trap.
//! Once that copy has run `_start`, [`rewrite`] writes the original module
//! with the state it left ([`Image`]) as its initial state: the globals'
//! initialisers, the memory's initial size and its data segments, and no
//! `start` section (its effects are in the image). Instantiating the result
//! gives, without running any code, the instance `_start` would have made:
//! each request still gets a fresh instance of its own.
//!
//! Refused (the module runs as before): an imported or a second memory, a
//! 64-bit or shared memory, passive data segments, any instruction that
//! changes a table (`table.set`, `grow`, `fill`, `copy`, `init`,
//! `elem.drop`: the image does not hold tables), a mutable global of a
//! non-numeric type. The rewriting reads with the same `wasmparser` wasmi
//! uses and writes by hand: no code is added.

use wasmparser::{
    BinaryReader, CodeSectionReader, DataKind, DataSectionReader, ExportSectionReader,
    GlobalSectionReader, ImportSectionReader, MemorySectionReader, Operator, TypeRef, ValType,
};

/// What the import module of a refused import is prefixed with: the
/// runtime defines each as a function that traps, so a `_start` that
/// calls one fails and the module is not pre-initialised.
pub const REFUSED_MODULE: &str = "\u{0}wasmgate-snapshot-refused";

/// Prefix of the exports [`instrument`] adds (no guest export starts with
/// a NUL).
const EXPORT_PREFIX: &str = "\u{0}wasmgate-snapshot-";

/// The granularity of the data segments [`rewrite`] writes: memory is
/// written in runs of 1 KiB blocks that are not all zero, so a mostly empty
/// memory costs few segments and little copying at instantiation.
const BLOCK: usize = 1024;

/// What [`instrument`] added: where to read the state after `_start`.
#[derive(Debug)]
pub struct Plan {
    /// Mutable globals defined by the module (index in the global index
    /// space) and the name of their export.
    pub globals: Vec<(u32, String)>,
    /// The export name of the memory.
    pub memory: String,
}

/// A global's value after `_start`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// `i32`.
    I32(i32),
    /// `i64`.
    I64(i64),
    /// `f32`, as bits.
    F32(u32),
    /// `f64`, as bits.
    F64(u64),
}

/// The state `_start` left: what [`rewrite`] makes the initial state.
#[derive(Debug)]
pub struct Image {
    /// The memory's size, in pages.
    pub pages: u64,
    /// The memory's bytes.
    pub memory: Vec<u8>,
    /// Each mutable global's value, by global index.
    pub globals: Vec<(u32, Value)>,
}

/// One section: its id, its contents and its whole encoding.
struct Section<'a> {
    id: u8,
    offset: usize,
    body: &'a [u8],
    raw: &'a [u8],
}

const CUSTOM: u8 = 0;
const IMPORT: u8 = 2;
const MEMORY: u8 = 5;
const GLOBAL: u8 = 6;
const EXPORT: u8 = 7;
const START: u8 = 8;
const CODE: u8 = 10;
const DATA: u8 = 11;
const DATA_COUNT: u8 = 12;

const HEADER: &[u8] = b"\0asm\x01\0\0\0";

type Result<T> = std::result::Result<T, String>;

fn err(e: wasmparser::BinaryReaderError) -> String {
    e.to_string()
}

fn sections(bytes: &[u8]) -> Result<Vec<Section<'_>>> {
    if !bytes.starts_with(HEADER) {
        return Err("not a core Wasm module".into());
    }
    let mut reader = BinaryReader::new(&bytes[HEADER.len()..], HEADER.len());
    let mut out = Vec::new();
    while !reader.eof() {
        let start = reader.original_position();
        let id = reader.read_u8().map_err(err)?;
        let size = reader.read_var_u32().map_err(err)?;
        let offset = reader.original_position();
        let body = reader
            .read_bytes(usize::try_from(size).map_err(|e| e.to_string())?)
            .map_err(err)?;
        let raw = &bytes[start..reader.original_position()];
        out.push(Section {
            id,
            offset,
            body,
            raw,
        });
    }
    Ok(out)
}

fn reader<'a>(section: &Section<'a>) -> BinaryReader<'a> {
    BinaryReader::new(section.body, section.offset)
}

/// The module's facts the rewriting depends on, checked.
struct Facts {
    imported_globals: u32,
    /// Mutable globals defined here: (index, value type).
    mutable: Vec<(u32, ValType)>,
    /// The memory's export name, if it has one.
    memory_export: Option<String>,
}

fn facts(sections: &[Section<'_>]) -> Result<Facts> {
    let mut imported_globals = 0u32;
    let mut memories = 0u32;
    let mut mutable = Vec::new();
    let mut memory_export = None;
    for section in sections {
        match section.id {
            IMPORT => {
                for import in ImportSectionReader::new(reader(section)).map_err(err)? {
                    match import.map_err(err)?.ty {
                        TypeRef::Global(_) => imported_globals += 1,
                        TypeRef::Memory(_) => return Err("it imports its memory".into()),
                        _ => {}
                    }
                }
            }
            MEMORY => {
                for memory in MemorySectionReader::new(reader(section)).map_err(err)? {
                    let memory = memory.map_err(err)?;
                    if memory.memory64 || memory.shared || memory.page_size_log2.is_some() {
                        return Err("its memory is 64-bit, shared or of custom pages".into());
                    }
                    memories += 1;
                }
            }
            GLOBAL => {
                let globals = GlobalSectionReader::new(reader(section)).map_err(err)?;
                for (i, global) in globals.into_iter().enumerate() {
                    let global = global.map_err(err)?;
                    if !global.ty.mutable {
                        continue;
                    }
                    let ty = global.ty.content_type;
                    if !matches!(
                        ty,
                        ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64
                    ) {
                        return Err(format!("a mutable global of type {ty}"));
                    }
                    let index = u32::try_from(i)
                        .ok()
                        .and_then(|i| i.checked_add(imported_globals))
                        .ok_or("too many globals")?;
                    mutable.push((index, ty));
                }
            }
            EXPORT => {
                for export in ExportSectionReader::new(reader(section)).map_err(err)? {
                    let export = export.map_err(err)?;
                    if export.name.starts_with(EXPORT_PREFIX) {
                        return Err("it has an export named like the snapshot's own".into());
                    }
                    if export.kind == wasmparser::ExternalKind::Memory && memory_export.is_none() {
                        memory_export = Some(export.name.to_owned());
                    }
                }
            }
            CODE => {
                for body in CodeSectionReader::new(reader(section)).map_err(err)? {
                    let mut ops = body.map_err(err)?.get_operators_reader().map_err(err)?;
                    while !ops.eof() {
                        if let Some(op) = table_change(&ops.read().map_err(err)?) {
                            return Err(format!("it changes a table (`{op}`)"));
                        }
                    }
                }
            }
            DATA => {
                for data in DataSectionReader::new(reader(section)).map_err(err)? {
                    match data.map_err(err)?.kind {
                        DataKind::Passive => return Err("it has passive data segments".into()),
                        DataKind::Active { memory_index, .. } if memory_index != 0 => {
                            return Err("a data segment of another memory".into());
                        }
                        DataKind::Active { .. } => {}
                    }
                }
            }
            _ => {}
        }
    }
    if memories != 1 {
        return Err(format!("it defines {memories} memories, not one"));
    }
    Ok(Facts {
        imported_globals,
        mutable,
        memory_export,
    })
}

/// The instruction's name if it changes a table.
fn table_change(op: &Operator<'_>) -> Option<&'static str> {
    match op {
        Operator::TableSet { .. } => Some("table.set"),
        Operator::TableGrow { .. } => Some("table.grow"),
        Operator::TableFill { .. } => Some("table.fill"),
        Operator::TableCopy { .. } => Some("table.copy"),
        Operator::TableInit { .. } => Some("table.init"),
        Operator::ElemDrop { .. } => Some("elem.drop"),
        _ => None,
    }
}

fn leb_u64(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn leb_u32(out: &mut Vec<u8>, value: u32) {
    leb_u64(out, u64::from(value));
}

fn leb_i64(out: &mut Vec<u8>, mut value: i64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0);
        if done {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn name(out: &mut Vec<u8>, name: &str) -> Result<()> {
    leb_u32(out, u32::try_from(name.len()).map_err(|e| e.to_string())?);
    out.extend_from_slice(name.as_bytes());
    Ok(())
}

fn len_u32(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|e| e.to_string())
}

/// Appends a section with id `id` and contents `body`.
fn section(out: &mut Vec<u8>, id: u8, body: &[u8]) -> Result<()> {
    out.push(id);
    leb_u32(out, len_u32(body.len())?);
    out.extend_from_slice(body);
    Ok(())
}

/// A copy of the module that exports its mutable globals and its memory,
/// with its function imports that `allowed(module, name)` refuses moved
/// to [`REFUSED_MODULE`]`module`; what it added. Err: why the module cannot be
/// pre-initialised.
pub fn instrument(bytes: &[u8], allowed: impl Fn(&str, &str) -> bool) -> Result<(Vec<u8>, Plan)> {
    let sections = sections(bytes)?;
    let facts = facts(&sections)?;
    let (exports, plan) = state_exports(&facts)?;
    let out = with_exports(&sections, &exports, |s, out| match s.id {
        IMPORT => section(out, IMPORT, &imports(s, &allowed)?).map(|()| true),
        _ => Ok(false),
    })?;
    Ok((out, plan))
}

/// The exports that name the state (each mutable global, and the memory
/// if it has no export), as export entries, how many, and their names.
fn state_exports(facts: &Facts) -> Result<((Vec<u8>, u32), Plan)> {
    let mut plan = Plan {
        globals: Vec::new(),
        memory: facts
            .memory_export
            .clone()
            .unwrap_or_else(|| format!("{EXPORT_PREFIX}memory")),
    };
    let mut added = Vec::new();
    let mut count = 0u32;
    for &(index, _) in &facts.mutable {
        let export = format!("{EXPORT_PREFIX}global{index}");
        name(&mut added, &export)?;
        added.push(0x03);
        leb_u32(&mut added, index);
        plan.globals.push((index, export));
        count += 1;
    }
    if facts.memory_export.is_none() {
        name(&mut added, &plan.memory)?;
        added.push(0x02);
        leb_u32(&mut added, 0);
        count += 1;
    }
    Ok(((added, count), plan))
}

/// `sections` written out with the export entries `(added, count)`
/// appended to the export section (made if there is none). `each` may
/// write a section itself (true) or leave it to be copied (false).
fn with_exports(
    sections: &[Section<'_>],
    (added, count): &(Vec<u8>, u32),
    mut each: impl FnMut(&Section<'_>, &mut Vec<u8>) -> Result<bool>,
) -> Result<Vec<u8>> {
    let new_section = |out: &mut Vec<u8>| {
        let mut body = Vec::new();
        leb_u32(&mut body, *count);
        body.extend_from_slice(added);
        section(out, EXPORT, &body)
    };
    let mut out = HEADER.to_vec();
    let mut exported = false;
    for s in sections {
        match s.id {
            EXPORT => {
                let mut r = reader(s);
                let old = r.read_var_u32().map_err(err)?;
                let mut body = Vec::new();
                leb_u32(
                    &mut body,
                    old.checked_add(*count).ok_or("too many exports")?,
                );
                body.extend_from_slice(&s.body[r.current_position()..]);
                body.extend_from_slice(added);
                section(&mut out, EXPORT, &body)?;
                exported = true;
                continue;
            }
            // A new export section goes before the first section that
            // follows it in the module's order.
            id if !exported && id != CUSTOM && after_exports(id) => {
                new_section(&mut out)?;
                exported = true;
            }
            _ => {}
        }
        if !each(s, &mut out)? {
            out.extend_from_slice(s.raw);
        }
    }
    if !exported {
        new_section(&mut out)?;
    }
    Ok(out)
}

/// Whether sections with `id` come after the export section (the order
/// of the binary format: ..., memory 5, tag 13, global 6, export 7, start
/// 8, element 9, data count 12, code 10, data 11).
fn after_exports(id: u8) -> bool {
    matches!(id, START | 9 | DATA_COUNT | CODE | DATA)
}

/// The import section with refused function imports renamed.
fn imports(s: &Section<'_>, allowed: &impl Fn(&str, &str) -> bool) -> Result<Vec<u8>> {
    let mut r = reader(s);
    let count = r.read_var_u32().map_err(err)?;
    let mut body = Vec::new();
    leb_u32(&mut body, count);
    for _ in 0..count {
        let module = r.read_string().map_err(err)?;
        let field = r.read_string().map_err(err)?;
        let start = r.current_position();
        // The import's type: read to find its end, copied as it is.
        let ty: TypeRef = r.read().map_err(err)?;
        let desc = &s.body[start..r.current_position()];
        let refused = matches!(ty, TypeRef::Func(_)) && !allowed(module, field);
        match refused {
            true => name(&mut body, &format!("{REFUSED_MODULE}{module}"))?,
            false => name(&mut body, module)?,
        }
        name(&mut body, field)?;
        body.extend_from_slice(desc);
    }
    if !r.eof() {
        return Err("bytes after the import section's entries".into());
    }
    Ok(body)
}

/// The module with `image` as its initial state and no start section
/// (see the module doc), exporting its state under the names of
/// [`instrument`]'s [`Plan`] (so that an instance can be put back into
/// that state: see `abi::http_wasm`'s instance pool). The module must
/// have passed [`instrument`].
pub fn rewrite(bytes: &[u8], image: &Image) -> Result<Vec<u8>> {
    let sections = sections(bytes)?;
    let facts = facts(&sections)?;
    let data = segments(&image.memory);
    let (exports, _) = state_exports(&facts)?;
    let mut wrote_data = false;
    let mut out = with_exports(&sections, &exports, |s, out| {
        match s.id {
            MEMORY => section(out, MEMORY, &memory(s, image.pages)?)?,
            GLOBAL => section(out, GLOBAL, &globals(s, &facts, image)?)?,
            START => {}
            DATA_COUNT => {
                let mut body = Vec::new();
                leb_u32(&mut body, len_u32(data.len())?);
                section(out, DATA_COUNT, &body)?;
            }
            DATA => {
                section(out, DATA, &data_section(&image.memory, &data)?)?;
                wrote_data = true;
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if !wrote_data && !data.is_empty() {
        section(&mut out, DATA, &data_section(&image.memory, &data)?)?;
    }
    Ok(out)
}

/// The runs of non-zero 1 KiB blocks of `memory` (what [`rewrite`]
/// writes as data segments), as (offset, bytes): what an instance's
/// memory is set back to, over zeros.
pub fn image_runs(memory: &[u8]) -> Vec<(usize, Vec<u8>)> {
    segments(memory)
        .into_iter()
        .filter_map(|(start, end)| Some((start, memory.get(start..end)?.to_vec())))
        .collect()
}

fn memory(s: &Section<'_>, pages: u64) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    leb_u32(&mut body, 1);
    for memory in MemorySectionReader::new(reader(s)).map_err(err)? {
        let memory = memory.map_err(err)?;
        if memory.maximum.is_some_and(|max| pages > max) || pages < memory.initial {
            return Err("the memory's size is outside its limits".into());
        }
        match memory.maximum {
            Some(max) => {
                body.push(0x01);
                leb_u64(&mut body, pages);
                leb_u64(&mut body, max);
            }
            None => {
                body.push(0x00);
                leb_u64(&mut body, pages);
            }
        }
    }
    Ok(body)
}

fn globals(s: &Section<'_>, facts: &Facts, image: &Image) -> Result<Vec<u8>> {
    let globals = GlobalSectionReader::new(reader(s)).map_err(err)?;
    let mut body = Vec::new();
    leb_u32(&mut body, globals.count());
    let end = s.offset + s.body.len();
    let entries: Vec<_> = globals
        .into_iter_with_offsets()
        .collect::<std::result::Result<_, _>>()
        .map_err(err)?;
    // Looked up by index: a module may have as many mutable globals as
    // `max_module_globals` allows, and a scan per global was quadratic.
    let mutable: std::collections::HashMap<u32, ValType> = facts.mutable.iter().copied().collect();
    let values: std::collections::HashMap<u32, Value> = image.globals.iter().copied().collect();
    for (i, (offset, _)) in entries.iter().enumerate() {
        let next = entries.get(i + 1).map_or(end, |(o, _)| *o);
        let index = len_u32(i)?
            .checked_add(facts.imported_globals)
            .ok_or("too many globals")?;
        let Some(&ty) = mutable.get(&index) else {
            body.extend_from_slice(&s.body[offset - s.offset..next - s.offset]);
            continue;
        };
        let value = *values
            .get(&index)
            .ok_or("a global's value is missing from the image")?;
        match (ty, value) {
            (ValType::I32, Value::I32(v)) => {
                body.extend_from_slice(&[0x7f, 0x01, 0x41]);
                leb_i64(&mut body, i64::from(v));
            }
            (ValType::I64, Value::I64(v)) => {
                body.extend_from_slice(&[0x7e, 0x01, 0x42]);
                leb_i64(&mut body, v);
            }
            (ValType::F32, Value::F32(v)) => {
                body.extend_from_slice(&[0x7d, 0x01, 0x43]);
                body.extend_from_slice(&v.to_le_bytes());
            }
            (ValType::F64, Value::F64(v)) => {
                body.extend_from_slice(&[0x7c, 0x01, 0x44]);
                body.extend_from_slice(&v.to_le_bytes());
            }
            _ => return Err("a global's value is not of its type".into()),
        }
        body.push(0x0b);
    }
    Ok(body)
}

/// Bytes of `memory` [`rewrite`] writes as data: its blocks that are not
/// all zero.
pub fn data_bytes(memory: &[u8]) -> usize {
    segments(memory)
        .iter()
        .map(|(start, end)| end - start)
        .sum()
}

/// Ranges of `memory` in runs of blocks that are not all zero.
fn segments(memory: &[u8]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, block) in memory.chunks(BLOCK).enumerate() {
        if block.iter().all(|&b| b == 0) {
            continue;
        }
        let start = i * BLOCK;
        let end = start + block.len();
        match runs.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => runs.push((start, end)),
        }
    }
    runs
}

fn data_section(memory: &[u8], runs: &[(usize, usize)]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    leb_u32(&mut body, len_u32(runs.len())?);
    for &(start, end) in runs {
        body.extend_from_slice(&[0x00, 0x41]);
        // An i32.const offset: memory addresses above 2 GiB are negative.
        leb_i64(&mut body, i64::from(len_u32(start)?.cast_signed()));
        body.push(0x0b);
        leb_u32(&mut body, len_u32(end - start)?);
        body.extend_from_slice(&memory[start..end]);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exports(bytes: &[u8]) -> Vec<String> {
        let engine = wasmi::Engine::default();
        let module = wasmi::Module::new(&engine, bytes).expect("valid module");
        module.exports().map(|e| e.name().to_owned()).collect()
    }

    #[test]
    fn leb_encodings_match_the_spec_examples() {
        let mut out = Vec::new();
        leb_u32(&mut out, 624_485);
        assert_eq!(out, [0xe5, 0x8e, 0x26]);
        out.clear();
        leb_i64(&mut out, -123_456);
        assert_eq!(out, [0xc0, 0xbb, 0x78]);
        out.clear();
        leb_i64(&mut out, 64);
        assert_eq!(out, [0xc0, 0x00]);
        out.clear();
        leb_i64(&mut out, -1);
        assert_eq!(out, [0x7f]);
    }

    #[test]
    fn instrumenting_exports_mutable_globals_and_the_memory_and_renames_refused_imports() {
        let bytes = wat::parse_str(
            r#"(module
                (import "env" "ok" (func))
                (import "env" "no" (func))
                (memory 1)
                (global (mut i32) (i32.const 7))
                (global i32 (i32.const 8))
                (global (mut i64) (i64.const 9))
                (func (export "_start")))"#,
        )
        .unwrap();
        let (out, plan) = instrument(&bytes, |_, name| name == "ok").unwrap();
        assert_eq!(plan.globals.len(), 2);
        assert_eq!(plan.globals[0].0, 0);
        assert_eq!(plan.globals[1].0, 2);
        let names = exports(&out);
        assert!(names.contains(&plan.memory), "{names:?}");
        assert!(names.contains(&plan.globals[1].1), "{names:?}");
        let engine = wasmi::Engine::default();
        let module = wasmi::Module::new(&engine, &out[..]).unwrap();
        let imports: Vec<_> = module
            .imports()
            .map(|i| (i.module().to_owned(), i.name().to_owned()))
            .collect();
        assert_eq!(
            imports,
            [
                ("env".to_owned(), "ok".to_owned()),
                (format!("{REFUSED_MODULE}env"), "no".to_owned())
            ]
        );
    }

    #[test]
    fn rewriting_sets_globals_memory_and_data_and_drops_the_start_section() {
        let bytes = wat::parse_str(
            r#"(module
                (memory (export "memory") 1 4)
                (global $g (mut i32) (i32.const 1))
                (global $h (mut f64) (f64.const 1))
                (func $init (global.set $g (i32.const 99)))
                (start $init)
                (data (i32.const 16) "abc"))"#,
        )
        .unwrap();
        let mut memory = vec![0u8; 2 * 65536];
        memory[70_000] = 5;
        memory[16] = b'x';
        let image = Image {
            pages: 2,
            memory,
            globals: vec![(0, Value::I32(-5)), (1, Value::F64(2.5f64.to_bits()))],
        };
        let out = rewrite(&bytes, &image).unwrap();
        let (_, exported) = instrument(&bytes, |_, _| true).unwrap();
        let engine = wasmi::Engine::default();
        let module = wasmi::Module::new(&engine, &out[..]).unwrap();
        let mut store = wasmi::Store::new(&engine, ());
        let linker = wasmi::Linker::<()>::new(&engine);
        let instance = linker.instantiate_and_start(&mut store, &module).unwrap();
        let memory = instance.get_memory(&store, "memory").unwrap();
        assert_eq!(memory.size(&store), 2);
        let data = memory.data(&store);
        assert_eq!(data[70_000], 5);
        assert_eq!(data[16], b'x');
        assert_eq!(data[17], 0, "the original data segment is gone");
        assert_eq!(segments(data), [(0, 1024), (69_632, 70_656)]);
        assert_eq!(
            image_runs(data)
                .iter()
                .map(|(at, bytes)| (*at, bytes.len()))
                .collect::<Vec<_>>(),
            [(0, 1024), (69_632, 1024)]
        );
        // Its state is exported under the instrumented copy's names: each
        // mutable global at its image value.
        assert_eq!(exported.memory, "memory");
        let values: Vec<_> = exported
            .globals
            .iter()
            .map(|(index, name)| {
                assert!(name.starts_with(EXPORT_PREFIX), "{name}");
                (
                    *index,
                    instance.get_global(&store, name).unwrap().get(&store),
                )
            })
            .collect();
        assert_eq!(values.len(), 2);
        assert!(matches!(values[0], (0, wasmi::Val::I32(-5))), "{values:?}");
        assert!(
            matches!(values[1], (1, wasmi::Val::F64(v)) if f64::from(v) == 2.5),
            "{values:?}"
        );
    }

    #[test]
    fn modules_that_cannot_be_pre_initialised_say_why() {
        for (wat, why) in [
            (
                r#"(module (import "env" "m" (memory 1)))"#,
                "imports its memory",
            ),
            (
                r#"(module (memory 1) (table 1 funcref)
                    (func (table.set (i32.const 0) (ref.null func))))"#,
                "table.set",
            ),
            (r#"(module (memory 1) (data "x"))"#, "passive data"),
            (r#"(module (func))"#, "0 memories"),
        ] {
            let bytes = wat::parse_str(wat).unwrap();
            let e = instrument(&bytes, |_, _| true).unwrap_err();
            assert!(e.contains(why), "{wat}: {e}");
        }
    }
}

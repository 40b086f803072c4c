//! The layers of `src/` (ARCHITECTURE.md). Two rules, checked on every
//! `crate::` and `super::` path in the non-test code of `src/`:
//! - the top-level modules are layers: one may use those below it in
//!   [`LAYERS`], never one above (a module missing from the table fails the
//!   check, so a new one states its place);
//! - no two files use each other, directly or through others (no `use`
//!   cycle). A folder's `mod.rs` declaring and re-exporting its files
//!   (`mod x;`, `pub use x::Y;`) is its table of contents, not a use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules of `src/`, bottom to top.
const LAYERS: &[&str] = &[
    "threads",
    "signature",
    "limits",
    "error",
    "config",
    "http",
    "server",
    "store",
    "runtime",
    "abi",
    "cache",
    "calibrate",
    "app",
    "cli",
    "internals",
    "lib",
    "main",
];

/// Every Rust file of `src/`, with its module id: the path below `src/`
/// without `.rs`, `mod.rs` standing for its folder.
fn modules(src: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("src/ is readable").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(src).expect("below src/");
                let mut id = relative
                    .with_extension("")
                    .to_string_lossy()
                    .replace('\\', "/");
                if let Some(folder) = id.strip_suffix("/mod") {
                    id = folder.to_owned();
                }
                found.push((id, path));
            }
        }
    }
    found.sort();
    found
}

/// The code of a file before its unit tests, without comments; in a
/// `mod.rs`, without the lines that declare and re-export its files.
fn code(text: &str, is_folder: bool) -> String {
    // The unit tests (`#[cfg(test)] mod tests { … }`, last in a file) may
    // use anything; other `#[cfg(test)]` items are code like the rest.
    let body = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => text,
    };
    let mut kept = Vec::new();
    let mut in_reexport = false;
    for line in body.lines() {
        let line = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        let trimmed = line.trim_start();
        if is_folder && (trimmed.starts_with("pub use ") || trimmed.starts_with("pub(crate) use "))
        {
            in_reexport = !trimmed.contains(';');
            continue;
        }
        if in_reexport {
            in_reexport = !trimmed.contains(';');
            continue;
        }
        kept.push(line);
    }
    kept.join("\n")
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The module paths a file names: `crate::a::b`, `crate::{a, b::c}` and
/// `super::x`, each as its segments from the crate root.
fn paths(code: &str, id: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent(id))] {
        let mut from = 0;
        while let Some(found) = code[from..].find(prefix) {
            let at = from + found;
            from = at + prefix.len();
            if at > 0 && (is_ident(bytes[at - 1]) || bytes[at - 1] == b':') {
                continue;
            }
            collect(code, from, base.clone(), &mut out);
        }
    }
    out
}

/// The parent module of `id` as segments (`runtime/imports/wasmgate` →
/// `runtime/imports`; a folder's `mod.rs` is its own folder).
fn parent(id: &str) -> Vec<String> {
    let mut segments: Vec<String> = id.split('/').map(str::to_owned).collect();
    segments.pop();
    segments
}

/// Reads `a::b::{c, d::e}` at `at`, appending each full path to `out`.
fn collect(code: &str, mut at: usize, mut path: Vec<String>, out: &mut Vec<Vec<String>>) {
    let bytes = code.as_bytes();
    loop {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        if at < bytes.len() && bytes[at] == b'{' {
            // Split the group at top-level commas.
            let mut depth = 0;
            let mut start = at + 1;
            for (i, &b) in bytes.iter().enumerate().skip(at) {
                match b {
                    b'{' => depth += 1,
                    b'}' | b',' if depth == 1 => {
                        collect(code, start, path.clone(), out);
                        start = i + 1;
                        if b == b'}' {
                            return;
                        }
                    }
                    b'}' => depth -= 1,
                    _ => {}
                }
            }
            return;
        }
        let end = (at..bytes.len())
            .find(|&i| !is_ident(bytes[i]))
            .unwrap_or(bytes.len());
        if end == at {
            break;
        }
        path.push(code[at..end].to_owned());
        if code[end..].starts_with("::") {
            at = end + 2;
        } else {
            break;
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// The longest module id that `path` starts with.
fn resolve<'a>(path: &[String], ids: &'a [String]) -> Option<&'a str> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("/"))
        .find_map(|candidate| ids.iter().find(|id| **id == candidate))
        .map(String::as_str)
}

/// The layer of a module: the position of its top-level module in
/// [`LAYERS`].
fn layer(id: &str) -> Option<usize> {
    let top = id.split('/').next().unwrap_or(id);
    LAYERS.iter().position(|layer| *layer == top)
}

/// A cycle in `edges` (file → files it uses), as the files along it.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    // Depth-first search; a file met again while still on the path closes
    // a cycle.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

#[test]
fn modules_use_only_lower_layers_and_files_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = modules(&src);
    let ids: Vec<String> = files.iter().map(|(id, _)| id.clone()).collect();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, file) in &files {
        let Some(own) = layer(id) else {
            problems.push(format!(
                "src/{id}: its top-level module is not in LAYERS (tests/layers.rs)"
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("source is readable");
        let is_folder = file.ends_with("mod.rs");
        for path in paths(&code(&text, is_folder), id) {
            let Some(used) = resolve(&path, &ids) else {
                continue; // an item of the crate root, e.g. a macro
            };
            if used == id {
                continue;
            }
            edges.entry(id.clone()).or_default().insert(used.to_owned());
            if let Some(theirs) = layer(used).filter(|&theirs| theirs > own) {
                problems.push(format!(
                    "src/{id} uses {}: layer {} is above {}",
                    path.join("::"),
                    LAYERS[theirs],
                    LAYERS[own]
                ));
            }
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        problems.push(format!("use cycle: {}", cycle.join(" -> ")));
    }
    assert!(
        problems.is_empty(),
        "layering broken:\n{}",
        problems.join("\n")
    );
}

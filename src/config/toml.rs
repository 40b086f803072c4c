//! A TOML 1.0 parser for config files and board profiles: text into a tree
//! of [`Value`]s that keep their byte span, so that every error names the
//! line. Written here instead of using the `toml` crate and serde derive
//! for the config structs: together they were ~200 KiB of x86_64 code in
//! a binary with a hard size budget (see `Cargo.toml`).
//!
//! Everything TOML 1.0 has, and what the `toml` crate takes from TOML
//! 1.1 (`\e` and `\xXX` escapes, inline tables over several lines with
//! a trailing comma), except dates and times, which no config key takes:
//! a date is refused with a clear error rather than read as something
//! else. Floats are checked against TOML's grammar and kept as written
//! (no key is a float; a middleware's `config` hands them on as JSON
//! numbers), so one past `f64` (`1e400`) is not refused. Integers are
//! read into 128 bits, so that a range error can show a number past
//! `u64` as written.
//!
//! Bounded: nesting (tables, arrays, dotted keys together) is at most
//! [`MAX_DEPTH`] levels, parsing recurses only into values and never
//! deeper than that, and every error is a message with its byte offset,
//! never a panic. `differential.rs` compares it with the `toml` crate,
//! and so does the `toml` fuzz target.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;

/// The deepest a value may be nested: header and dotted key parts, arrays
/// and inline tables together. A config needs four.
pub(crate) const MAX_DEPTH: usize = 32;

/// A value and where it is in the text (byte offsets).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned<T> {
    span: Range<usize>,
    value: T,
}

impl<T> Spanned<T> {
    pub(crate) fn new(span: Range<usize>, value: T) -> Self {
        Self { span, value }
    }
    pub(crate) fn get_ref(&self) -> &T {
        &self.value
    }
    pub(crate) fn span(&self) -> Range<usize> {
        self.span.clone()
    }
    pub(crate) fn into_inner(self) -> T {
        self.value
    }
}

/// A TOML value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    String(String),
    Integer(i128),
    /// As written, without `_`: `1.5`, `-2e10`, `inf`, `+nan`.
    Float(String),
    Boolean(bool),
    Array(Vec<Spanned<Value>>),
    Table(Table),
}

impl Value {
    /// The value's type, as a type error says what it got.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }
}

/// How a table came to be, which decides what may add to it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Created as the parent of a `[a.b]` header: `[a]` may still define it.
    Implicit,
    /// Defined by a `[header]` (or the root).
    Header,
    /// Created by a dotted key (`a.b = 1`): more dotted keys may add to it.
    Dotted,
    /// An inline table (`{ ... }`) and everything in it: closed.
    Inline,
}

/// A TOML table: keys in order of their name, each remembering where it
/// was written.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    entries: Entries,
    kind: Kind,
    /// The next entry's number: entries are handed out in document order.
    next: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    order: usize,
    key: Range<usize>,
    value: Spanned<Value>,
    /// An array of tables (`[[name]]`), to which another `[[name]]` adds.
    tables: bool,
}

/// Most tables have a few keys (an inline table in an array, a
/// `[[function]]`) and a document may hold hundreds of thousands of them:
/// up to [`FEW`] entries are a `Vec` sorted by key, of the room they need;
/// more are a `BTreeMap`, whose every node has room for 11 (~1.1 KB for
/// a table of one key: a 1 MiB config of `{a=1}` tables took 240 MB).
#[derive(Debug, Clone)]
enum Entries {
    Few(Vec<(String, Entry)>),
    Many(BTreeMap<String, Entry>),
}

/// The most entries kept in a `Vec` (each lookup a binary search, each
/// insert a move of at most this many).
const FEW: usize = 8;

impl Entries {
    fn len(&self) -> usize {
        match self {
            Entries::Few(v) => v.len(),
            Entries::Many(m) => m.len(),
        }
    }

    /// Where `key` is in a sorted `Vec` of entries (`Err`: where it
    /// would go).
    fn search(v: &[(String, Entry)], key: &str) -> Result<usize, usize> {
        v.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    fn get(&self, key: &str) -> Option<&Entry> {
        match self {
            Entries::Few(v) => Self::search(v, key)
                .ok()
                .and_then(|i| v.get(i))
                .map(|(_, e)| e),
            Entries::Many(m) => m.get(key),
        }
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        match self {
            Entries::Few(v) => Self::search(v, key)
                .ok()
                .and_then(|i| v.get_mut(i))
                .map(|(_, e)| e),
            Entries::Many(m) => m.get_mut(key),
        }
    }

    fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn insert(&mut self, key: String, entry: Entry) {
        match self {
            Entries::Few(v) => match Self::search(v, &key) {
                Ok(i) => {
                    if let Some(slot) = v.get_mut(i) {
                        slot.1 = entry;
                    }
                }
                Err(_) if v.len() >= FEW => {
                    // Inserted one by one: `collect` would sort them again,
                    // another sort routine in the binary for nothing.
                    let mut m = BTreeMap::new();
                    for (k, e) in std::mem::take(v) {
                        m.insert(k, e);
                    }
                    m.insert(key, entry);
                    *self = Entries::Many(m);
                }
                Err(i) => {
                    v.reserve_exact(1);
                    v.insert(i, (key, entry));
                }
            },
            Entries::Many(m) => {
                m.insert(key, entry);
            }
        }
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        match self {
            Entries::Few(v) => Self::search(v, key).ok().map(|i| v.remove(i).1),
            Entries::Many(m) => m.remove(key),
        }
    }

    /// In the order of their keys. Boxed: one small loop for every caller
    /// instead of the two kinds' iterators inlined into each (bytes of
    /// the binary, on code that reads a config).
    fn iter(&self) -> Box<dyn Iterator<Item = (&String, &Entry)> + '_> {
        match self {
            Entries::Few(v) => Box::new(v.iter().map(|(k, e)| (k, e))),
            Entries::Many(m) => Box::new(m.iter()),
        }
    }

    fn values_mut(&mut self) -> Box<dyn Iterator<Item = &mut Entry> + '_> {
        match self {
            Entries::Few(v) => Box::new(v.iter_mut().map(|(_, e)| e)),
            Entries::Many(m) => Box::new(m.values_mut()),
        }
    }

    fn into_vec(self) -> Vec<(String, Entry)> {
        match self {
            Entries::Few(v) => v,
            Entries::Many(m) => m.into_iter().collect(),
        }
    }
}

/// Tables are equal when their keys and values are, however they were written.
impl PartialEq for Table {
    fn eq(&self, other: &Self) -> bool {
        self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(other.entries.iter())
                .all(|((a, x), (b, y))| a == b && x.value == y.value)
    }
}

impl Table {
    fn new(kind: Kind) -> Self {
        Self {
            entries: Entries::Few(Vec::new()),
            kind,
            next: 0,
        }
    }

    /// The keys and values in the order they were written.
    pub(crate) fn into_entries(self) -> Vec<(Spanned<String>, Spanned<Value>)> {
        let mut entries = self.entries.into_vec();
        entries.sort_by_key(|(_, e)| e.order);
        entries
            .into_iter()
            .map(|(k, e)| (Spanned::new(e.key, k), e.value))
            .collect()
    }

    /// The keys and values in the order of their names.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries
            .iter()
            .map(|(k, e)| (k.as_str(), e.value.get_ref()))
    }

    /// The value of `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key).map(|e| e.value.get_ref())
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Replaces key `old` by `new` with `value` (`new` must be absent).
    pub(crate) fn rename(&mut self, old: &str, new: String, value: Value) {
        if let Some(mut entry) = self.entries.remove(old) {
            entry.value = Spanned::new(entry.value.span(), value);
            self.entries.insert(new, entry);
        }
    }

    fn insert(&mut self, key: &Spanned<String>, value: Spanned<Value>, tables: bool) {
        let entry = Entry {
            order: self.next,
            key: key.span(),
            value,
            tables,
        };
        self.next = self.next.saturating_add(1);
        self.entries.insert(key.get_ref().clone(), entry);
    }
}

/// A syntax error: what is wrong and the byte offset where.
#[derive(Debug)]
pub(crate) struct Error {
    pub(crate) at: usize,
    pub(crate) message: String,
}

type Parsed<T> = Result<T, Error>;

fn fail<T>(at: usize, message: impl Into<String>) -> Parsed<T> {
    Err(Error {
        at,
        message: message.into(),
    })
}

/// `text` as a TOML document.
pub(crate) fn parse(text: &str) -> Parsed<Table> {
    parse_bounded(text, usize::MAX)
}

/// `text` as a TOML document of at most `max_values` values, keys and
/// table headers together: what its tree may cost in memory, ~100–300
/// bytes each, is bounded before it is built (a document from elsewhere,
/// like a crash dump, may be large and all small tables).
pub(crate) fn parse_bounded(text: &str, max_values: usize) -> Parsed<Table> {
    // A byte order mark is not part of the document.
    let start = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let mut p = Parser {
        text,
        pos: start,
        left: max_values,
    };
    let mut root = Table::new(Kind::Header);
    // The table key/value lines go into: its header's keys.
    let mut section: Vec<Spanned<String>> = Vec::new();
    loop {
        p.skip_blank_lines()?;
        let Some(b) = p.peek() else { break };
        if b == b'[' {
            let start = p.pos;
            p.pos += 1;
            let array = p.eat(b'[');
            let keys = p.key(0)?;
            p.spend(keys.len(), start)?;
            if !p.eat(b']') || (array && !p.eat(b']')) {
                let close = if array { "`]]`" } else { "`]`" };
                return fail(p.pos, format!("expected {close} to close the table header"));
            }
            let span = start..p.pos;
            define_table(&mut root, &keys, array, span)?;
            section = keys;
        } else {
            let at = p.pos;
            let keys = p.key(section.len())?;
            p.spend(keys.len(), at)?;
            p.skip_ws();
            if !p.eat(b'=') {
                return fail(p.pos, "expected `=` after the key");
            }
            p.skip_ws();
            let value = p.value(section.len().saturating_add(keys.len()))?;
            let table = section_table(&mut root, &section)?;
            insert_dotted(table, &keys, value)?;
        }
        p.end_of_line()?;
    }
    Ok(root)
}

/// The table a `[header]` named: `keys` from the root, the last table of
/// an array of tables on the way.
fn section_table<'t>(root: &'t mut Table, keys: &[Spanned<String>]) -> Parsed<&'t mut Table> {
    let mut table = root;
    for key in keys {
        let at = key.span().start;
        table = match table.entries.get_mut(key.get_ref()) {
            Some(entry) => match &mut entry.value.value {
                Value::Table(t) => t,
                Value::Array(items) => match items.last_mut().map(|i| &mut i.value) {
                    Some(Value::Table(t)) => t,
                    _ => return fail(at, "internal error: the header's table is gone"),
                },
                _ => return fail(at, "internal error: the header's table is gone"),
            },
            None => return fail(at, "internal error: the header's table is gone"),
        };
    }
    Ok(table)
}

/// The dotted names of `keys` for an error: `a.b.c`.
fn dotted(keys: &[Spanned<String>]) -> String {
    keys.iter()
        .map(|k| k.get_ref().as_str())
        .collect::<Vec<_>>()
        .join(".")
}

/// Into the table `key` of `table`, creating it when absent: as a header's
/// parent (`dotted` false) or for a dotted key.
fn descend<'t>(table: &'t mut Table, key: &Spanned<String>, dotted: bool) -> Parsed<&'t mut Table> {
    if !table.entries.contains_key(key.get_ref()) {
        let kind = if dotted { Kind::Dotted } else { Kind::Implicit };
        let value = Spanned::new(key.span(), Value::Table(Table::new(kind)));
        table.insert(key, value, false);
    }
    let name = key.get_ref();
    let at = key.span().start;
    let Some(entry) = table.entries.get(name) else {
        return fail(at, "internal error: a table just added is gone");
    };
    match &entry.value.value {
        Value::Table(t) if t.kind == Kind::Inline => {
            return fail(
                at,
                format!("`{name}` is an inline table: nothing can be added to it later"),
            );
        }
        Value::Table(t) if dotted && t.kind != Kind::Dotted => {
            return fail(
                at,
                format!("table `{name}` is already defined: a dotted key cannot add to it"),
            );
        }
        Value::Table(_) => {}
        Value::Array(_) if entry.tables && !dotted => {}
        other => {
            return fail(
                at,
                format!("`{name}` is already {}, not a table", other.type_name()),
            );
        }
    }
    let entry = table.entries.get_mut(name).map(|e| &mut e.value.value);
    match entry {
        Some(Value::Table(t)) => Ok(t),
        Some(Value::Array(items)) => match items.last_mut().map(|i| &mut i.value) {
            Some(Value::Table(t)) => Ok(t),
            _ => fail(at, "internal error: an array of tables without a table"),
        },
        _ => fail(at, "internal error: a table just added is gone"),
    }
}

/// `[keys]` or `[[keys]]`.
fn define_table(
    root: &mut Table,
    keys: &[Spanned<String>],
    array: bool,
    span: Range<usize>,
) -> Parsed<()> {
    let Some((last, parents)) = keys.split_last() else {
        return fail(span.start, "a table header needs a name");
    };
    let mut table = root;
    for key in parents {
        table = descend(table, key, false)?;
    }
    let fresh = Table::new(Kind::Header);
    let name = dotted(keys);
    let Some(entry) = table.entries.get_mut(last.get_ref()) else {
        let value = match array {
            true => Value::Array(vec![Spanned::new(span.clone(), Value::Table(fresh))]),
            false => Value::Table(fresh),
        };
        table.insert(last, Spanned::new(span, value), array);
        return Ok(());
    };
    match (&mut entry.value.value, array) {
        (Value::Table(t), false) if t.kind == Kind::Implicit => {
            t.kind = Kind::Header;
            entry.value.span = span;
            Ok(())
        }
        (Value::Table(_), false) => fail(span.start, format!("table `{name}` is defined twice")),
        (Value::Array(items), true) if entry.tables => {
            items.push(Spanned::new(span, Value::Table(fresh)));
            Ok(())
        }
        (other, _) => fail(
            span.start,
            format!(
                "`{name}` is already {}; it cannot be {}",
                other.type_name(),
                if array {
                    "an array of tables"
                } else {
                    "a table"
                }
            ),
        ),
    }
}

/// `keys = value` into `table`.
fn insert_dotted(table: &mut Table, keys: &[Spanned<String>], value: Spanned<Value>) -> Parsed<()> {
    let Some((last, parents)) = keys.split_last() else {
        return fail(value.span().start, "a key is missing");
    };
    let mut table = table;
    for key in parents {
        table = descend(table, key, true)?;
    }
    if table.entries.contains_key(last.get_ref()) {
        return fail(
            last.span().start,
            format!("duplicate key `{}`", dotted(keys)),
        );
    }
    table.insert(last, value, false);
    Ok(())
}

/// Closes an inline table and the tables its dotted keys made.
fn close(table: &mut Table) {
    table.kind = Kind::Inline;
    for entry in table.entries.values_mut() {
        if let Value::Table(t) = &mut entry.value.value
            && t.kind == Kind::Dotted
        {
            close(t);
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    /// Values, keys and headers the document may still have.
    left: usize,
}

fn is_bare_key(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

impl<'a> Parser<'a> {
    /// Counts `n` more values (keys, headers) at `at` against the bound.
    fn spend(&mut self, n: usize, at: usize) -> Parsed<()> {
        match self.left.checked_sub(n) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => fail(at, "too many values: more than this document may hold"),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// A comment, if one starts here, up to the end of its line.
    fn skip_comment(&mut self) -> Parsed<()> {
        if self.peek() != Some(b'#') {
            return Ok(());
        }
        let rest = self.rest();
        let len = rest.find(['\n', '\r']).unwrap_or(rest.len());
        if let Some((i, c)) = rest[..len].char_indices().find(|&(_, c)| is_control(c)) {
            return fail(self.pos + i, control_message(c, "in a comment"));
        }
        self.pos += len;
        Ok(())
    }

    /// A newline (`\n` or `\r\n`), if one is here.
    fn newline(&mut self) -> Parsed<bool> {
        match self.peek() {
            Some(b'\n') => self.pos += 1,
            Some(b'\r') if self.rest().starts_with("\r\n") => self.pos += 2,
            Some(b'\r') => {
                return fail(self.pos, "a carriage return must be followed by a newline");
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whitespace, comments and newlines.
    fn skip_blank_lines(&mut self) -> Parsed<()> {
        loop {
            self.skip_ws();
            self.skip_comment()?;
            if !self.newline()? {
                return Ok(());
            }
        }
    }

    /// The rest of a line after a header or a key/value pair.
    fn end_of_line(&mut self) -> Parsed<()> {
        self.skip_ws();
        self.skip_comment()?;
        if self.peek().is_none() || self.newline()? {
            return Ok(());
        }
        fail(
            self.pos,
            "expected a newline after the value (one key = value per line)",
        )
    }

    /// A key: bare or quoted parts separated by dots. `depth` is how deep
    /// the table it goes into is.
    fn key(&mut self, depth: usize) -> Parsed<Vec<Spanned<String>>> {
        let mut parts = Vec::new();
        loop {
            self.skip_ws();
            let start = self.pos;
            let name = match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    self.basic_string()?
                }
                Some(b'\'') => {
                    self.pos += 1;
                    self.literal_string()?
                }
                Some(b) if is_bare_key(b) => {
                    while self.peek().is_some_and(is_bare_key) {
                        self.pos += 1;
                    }
                    self.text[start..self.pos].to_owned()
                }
                _ => return fail(self.pos, "expected a key"),
            };
            parts.push(Spanned::new(start..self.pos, name));
            if depth.saturating_add(parts.len()) > MAX_DEPTH {
                return fail(start, too_deep());
            }
            self.skip_ws();
            if !self.eat(b'.') {
                return Ok(parts);
            }
        }
    }

    /// A value, `depth` levels deep.
    fn value(&mut self, depth: usize) -> Parsed<Spanned<Value>> {
        let start = self.pos;
        if depth > MAX_DEPTH {
            return fail(start, too_deep());
        }
        self.spend(1, start)?;
        let value = match self.peek() {
            Some(b'"') if self.rest().starts_with("\"\"\"") => {
                self.pos += 3;
                Value::String(self.multiline_string(b'"')?)
            }
            Some(b'"') => {
                self.pos += 1;
                Value::String(self.basic_string()?)
            }
            Some(b'\'') if self.rest().starts_with("'''") => {
                self.pos += 3;
                Value::String(self.multiline_string(b'\'')?)
            }
            Some(b'\'') => {
                self.pos += 1;
                Value::String(self.literal_string()?)
            }
            Some(b'[') => {
                self.pos += 1;
                self.array(depth)?
            }
            Some(b'{') => {
                self.pos += 1;
                self.inline_table(depth)?
            }
            _ => self.scalar()?,
        };
        Ok(Spanned::new(start..self.pos, value))
    }

    /// After `[`: values, commas, and blank lines or comments between them.
    fn array(&mut self, depth: usize) -> Parsed<Value> {
        let mut items = Vec::new();
        loop {
            self.skip_blank_lines()?;
            if self.eat(b']') {
                return Ok(Value::Array(items));
            }
            items.push(self.value(depth.saturating_add(1))?);
            self.skip_blank_lines()?;
            if self.eat(b']') {
                // A `Vec` grows to room for 4 at its first push: nested
                // one-item arrays would cost 4 values each.
                items.shrink_to_fit();
                return Ok(Value::Array(items));
            }
            if !self.eat(b',') {
                return fail(self.pos, "expected `,` or `]` in the array");
            }
        }
    }

    /// After `{`: `key = value` pairs separated by commas (TOML 1.1: on
    /// several lines, with comments and a trailing comma; the `toml` crate
    /// also takes newlines around `=` there, so this does too).
    fn inline_table(&mut self, depth: usize) -> Parsed<Value> {
        let mut table = Table::new(Kind::Dotted);
        loop {
            self.skip_blank_lines()?;
            if self.eat(b'}') {
                break;
            }
            let at = self.pos;
            let keys = self.key(depth)?;
            self.spend(keys.len(), at)?;
            self.skip_blank_lines()?;
            if !self.eat(b'=') {
                return fail(self.pos, "expected `=` after the key");
            }
            self.skip_blank_lines()?;
            let value = self.value(depth.saturating_add(keys.len()))?;
            insert_dotted(&mut table, &keys, value)?;
            self.skip_blank_lines()?;
            if self.eat(b'}') {
                break;
            }
            if !self.eat(b',') {
                return fail(self.pos, "expected `,` or `}` in the inline table");
            }
        }
        close(&mut table);
        Ok(Value::Table(table))
    }

    /// The next character of a string, or the error if the text ends.
    fn string_char(&mut self) -> Parsed<char> {
        match self.rest().chars().next() {
            Some(c) => {
                self.pos += c.len_utf8();
                Ok(c)
            }
            None => fail(self.pos, "the string is not closed"),
        }
    }

    /// After `"`: up to the closing `"`.
    fn basic_string(&mut self) -> Parsed<String> {
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.string_char()? {
                '"' => return Ok(out),
                '\\' => out.push(self.escape()?),
                '\n' | '\r' => {
                    return fail(
                        at,
                        "a newline in a string (a multi-line string uses \"\"\")",
                    );
                }
                c if is_control(c) => {
                    return fail(at, control_message(c, "in a string"));
                }
                c => out.push(c),
            }
        }
    }

    /// After `"""` (`quote` `"`, with escapes) or `'''`: up to the
    /// closing three quotes; a newline right after the opening ones is
    /// not part of the string.
    fn multiline_string(&mut self, quote: u8) -> Parsed<String> {
        self.newline()?;
        let mut out = String::new();
        loop {
            if let Some(done) = self.closing(quote, &mut out)? {
                return Ok(done);
            }
            let at = self.pos;
            match self.string_char()? {
                '\\' if quote == b'"' && self.line_ending_backslash()? => {}
                '\\' if quote == b'"' => out.push(self.escape()?),
                '\r' => {
                    self.pos = at;
                    self.newline()?;
                    out.push_str("\r\n");
                }
                c if is_control(c) && c != '\n' => {
                    return fail(at, control_message(c, "in a string"));
                }
                c => out.push(c),
            }
        }
    }

    /// At `quote`s in a multi-line string: three close it, and up to two
    /// more before them belong to the string.
    fn closing(&mut self, quote: u8, out: &mut String) -> Parsed<Option<String>> {
        let run = self.rest().bytes().take_while(|&b| b == quote).count();
        if run < 3 {
            return Ok(None);
        }
        if run > 5 {
            return fail(
                self.pos,
                "too many quotes at the end of a multi-line string",
            );
        }
        for _ in 3..run {
            out.push(char::from(quote));
        }
        self.pos += run;
        Ok(Some(std::mem::take(out)))
    }

    /// After a `\` in a multi-line basic string: if only whitespace is
    /// left on its line, skips it and every blank that follows.
    fn line_ending_backslash(&mut self) -> Parsed<bool> {
        let rest = self.rest();
        let blank = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        if !matches!(rest.as_bytes().get(blank), Some(b'\n' | b'\r')) {
            return Ok(false);
        }
        self.pos += blank;
        loop {
            self.skip_ws();
            if !self.newline()? {
                return Ok(true);
            }
        }
    }

    /// After `\`: one escape.
    fn escape(&mut self) -> Parsed<char> {
        let at = self.pos.saturating_sub(1);
        let digits = match self.string_char()? {
            'b' => return Ok('\u{8}'),
            't' => return Ok('\t'),
            'n' => return Ok('\n'),
            'f' => return Ok('\u{c}'),
            'r' => return Ok('\r'),
            '"' => return Ok('"'),
            '\\' => return Ok('\\'),
            'e' => return Ok('\u{1b}'),
            'x' => 2,
            'u' => 4,
            'U' => 8,
            c => {
                return fail(
                    at,
                    format!(
                        "invalid escape `\\{}` (TOML has \\b \\t \\n \\f \\r \\e \\\" \\\\ \\xXX \\uXXXX \\UXXXXXXXX)",
                        c.escape_debug()
                    ),
                );
            }
        };
        let hex = self.rest().get(..digits).unwrap_or_default();
        let code = match hex.bytes().all(|b| b.is_ascii_hexdigit()) && hex.len() == digits {
            true => u32::from_str_radix(hex, 16).ok(),
            false => None,
        };
        let Some(c) = code.and_then(char::from_u32) else {
            return fail(
                at,
                format!("invalid escape: expected {digits} hex digits of a Unicode scalar value"),
            );
        };
        self.pos += digits;
        Ok(c)
    }

    /// After `'`: up to the closing `'`, no escapes.
    fn literal_string(&mut self) -> Parsed<String> {
        let start = self.pos;
        loop {
            let at = self.pos;
            match self.string_char()? {
                '\'' => return Ok(self.text[start..at].to_owned()),
                '\n' | '\r' => {
                    return fail(at, "a newline in a string (a multi-line string uses ''')");
                }
                c if is_control(c) => {
                    return fail(at, control_message(c, "in a string"));
                }
                _ => {}
            }
        }
    }

    /// A boolean or a number.
    fn scalar(&mut self) -> Parsed<Value> {
        let start = self.pos;
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_+-.:".contains(c)))
            .unwrap_or(rest.len());
        let token = &rest[..len];
        self.pos += len;
        if token.is_empty() {
            return fail(start, "expected a value");
        }
        let b = token.as_bytes();
        let date = b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
        let time = b.len() >= 3 && b[..2].iter().all(u8::is_ascii_digit) && b[2] == b':';
        match token {
            "true" => Ok(Value::Boolean(true)),
            "false" => Ok(Value::Boolean(false)),
            _ if date || time => fail(
                start,
                "dates and times are not supported in a wasmgate config (write them as strings)",
            ),
            _ if is_float(token) => Ok(Value::Float(token.replace('_', ""))),
            _ => match integer(token) {
                Some(Some(n)) => Ok(Value::Integer(n)),
                Some(None) => fail(start, format!("the integer {token} is too large")),
                None => fail(
                    start,
                    format!("invalid value `{token}` (a string needs quotes)"),
                ),
            },
        }
    }
}

fn too_deep() -> String {
    format!("nested more than {MAX_DEPTH} levels deep")
}

/// A control character TOML refuses raw in comments and strings: C0 but
/// tab, and DEL. C1 (U+0080 to U+009F) is allowed, as any other Unicode.
pub(crate) fn is_control(c: char) -> bool {
    matches!(c, '\0'..='\x08' | '\x0a'..='\x1f' | '\x7f')
}

fn control_message(c: char, place: &str) -> String {
    format!(
        "a raw control character ({}) is not allowed {place}; inside a string write it as an escape (\"\\u{:04x}\")",
        c.escape_debug(),
        u32::from(c)
    )
}

/// Whether `digits` is digits of `radix` with single `_` between them.
fn digits_ok(digits: &str, radix: u32) -> bool {
    let b = digits.as_bytes();
    !b.is_empty()
        && b.first().is_some_and(|&c| char::from(c).is_digit(radix))
        && b.last().is_some_and(|&c| char::from(c).is_digit(radix))
        && b.windows(2).all(|w| !(w[0] == b'_' && w[1] == b'_'))
        && b.iter()
            .all(|&c| c == b'_' || char::from(c).is_digit(radix))
}

/// A decimal integer without leading zeros (the integer part of a float too).
fn decimal_ok(digits: &str) -> bool {
    digits_ok(digits, 10) && (digits == "0" || !digits.starts_with('0'))
}

/// `token` as an integer: `None` if it is not one, `Some(None)` if it is
/// too large for 128 bits.
fn integer(token: &str) -> Option<Option<i128>> {
    let (negative, unsigned) = match token.as_bytes().first() {
        Some(b'-') => (true, &token[1..]),
        Some(b'+') => (false, &token[1..]),
        _ => (false, token),
    };
    let prefixed = [("0x", 16), ("0o", 8), ("0b", 2)]
        .into_iter()
        .find_map(|(p, radix)| unsigned.strip_prefix(p).map(|d| (d, radix)));
    let (digits, radix) = match prefixed {
        // No sign before 0x, 0o, 0b.
        Some((d, radix)) if unsigned.len() == token.len() && digits_ok(d, radix) => (d, radix),
        Some(_) => return None,
        None if decimal_ok(unsigned) => (unsigned, 10),
        None => return None,
    };
    let mut n: i128 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = i128::from(c.to_digit(radix)?);
        let next = n.checked_mul(i128::from(radix));
        let next = match negative {
            true => next.and_then(|n| n.checked_sub(d)),
            false => next.and_then(|n| n.checked_add(d)),
        };
        let Some(next) = next else {
            return Some(None);
        };
        n = next;
    }
    Some(Some(n))
}

/// Whether `token` is a TOML float.
fn is_float(token: &str) -> bool {
    let unsigned = token.strip_prefix(['+', '-']).unwrap_or(token);
    if unsigned == "inf" || unsigned == "nan" {
        return true;
    }
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let exponent_ok =
        exponent.is_none_or(|e| digits_ok(e.strip_prefix(['+', '-']).unwrap_or(e), 10));
    decimal_ok(whole)
        && fraction.is_none_or(|f| digits_ok(f, 10))
        && (fraction.is_some() || exponent.is_some())
        && exponent_ok
}

/// `value` as JSON: tables' keys in the order of their names, floats as
/// written (`inf` and `nan`, which JSON lacks, as `null`).
pub(crate) fn to_json(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => json_string(s, out),
        Value::Integer(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Float(f) => {
            let f = f.strip_prefix('+').unwrap_or(f);
            match f.trim_start_matches('-') {
                "inf" | "nan" => out.push_str("null"),
                _ => out.push_str(f),
            }
        }
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                to_json(item.get_ref(), out);
            }
            out.push(']');
        }
        Value::Table(table) => {
            out.push('{');
            for (i, (key, value)) in table.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(key, out);
                out.push(':');
                to_json(value, out);
            }
            out.push('}');
        }
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

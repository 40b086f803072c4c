//! The config TOML parser (`toml.rs`) against the `toml` crate (a
//! dev-dependency): every document here must parse to the same values in
//! both, or be refused by both. Hand-picked edge cases, then every TOML
//! file of the repository and every ```toml block of its Markdown.

use std::path::Path;

use super::toml::{self, MAX_DEPTH, Value};

/// Whether `mine` is the value `theirs`.
fn same(mine: &Value, theirs: &::toml::Value) -> bool {
    use ::toml::Value as T;
    match (mine, theirs) {
        (Value::String(a), T::String(b)) => a == b,
        (Value::Integer(a), T::Integer(b)) => *a == i128::from(*b),
        (Value::Float(a), T::Float(b)) => {
            let a = a.replace("inf", "infinity");
            match a.parse::<f64>() {
                Ok(a) if a.is_nan() => b.is_nan(),
                Ok(a) => a == *b && a.is_sign_negative() == b.is_sign_negative(),
                Err(_) => false,
            }
        }
        (Value::Boolean(a), T::Boolean(b)) => a == b,
        (Value::Array(a), T::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x.get_ref(), y))
        }
        (Value::Table(a), T::Table(b)) => same_table(a, b),
        _ => false,
    }
}

fn same_table(mine: &toml::Table, theirs: &::toml::Table) -> bool {
    let mine: Vec<(&str, &Value)> = mine.iter().collect();
    mine.len() == theirs.len()
        && mine
            .iter()
            .all(|(k, v)| theirs.get(*k).is_some_and(|t| same(v, t)))
}

/// `Ok` when both parsers agree on `text`.
fn agree(text: &str) -> Result<(), String> {
    let theirs = text.parse::<::toml::Table>();
    match (toml::parse(text), theirs) {
        (Ok(mine), Ok(theirs)) if same_table(&mine, &theirs) => Ok(()),
        (Ok(mine), Ok(theirs)) => Err(format!("different values:\n{mine:?}\n{theirs:?}")),
        (Err(_), Err(_)) => Ok(()),
        // No key takes a date: wasmgate refuses them.
        (Err(e), Ok(_)) if e.message.starts_with("dates and times") => Ok(()),
        // A table a header made, even as the parent of another (`b` of
        // `[a.b.c]`), takes no dotted keys. The crate refuses `[a.b.c]`
        // `[a]` `b.d = 1` but takes `b.x.y = 1`; wasmgate refuses both.
        (Err(e), Ok(_)) if e.message.ends_with("a dotted key cannot add to it") => Ok(()),
        // Its integers are `i64`; wasmgate reads 128 bits so that a range
        // error can show the number written.
        (Ok(_), Err(e))
            if e.message().contains("value was too large") || e.message().contains("as i128") =>
        {
            Ok(())
        }
        // Floats are kept as written, not read into an `f64`.
        (Ok(_), Err(e)) if e.message().contains("floating-point number overflowed") => Ok(()),
        (Ok(_), Err(e)) => Err(format!("only the toml crate refuses it: {e}")),
        (Err(e), Ok(_)) => Err(format!(
            "only wasmgate refuses it: {} at byte {}",
            e.message, e.at
        )),
    }
}

/// Documents both must accept, with the same values.
const VALID: &[&str] = &[
    "",
    "# only a comment\n",
    "a = 1\r\nb = 2\r\n",
    "a = 1 # comment\n[t] # comment\nb = 'x' # comment",
    "bare_key-9 = 1\n\"quoted key\" = 2\n'literal key' = 3\n\"\" = 4\n1234 = 5\n",
    "a.b.c = 1\na.b.d = 2\na . e = 3\n\"x\".'y'.z = 4\n",
    "[a.b]\nc = 1\n[a]\nd = 2\n",
    "[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple.texture]\nsmooth = true\n",
    "[ a . b ]\nc = 1\n[[ x . y ]]\nz = 1\n",
    "[[f]]\nn = 1\n[f.sub]\nm = 2\n[[f]]\nn = 3\n[[f.list]]\nq = 1\n[[f.list]]\nq = 2\n",
    "[[a]]\n[[a]]\n[[a]]\n",
    "[a]\n[a.b]\n[a.c]\n",
    "s = \"tab\\there \\\"q\\\" \\\\ \\b\\f\\n\\r \\u00e9 \\U0001F600\"\n",
    "s = 'C:\\path\\no\\escape'\n",
    "s = \"\"\"\nfirst newline trimmed\n  second\"\"\"\n",
    "s = \"\"\"line \\\n   continued \\\n\n   again\"\"\"\n",
    "s = \"\"\"ends in quotes\"\"\"\"\"\ns2 = \"\"\"one\"\"\"\"\n",
    "s = '''\nliteral\\n 'quoted' ''''\n",
    "s = \"\"\"\"\"\"\nt = ''''''\n",
    "s = \"\"\"a\r\nb\"\"\"\n",
    "s = \"é ü 漢字 \\u0000\"\n",
    "i = [0, +1, -1, 1_000, 0xdead_BEEF, 0o755, 0b1010, -0, +0, 9_223_372_036_854_775_807, -9223372036854775808]\n",
    "f = [1.0, -2.5, 3e10, 1E-5, 6.02e+23, 1_000.000_1, 0.0, -0.0, +0.5, 1e0_1, inf, -inf, +inf, nan, -nan, 0e0]\n",
    "b = [true, false]\n",
    "a = [ ]\nb = [1, 'two', [3], {x = 4}]\nc = [\n  1, # one\n  2,\n]\nd = [[1, 2], [\"a\"]]\n",
    "t = {}\nu = { a = 1, b.c = 2, b.d = { e = 3 } }\nv = { \"quoted\" = [1, { x = 'y' }] }\n",
    "[a]\nb = { c = 1 }\n[d]\n",
    "a = 1 \t\n\t[t]\t\n\tb = 2\t",
    "[server]\nlisten = \"127.0.0.1:8080\"\nmax_body = \"1MiB\"\n[limits]\nfuel = 100_000_000\n",
    "s = \"\\x41\\e\\xff\"\n",
    "a = { b = 1, }\nc = { d = 1\n}\ne = {\n  f = 1, # comment\n  g = [\n 2\n ],\n}\n",
    "\u{feff}a = 1\n",
    "[[middleware]]\nname = 'v'\nconfig = { secret_env = \"X\", nested = { list = [1, 2.5, true, \"s\"] } }\n",
];

/// Documents both must refuse.
const INVALID: &[&str] = &[
    "a = 1\na = 2\n",
    "a = 1\n\"a\" = 2\n",
    "a.b = 1\na.b = 2\n",
    "a.b = 1\na.b.c = 2\n",
    "a = 1\na.b = 2\n",
    "[a]\n[a]\n",
    "[a]\nb = 1\n[a.b]\n",
    "[a.b]\n[a]\nb = 1\n",
    "a.b = 1\n[a]\n",
    "[a]\nb.c = 1\n[a.b]\n",
    "[fruit]\napple.color = 'red'\n[fruit.apple]\n",
    "[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n",
    "a = {}\n[a]\n",
    "a = { b = 1 }\na.c = 2\n",
    "a = { b = 1 }\n[a.c]\n",
    "a = { b = { c = 1 } }\n[a.b.d]\n",
    "a = { b = 1, b = 2 }\n",
    "a = { b = {}, b.c = 1 }\n",
    "a = [1]\n[[a]]\n",
    "a = []\n[[a]]\n",
    "[[a]]\n[a]\n",
    "[a]\n[[a]]\n",
    "a = 1\n[a]\n",
    "a = 1\n[a.b]\n",
    "a = 1 b = 2\n",
    "a =\n",
    "= 1\n",
    "a\n",
    "a = 1\n[\n",
    "[a\n",
    "[[a]\n",
    "[a]]\n",
    "[ [a]]\n",
    "[]\n",
    "[a.]\n",
    "a. = 1\n",
    ".a = 1\n",
    "a..b = 1\n",
    "a b = 1\n",
    "a = \"unterminated\n",
    "a = 'unterminated\n",
    "a = \"\"\"unterminated\n",
    "a = '''unterminated\n",
    "a = \"bad \\q escape\"\n",
    "a = \"short \\u00e\"\n",
    "a = \"surrogate \\uD800\"\n",
    "a = \"too big \\U00110000\"\n",
    "a = \"new\nline\"\n",
    "a = 'new\nline'\n",
    "a = \"\"\"six\"\"\"\"\"\"\n",
    "a = \"tab\u{1}\"\n",
    "a = 1 # bell \u{7}\n",
    "a = \"\"\"bare\rcr\"\"\"\n",
    "a = 1\rb = 2\n",
    "a = 01\n",
    "a = +0x1\n",
    "a = 0x\n",
    "a = 1__0\n",
    "a = _1\n",
    "a = 1_\n",
    "a = 0x_1\n",
    "a = 0xG\n",
    "a = 0o8\n",
    "a = 0b2\n",
    "a = 0X1\n",
    "a = 1.\n",
    "a = .1\n",
    "a = 1.e5\n",
    "a = 1e\n",
    "a = 1e_1\n",
    "a = 01.5\n",
    "a = 1.5.5\n",
    "a = 1_.5\n",
    "a = infinity\n",
    "a = NaN\n",
    "a = True\n",
    "a = bare\n",
    "a = 127.0.0.1:8080\n",
    "a = [1 2]\n",
    "a = [,]\n",
    "a = [1,,2]\n",
    "a = [1\n",
    "a = { b }\n",
    "a = \"\\x4\"\n",
    "a = \"\\xG1\"\n",
    "a = { b = 1,, }\n",
    "a = { , b = 1 }\n",
    "a = 1\n\u{feff}b = 1\n",
    "a = { , }\n",
    "a = {b = 1 c = 2}\n",
];

/// Documents where only agreement matters (corners of table definition).
const EITHER: &[&str] = &[
    "[a.b.c]\n[a]\nb.d = 1\n",
    "[a]\nb.c.d = 1\n[a.b.c.e]\nf = 1\n",
    "[a]\nb.c = 1\n[a.b.d]\n[a.b]\n",
    "a.b = 1\n[a.c]\n",
    "[[a]]\nb.c = 1\n[a.b.d]\n",
    "[[a]]\nb = { c = 1 }\n[a.b.d]\n",
    "[a]\n[a.b]\n[a]\n",
    "[a.b]\n[a.b.c]\n[a]\nb.d = 1\n",
    "[a.b.c]\n[a]\nb.x.y = 1\n",
    "x = [[1], [{}]]\n",
    "a = { b.c = 1, b.d = 2 }\n",
    "a = { b.c = 1, b = 2 }\n",
    "\"a\".b = 1\na.'b'.c = 1\n",
    "'a.b' = 1\na.b = 2\n",
    "a = 0xffffffffffffffff\n",
    "a = -0x1\n",
    "a = 1e400\n",
    "s = \"\"\"\\  \n  x\"\"\"\n",
    "s = \"\"\"x\\ y\"\"\"\n",
    "a = [ # c\n 1 # d\n , # e\n ]\n",
    "a = 1 #\u{7f}\n",
    "a = \"\u{7f}\"\n",
];

#[test]
fn the_parser_agrees_with_the_toml_crate_on_corners() {
    let wrong: Vec<String> = EITHER
        .iter()
        .filter_map(|text| agree(text).err().map(|e| format!("{text:?}: {e}")))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_parser_agrees_with_the_toml_crate_on_edge_cases() {
    let mut wrong = Vec::new();
    for (valid, text) in VALID
        .iter()
        .map(|t| (true, t))
        .chain(INVALID.iter().map(|t| (false, t)))
    {
        if toml::parse(text).is_ok() != valid {
            wrong.push(format!(
                "{text:?}: should be {}",
                if valid { "accepted" } else { "refused" }
            ));
        }
        if let Err(e) = agree(text) {
            wrong.push(format!("{text:?}: {e}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every `.toml` file under `dir`, but build output.
fn toml_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() && !matches!(name.to_str(), Some("target" | ".git" | "node_modules")) {
            toml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

#[test]
fn the_parser_agrees_with_the_toml_crate_on_the_repository_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    toml_files(root, &mut files);
    let mut documents: Vec<(String, String)> = files
        .iter()
        .filter_map(|f| Some((f.display().to_string(), std::fs::read_to_string(f).ok()?)))
        .collect();
    for md in [
        "README.md",
        "ARCHITECTURE.md",
        "fuzz/README.md",
        "boards/README.md",
    ] {
        let Ok(text) = std::fs::read_to_string(root.join(md)) else {
            continue;
        };
        for (i, block) in text.split("```toml\n").skip(1).enumerate() {
            let block = block.split("```").next().unwrap_or_default();
            documents.push((format!("{md} block {i}"), block.to_owned()));
        }
    }
    assert!(documents.len() > 20, "{}", documents.len());
    let boards = documents
        .iter()
        .filter(|(n, _)| n.contains("boards/"))
        .count();
    assert!(boards >= 7, "{boards}");
    let wrong: Vec<String> = documents
        .iter()
        .filter_map(|(name, text)| agree(text).err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn dates_and_deep_nesting_are_refused_with_a_line_and_column() {
    for text in [
        "a = 1979-05-27T07:32:00Z\n",
        "a = 1979-05-27\n",
        "a = 07:32:00\n",
    ] {
        let e = toml::parse(text).unwrap_err();
        assert!(e.message.contains("dates and times"), "{text}: {e:?}");
        assert_eq!(e.at, 4);
    }
    let deep = format!("a = {}{}\n", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(toml::parse(&deep).is_ok());
    for text in [
        format!("a = {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
        format!("a = {}\n", "{ b = ".repeat(100_000)),
        format!("{} = 1\n", vec!["k"; 100].join(".")),
        format!("[{}]\n", vec!["k"; 100].join(".")),
        format!(
            "[{}]\n{} = 1\n",
            vec!["k"; 20].join("."),
            vec!["k"; 20].join(".")
        ),
    ] {
        let e = toml::parse(&text).unwrap_err();
        assert!(e.message.contains("levels deep"), "{e:?}");
    }
    // Line and column, in the config's error.
    let e = super::Config::parse(
        "\n[server]\nmax_body = 1__0\n",
        "t.toml",
        Path::new("/"),
        None,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.toml:3: column 12: invalid value `1__0` (a string needs quotes)"
    );
}

#[test]
fn middleware_config_json_escapes_like_serde_json() {
    let text = "c = { s = \"q\\\" b\\\\ n\\n t\\t \\u0001 \\u007f é\", i = -5, f = 2.5e3, x = +1.5, n = nan, l = [true, {}], \"k\\n\" = 1 }\n";
    let table = toml::parse(text).unwrap();
    let value = table.iter().next().unwrap().1;
    let mut mine = String::new();
    toml::to_json(value, &mut mine);
    let theirs: ::toml::Table = text.parse().unwrap();
    let theirs = serde_json::to_string(&theirs["c"]).unwrap();
    let theirs_table_s = |text: &str| {
        let t: ::toml::Table = text.parse().unwrap();
        t["c"]["s"].clone()
    };
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    assert_eq!(parse(&mine), parse(&theirs), "{mine}\n{theirs}");
    // Strings and keys exactly as serde_json writes them.
    let s = serde_json::to_string(&theirs_table_s(text)).unwrap();
    assert!(mine.contains(&format!("\"s\":{s}")), "{mine}");
    assert!(mine.contains(r#""k\n":1"#), "{mine}");
}

/// Small changes to the documents above (a byte deleted, doubled or
/// replaced by one of TOML's delimiters), from a fixed seed: both parsers
/// must still agree. A bounded, deterministic taste of the `toml` fuzz
/// target, run with every `cargo test` (60,000 rounds each of nine other
/// seeds agreed when it was written).
#[test]
fn the_parser_agrees_with_the_toml_crate_on_mutated_documents() {
    const DELIMITERS: &[u8] = b"[]{}=.,\"'#\\\n\r \t_+-0xe:";
    let mut rng = fastrand::Rng::with_seed(15);
    let seeds: Vec<&str> = VALID.iter().chain(INVALID).chain(EITHER).copied().collect();
    let mut wrong = Vec::new();
    for _ in 0..4000 {
        let mut bytes = seeds[rng.usize(..seeds.len())].as_bytes().to_vec();
        for _ in 0..rng.usize(1..=3) {
            let at = rng.usize(..=bytes.len());
            match rng.u8(..3) {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 if at < bytes.len() => bytes.insert(at, bytes[at]),
                _ => bytes.insert(at, DELIMITERS[rng.usize(..DELIMITERS.len())]),
            }
        }
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        if let Err(e) = agree(&text) {
            wrong.push(format!("{text:?}: {e}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn tables_of_few_and_of_many_keys_agree_in_order_lookup_and_duplicates() {
    // Keys in a scrambled order, around the size where a table's entries
    // move from a sorted Vec to a map.
    for n in [1usize, 7, 8, 9, 40] {
        let keys: Vec<String> = (0..n).map(|i| format!("k{}", (i * 7919) % 1009)).collect();
        let body: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} = {i}"))
            .collect();
        let inline = format!("t = {{ {} }}\n", body.join(", "));
        let header = format!("[t]\n{}\n", body.join("\n"));
        for text in [&inline, &header] {
            agree(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let root = toml::parse(text).unwrap();
            let Some(toml::Value::Table(t)) = root.get("t") else {
                panic!("{text}");
            };
            let mut sorted = keys.clone();
            sorted.sort();
            let names: Vec<&str> = t.iter().map(|(k, _)| k).collect();
            assert_eq!(names, sorted, "{text}");
            for (i, k) in keys.iter().enumerate() {
                let want = i128::try_from(i).unwrap();
                assert!(
                    matches!(t.get(k), Some(toml::Value::Integer(v)) if *v == want),
                    "{k}"
                );
            }
            assert!(t.get("absent").is_none());
            let written: Vec<String> = t
                .clone()
                .into_entries()
                .into_iter()
                .map(|(k, _)| k.into_inner())
                .collect();
            assert_eq!(written, keys, "document order: {text}");
            // The first key again, last: a duplicate at every size.
            let again = match text == &inline {
                true => format!("t = {{ {}, {} = 0 }}\n", body.join(", "), keys[0]),
                false => format!("{text}{} = 0\n", keys[0]),
            };
            let e = toml::parse(&again).unwrap_err();
            assert!(e.message.contains("duplicate key"), "{again}: {e:?}");
            assert!(again.parse::<::toml::Table>().is_err());
        }
    }
}

#[test]
fn a_bounded_document_counts_its_values_keys_and_headers() {
    // A header (1), a key (1), an array (1) of two values (2), a dotted
    // key (2) and an inline table (1) with a key (1) and a value (1).
    let text = "[t]\nx = [1, 2]\na.b = { c = 3 }\n";
    assert!(toml::parse_bounded(text, 10).is_ok());
    let e = toml::parse_bounded(text, 9).unwrap_err();
    assert_eq!(
        e.message,
        "too many values: more than this document may hold"
    );
    assert_eq!(e.at, text.find("3 }").unwrap());
    assert!(toml::parse(text).is_ok());
}

//! Signed modules (`[signatures]`, README "Signing"), against a running
//! server: detached `MODULE.sig` files and Gojinn's signed-file format
//! (module ‖ signature ‖ `GJSIG`) verify and serve; unsigned (with
//! `require`), tampered, wrongly signed and malformed ones are refused
//! with 503 `module-unavailable` while the rest keeps serving; a changed
//! `.sig` reloads the module; configured functions, `functions_dir`
//! tenants and middleware are all checked; bad keys are config errors.
//! Signatures here are made with the crate directly, not with `wasmgate
//! sign` (tested in `keygen_and_sign_round_trip`), so that a server and a
//! signer agreeing on a wrong format would not pass.

mod common;

use std::path::{Path, PathBuf};

use common::{HELLO, Server, TempDir, function, wasmgate_in};
use ed25519_compact::{KeyPair, PublicKey, Seed, Signature};

/// A fixed key pair: `n` decides it.
fn key(n: u8) -> KeyPair {
    KeyPair::from_seed(Seed::new([n; 32]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sign(key: &KeyPair, message: &[u8]) -> [u8; 64] {
    *key.sk.sign(message, None)
}

/// `bytes` in Gojinn's signed format, signed by `key`.
fn gojinn(key: &KeyPair, bytes: &[u8]) -> Vec<u8> {
    let mut file = bytes.to_vec();
    file.extend(sign(key, bytes));
    file.extend(b"GJSIG");
    file
}

/// hello.wasm with one byte of its greeting changed: still a valid
/// module (it would answer "Jello"), so only its signature can refuse it.
fn tampered(hello: &[u8]) -> Vec<u8> {
    let at = hello
        .windows(5)
        .position(|w| w == b"Hello")
        .expect("hello.wasm holds its greeting");
    let mut bytes = hello.to_vec();
    bytes[at] = b'J';
    bytes
}

/// Writes `name` and, if `sig` is given, `name.sig` (hex and a newline).
fn put(dir: &TempDir, name: &str, bytes: &[u8], sig: Option<[u8; 64]>) -> PathBuf {
    let path = dir.write(name, bytes);
    if let Some(sig) = sig {
        dir.write(&format!("{name}.sig"), format!("{}\n", hex(&sig)));
    }
    path
}

fn hello() -> Vec<u8> {
    std::fs::read(function("hello.wasm")).unwrap()
}

/// `[server]` with `extra`, then `/hello` (a signed hello.wasm, which
/// [`signed_dir`] writes: what `assert_healthy` asks for) and `[signatures]`
/// trusting keys 1 and 3.
fn trusted_config(require: bool, extra: &str) -> String {
    format!(
        "[server]\nmodule_check_interval = \"0s\"\n{extra}\n{}[signatures]\ntrusted_keys = [\"{}\", \"{}\"]\nrequire = {require}\n",
        route("hello"),
        hex(&*key(1).pk),
        hex(&*key(3).pk),
    )
}

/// A fresh directory holding hello.wasm signed by key 1.
fn signed_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    put(&dir, "hello.wasm", &hello(), Some(sign(&key(1), &hello())));
    dir
}

/// Copies every file of `dir` into the server's directory.
fn files(dir: &TempDir) -> Vec<(String, PathBuf)> {
    std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), e.path())
        })
        .collect()
}

fn start(config: &str, dir: &TempDir) -> Server {
    let files = files(dir);
    let refs: Vec<(&str, PathBuf)> = files.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    Server::with_config(config, &refs)
}

fn route(name: &str) -> String {
    format!("[[function]]\nroute = \"/{name}\"\nmodule = \"{name}.wasm\"\n")
}

/// 503 `module-unavailable`, and the log says why (`because`).
fn assert_refused(s: &Server, path: &str, because: &str) {
    let r = s.get(path);
    r.assert_error(503, "module-unavailable");
    s.wait_for_log(because);
    s.assert_healthy();
}

#[test]
fn signed_modules_serve_and_the_others_are_refused_when_signatures_are_required() {
    let (trusted, untrusted) = (key(1), key(2));
    let hello = hello();
    let dir = signed_dir("sig-files");
    put(&dir, "signed.wasm", &hello, Some(sign(&trusted, &hello)));
    // Signed by the second trusted key.
    put(&dir, "second.wasm", &hello, Some(sign(&key(3), &hello)));
    put(&dir, "unsigned.wasm", &hello, None);
    put(
        &dir,
        "tampered.wasm",
        &tampered(&hello),
        Some(sign(&trusted, &hello)),
    );
    put(
        &dir,
        "untrusted.wasm",
        &hello,
        Some(sign(&untrusted, &hello)),
    );
    put(&dir, "gojinn.wasm", &gojinn(&trusted, &hello), None);
    let mut bad_gojinn = gojinn(&trusted, &hello);
    bad_gojinn[..hello.len()].copy_from_slice(&tampered(&hello));
    put(&dir, "gojinn-tampered.wasm", &bad_gojinn, None);
    put(
        &dir,
        "gojinn-untrusted.wasm",
        &gojinn(&untrusted, &hello),
        None,
    );
    put(&dir, "malformed.wasm", &hello, None);
    dir.write("malformed.wasm.sig", "not a signature\n");
    // The raw 64 bytes are a valid .sig too.
    put(&dir, "raw.wasm", &hello, None);
    dir.write("raw.wasm.sig", sign(&trusted, &hello));
    let names = [
        "signed",
        "second",
        "unsigned",
        "tampered",
        "untrusted",
        "gojinn",
        "gojinn-tampered",
        "gojinn-untrusted",
        "malformed",
        "raw",
    ];
    let routes: String = names.iter().map(|n| route(n)).collect();
    let s = start(&trusted_config(true, &routes), &dir);

    for ok in ["/signed", "/second", "/gojinn", "/raw"] {
        let r = s.get(ok);
        assert_eq!((r.status, r.text().as_str()), (200, HELLO), "{ok}: {r:?}");
    }
    s.wait_for_log("signature verified (Gojinn trailer) with trusted key");
    s.wait_for_log(&format!(
        "signature verified (.sig file) with trusted key {}",
        hex(&*key(3).pk)
    ));
    assert_refused(
        &s,
        "/unsigned",
        "unsigned.wasm: module refused: no signature: [signatures] require = true",
    );
    assert_refused(
        &s,
        "/tampered",
        "tampered.wasm.sig does not verify with any of the 2 trusted keys",
    );
    assert_refused(
        &s,
        "/untrusted",
        "untrusted.wasm.sig does not verify with any of the 2 trusted keys",
    );
    assert_refused(
        &s,
        "/gojinn-tampered",
        "gojinn-tampered.wasm: module refused: the Gojinn signature trailer does not verify",
    );
    assert_refused(
        &s,
        "/gojinn-untrusted",
        "gojinn-untrusted.wasm: module refused: the Gojinn signature trailer does not verify",
    );
    assert_refused(&s, "/malformed", "malformed signature file");
    // Refusals are not cached into successes, nor the reverse.
    s.get("/unsigned").assert_error(503, "module-unavailable");
    assert_eq!(s.get("/signed").status, 200);
}

/// Writes `path` with a modification time no other call gave: a file
/// rewritten with the same length within one tick of the file system's
/// clock would otherwise keep its stamp (the cache's test of a change).
fn replace(path: &Path, contents: impl AsRef<[u8]>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STEP: AtomicU64 = AtomicU64::new(1);
    std::fs::write(path, contents).unwrap();
    let step = STEP.fetch_add(1, Ordering::SeqCst);
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000 + step);
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(when))
        .unwrap();
}

#[test]
fn a_changed_signature_file_reloads_the_module_like_a_changed_module() {
    let hello = hello();
    let dir = signed_dir("sig-change");
    put(&dir, "app.wasm", &hello, Some(sign(&key(1), &hello)));
    let s = start(&trusted_config(true, &route("app")), &dir);
    assert_eq!(s.get("/app").status, 200);
    let sig = s.dir().join("app.wasm.sig");
    // Re-signed by a key that is not trusted: refused on the next request.
    replace(&sig, format!("{}\n", hex(&sign(&key(2), &hello))));
    assert_refused(&s, "/app", "app.wasm.sig does not verify");
    // Signed again by the trusted key: served again.
    replace(&sig, format!("{}\n", hex(&sign(&key(1), &hello))));
    let r = s.get("/app");
    assert_eq!((r.status, r.text().as_str()), (200, HELLO), "{r:?}");
    // The .sig removed: unsigned, refused.
    std::fs::remove_file(&sig).unwrap();
    assert_refused(&s, "/app", "app.wasm: module refused: no signature");
    // The module changed under its old signature: refused.
    replace(&sig, format!("{}\n", hex(&sign(&key(1), &hello))));
    assert_eq!(s.get("/app").status, 200);
    replace(&s.dir().join("app.wasm"), tampered(&hello));
    s.get("/app").assert_error(503, "module-unavailable");
}

#[test]
fn functions_dir_tenants_and_middleware_are_checked_too() {
    let hello = hello();
    let cors = std::fs::read(function("cors.wasm")).unwrap();
    let dir = signed_dir("sig-tenants");
    put(
        &dir,
        "tenants/good.wasm",
        &hello,
        Some(sign(&key(1), &hello)),
    );
    put(
        &dir,
        "tenants/bad.wasm",
        &hello,
        Some(sign(&key(2), &hello)),
    );
    put(&dir, "tenants/plain.wasm", &hello, None);
    put(
        &dir,
        "tenants/hello.wasm",
        &hello,
        Some(sign(&key(3), &hello)),
    );
    put(&dir, "signed-cors.wasm", &cors, Some(sign(&key(1), &cors)));
    put(&dir, "plain-cors.wasm", &cors, None);
    // (Middleware names other than the tenants': a functions_dir name that
    // a configured middleware holds as its KV namespace is not served.)
    let middleware = "[[middleware]]\nname = \"signed-mw\"\nmodule = \"signed-cors.wasm\"\nconfig = { allowed_origins = [\"https://a.example\"] }\n\
         [[middleware]]\nname = \"plain-mw\"\nmodule = \"plain-cors.wasm\"\nconfig = { allowed_origins = [\"https://a.example\"] }\n\
         [[function]]\nroute = \"/guarded\"\nmodule = \"hello.wasm\"\nmiddleware = [\"signed-mw\"]\n\
         [[function]]\nroute = \"/exposed\"\nmodule = \"hello.wasm\"\nmiddleware = [\"plain-mw\"]\n";
    let config = trusted_config(true, "functions_dir = \"tenants\"\n") + middleware;
    // `/hello` is configured (above the tenants) and signed by key 1.
    // The server's directory gets every file under its relative name.
    let mut copied: Vec<(String, PathBuf)> = Vec::new();
    for name in ["good", "bad", "plain", "hello"] {
        for ext in ["wasm", "wasm.sig"] {
            let p = dir.path().join(format!("tenants/{name}.{ext}"));
            if p.exists() {
                copied.push((format!("tenants/{name}.{ext}"), p));
            }
        }
    }
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            copied.push((e.file_name().to_string_lossy().into_owned(), e.path()));
        }
    }
    let refs: Vec<(&str, PathBuf)> = copied
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    let s = Server::with_config(&config, &refs);

    let r = s.get("/good");
    assert_eq!((r.status, r.text().as_str()), (200, HELLO), "{r:?}");
    assert_refused(&s, "/bad", "bad.wasm.sig does not verify");
    assert_refused(&s, "/plain", "plain.wasm: module refused: no signature");
    // A made-up tenant is still 404, not a signature error.
    s.get("/nobody").assert_error(404, "not-found");
    let r = s.get("/guarded");
    assert_eq!((r.status, r.text().as_str()), (200, HELLO), "{r:?}");
    let body = s.get("/exposed").assert_error(503, "module-unavailable");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("middleware `plain-mw`"),
        "{body}"
    );
    s.wait_for_log("plain-cors.wasm: module refused: no signature");
    s.assert_healthy();
}

#[test]
fn without_require_unsigned_modules_load_but_bad_signatures_never_do() {
    let hello = hello();
    let dir = signed_dir("sig-optional");
    put(&dir, "unsigned.wasm", &hello, None);
    put(&dir, "signed.wasm", &hello, Some(sign(&key(1), &hello)));
    put(&dir, "untrusted.wasm", &hello, Some(sign(&key(2), &hello)));
    put(
        &dir,
        "gojinn-untrusted.wasm",
        &gojinn(&key(2), &hello),
        None,
    );
    let routes: String = ["unsigned", "signed", "untrusted", "gojinn-untrusted"]
        .iter()
        .map(|n| route(n))
        .collect();
    let s = start(&trusted_config(false, &routes), &dir);
    for ok in ["/unsigned", "/signed"] {
        let r = s.get(ok);
        assert_eq!((r.status, r.text().as_str()), (200, HELLO), "{ok}: {r:?}");
    }
    s.wait_for_log("unsigned.wasm (native ABI), signature unsigned (allowed");
    assert_refused(&s, "/untrusted", "untrusted.wasm.sig does not verify");
    assert_refused(
        &s,
        "/gojinn-untrusted",
        "Gojinn signature trailer does not verify",
    );
}

#[test]
fn without_signatures_a_gojinn_file_loads_with_its_trailer_removed() {
    let hello = hello();
    let dir = TempDir::new("sig-none");
    put(&dir, "gojinn.wasm", &gojinn(&key(2), &hello), None);
    // Not checked without keys: even a malformed .sig is ignored.
    put(&dir, "hello.wasm", &hello, None);
    dir.write("hello.wasm.sig", "junk");
    let routes = route("gojinn") + &route("hello");
    let s = start(&routes, &dir);
    for ok in ["/gojinn", "/hello"] {
        let r = s.get(ok);
        assert_eq!((r.status, r.text().as_str()), (200, HELLO), "{ok}: {r:?}");
    }
    s.assert_healthy();
}

/// `wasmgate serve --config` with `toml` in a fresh directory: exit 2 and
/// one line naming the file and line.
fn config_error(toml: &str) -> String {
    let dir = TempDir::new("sig-config");
    dir.write("hello.wasm", hello());
    let config = dir.write("wasmgate.toml", toml);
    let out = wasmgate_in(
        dir.path(),
        ["serve".as_ref(), "--config".as_ref(), config.as_os_str()],
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    lines[0].to_owned()
}

#[test]
fn bad_trusted_keys_are_config_errors_naming_file_line_and_key() {
    let good = hex(&*key(1).pk);
    let head = format!("{}[signatures]\n", route("hello"));
    let line = config_error(&format!(
        "{head}trusted_keys = [\n  \"{good}\",\n  \"{}\",\n]\n",
        &good[..62]
    ));
    assert!(line.contains("wasmgate.toml:7:"), "{line}");
    assert!(line.contains("`trusted_keys` entry 2"), "{line}");
    assert!(line.contains(&good[..62]), "{line}");
    assert!(line.contains("62 characters, not 64 hex digits"), "{line}");
    let line = config_error(&format!("{head}trusted_keys = [\"{}zz\"]\n", &good[..62]));
    assert!(line.contains("wasmgate.toml:5:"), "{line}");
    assert!(
        line.contains("\"zz\" is not a pair of hex digits"),
        "{line}"
    );
    // The identity point: 64 hex digits, but no signature verifies with it.
    let line = config_error(&format!(
        "{head}trusted_keys = [\"01{}\"]\n",
        "0".repeat(62)
    ));
    assert!(line.contains("not a usable curve point"), "{line}");
    let line = config_error(&format!("{head}require = true\n"));
    assert!(line.contains("wasmgate.toml:5:"), "{line}");
    assert!(
        line.contains("`require = true` needs at least one key in `trusted_keys`"),
        "{line}"
    );
    let line = config_error(&format!("{head}require = \"yes\"\n"));
    assert!(line.contains("`require` must be true or false"), "{line}");
    let line = config_error(&format!("{head}trusted_key = [\"{good}\"]\n"));
    assert!(line.contains("unknown field `trusted_key`"), "{line}");
}

/// Runs `wasmgate ARGS` in `dir`.
fn cli(dir: &Path, args: &[&str]) -> common::Cli {
    wasmgate_in(dir, args)
}

#[test]
fn keygen_and_sign_round_trip() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("sig-cli");
    dir.write("hello.wasm", hello());
    let out = cli(dir.path(), &["keygen", "--out", "release.key"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let public = out.stdout.trim().to_owned();
    assert_eq!(public.len(), 64, "{out:?}");
    assert!(public.bytes().all(|b| b.is_ascii_hexdigit()), "{out:?}");
    let key_file = dir.path().join("release.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Gojinn's .priv format: the seed and the public key, in hex.
    let secret = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(secret.len(), 128);
    assert_eq!(&secret[64..], public);
    // Never overwritten.
    let again = cli(dir.path(), &["keygen", "--out", "release.key"]);
    assert_eq!(again.code, Some(1), "{again:?}");
    assert!(again.stderr.contains("already exists"), "{again:?}");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), secret);

    let out = cli(dir.path(), &["sign", "hello.wasm", "--key", "release.key"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains(&public), "{out:?}");
    // The .sig verifies with the crate, over the file's bytes.
    let sig = std::fs::read_to_string(dir.path().join("hello.wasm.sig")).unwrap();
    assert_eq!(sig.len(), 129);
    let sig: Vec<u8> = (0..64)
        .map(|i| u8::from_str_radix(&sig[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let pk: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&public[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    PublicKey::from_slice(&pk)
        .unwrap()
        .verify(hello(), &Signature::from_slice(&sig).unwrap())
        .unwrap();

    // `check` with the key trusted: verified; without it, unchecked; a
    // module signed by nobody is refused with `require`.
    dir.write(
        "wasmgate.toml",
        format!("[signatures]\ntrusted_keys = [\"{public}\"]\nrequire = true\n"),
    );
    let out = cli(
        dir.path(),
        &["check", "hello.wasm", "--config", "wasmgate.toml"],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "signature: verified (.sig file) with trusted key {public}"
        )),
        "{out:?}"
    );
    let out = cli(dir.path(), &["check", "hello.wasm"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains("signature: not checked (no [signatures] trusted_keys)"),
        "{out:?}"
    );
    dir.write("other.wasm", hello());
    let out = cli(dir.path(), &["check", ".", "--config", "wasmgate.toml"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout
            .contains("other.wasm: error: ./other.wasm: module refused: no signature"),
        "{out:?}"
    );
    assert!(out.stdout.contains("hello.wasm: ok"), "{out:?}");
    assert!(
        out.stderr.contains("1 of 2 module(s) failed the check"),
        "{out:?}"
    );

    // A wrong key file: one clear line.
    dir.write("bad.key", "abcd");
    let out = cli(dir.path(), &["sign", "hello.wasm", "--key", "bad.key"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("bad.key: not an Ed25519 key file"),
        "{out:?}"
    );
    // Usage errors.
    for args in [
        &["keygen"][..],
        &["sign", "hello.wasm"],
        &["sign", "--key", "k"],
    ] {
        assert_eq!(cli(dir.path(), args).code, Some(2), "{args:?}");
    }
}

#[test]
fn sign_gojinn_writes_a_file_gojinn_and_wasmgate_verify() {
    let dir = TempDir::new("sig-gojinn");
    dir.write("hello.wasm", hello());
    let key_file = dir.write(
        "release.key",
        format!("{}{}", hex(&[7; 32]), hex(&*key(7).pk)),
    );
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let out = cli(
        dir.path(),
        &["sign", "hello.wasm", "--key", "release.key", "--gojinn"],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains(&hex(&*key(7).pk)), "{out:?}");
    assert!(out.stdout.contains("hello.signed.wasm"), "{out:?}");
    // No .sig, no temporary file left; the module itself is unchanged.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["hello.signed.wasm", "hello.wasm", "release.key"]);
    assert_eq!(
        std::fs::read(dir.path().join("hello.wasm")).unwrap(),
        hello()
    );
    // Gojinn's rules (`sovereign.VerifyWasm`): ends with GJSIG, at least
    // 69 bytes; the 64 bytes before GJSIG are the signature of exactly
    // the bytes before them, which are the module.
    let signed = std::fs::read(dir.path().join("hello.signed.wasm")).unwrap();
    assert!(signed.len() >= 69 && signed.ends_with(b"GJSIG"));
    let (body, trailer) = signed.split_at(signed.len() - 69);
    assert_eq!(body, hello());
    PublicKey::from_slice(&*key(7).pk)
        .unwrap()
        .verify(body, &Signature::from_slice(&trailer[..64]).unwrap())
        .unwrap();
    // The same bytes as a signature made with the crate.
    assert_eq!(signed, gojinn(&key(7), &hello()));

    // It serves with the key trusted and signatures required; a tampered
    // byte in the module part is refused.
    let serve = TempDir::new("sig-gojinn-serve");
    put(
        &serve,
        "hello.wasm",
        &hello(),
        Some(sign(&key(1), &hello())),
    );
    serve.write("signed.wasm", &signed);
    let mut bad = signed.clone();
    let at = bad.windows(5).position(|w| w == b"Hello").unwrap();
    bad[at] = b'J';
    serve.write("bad.wasm", &bad);
    let config = format!(
        "[server]\nmodule_check_interval = \"0s\"\n{}{}{}[signatures]\ntrusted_keys = [\"{}\", \"{}\"]\nrequire = true\n",
        route("hello"),
        route("signed"),
        route("bad"),
        hex(&*key(1).pk),
        hex(&*key(7).pk),
    );
    let s = start(&config, &serve);
    let r = s.get("/signed");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, HELLO.as_bytes(), "{r:?}");
    assert_refused(
        &s,
        "/bad",
        "bad.wasm: module refused: the Gojinn signature trailer does not verify",
    );
    assert_eq!(s.get("/signed").status, 200);

    // Signing it again is refused, and nothing is written.
    let out = cli(
        dir.path(),
        &[
            "sign",
            "hello.signed.wasm",
            "--key",
            "release.key",
            "--gojinn",
            "--out",
            "twice.wasm",
        ],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("hello.signed.wasm: already signed in Gojinn's format"),
        "{out:?}"
    );
    assert!(!dir.path().join("twice.wasm").exists());
    // `--out` may be the module itself, replaced whole, keeping its mode
    // (a private module stays private).
    use std::os::unix::fs::PermissionsExt;
    let module = dir.path().join("hello.wasm");
    std::fs::set_permissions(&module, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = cli(
        dir.path(),
        &[
            "sign",
            "hello.wasm",
            "-k",
            "release.key",
            "-g",
            "-o",
            "hello.wasm",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(std::fs::read(&module).unwrap(), signed);
    let mode = std::fs::metadata(&module).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // A symbolic link as `--out` is refused: the rename would replace the
    // link, not the file it names. Both are left as they were.
    let link = dir.path().join("current.wasm");
    std::os::unix::fs::symlink("hello.signed.wasm", &link).unwrap();
    let before = std::fs::read(dir.path().join("hello.signed.wasm")).unwrap();
    dir.write("fresh.wasm", hello());
    let out = cli(
        dir.path(),
        &[
            "sign",
            "fresh.wasm",
            "-k",
            "release.key",
            "-g",
            "-o",
            "current.wasm",
        ],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("current.wasm: is a symbolic link"),
        "{out:?}"
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read(dir.path().join("hello.signed.wasm")).unwrap(),
        before
    );
}

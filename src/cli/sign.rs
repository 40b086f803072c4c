//! `wasmgate keygen` and `wasmgate sign`: the operator's side of signed
//! modules (`[signatures]`, see `signature.rs`). The key file is Gojinn's
//! `.priv` format, so either tool's keys sign with the other.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::CliError;
use crate::signature::{GOJINN_MAGIC, SigningKey, gojinn_split, hex, sig_path};

pub const KEYGEN_USAGE: &str = "\
Usage: wasmgate keygen --out KEYFILE

Makes an Ed25519 key pair from the system's random source. Writes the
secret key to KEYFILE (created with mode 0600; an existing file is never
overwritten) and prints the public key on stdout as 64 hex digits, the
form `[signatures] trusted_keys` takes.

KEYFILE holds 128 hex digits, the seed then the public key (Go's
ed25519.PrivateKey, as Gojinn's .priv files hold it): Gojinn's signer can
use it, and `wasmgate sign` can use a Gojinn key.";

pub const SIGN_USAGE: &str = "\
Usage: wasmgate sign MODULE --key KEYFILE [--gojinn [--out FILE]]

Signs MODULE with the secret key in KEYFILE (from `wasmgate keygen`, or a
Gojinn .priv file) and writes the detached signature to MODULE.sig (e.g.
hello.wasm.sig), replacing it atomically: the Ed25519 signature of the
file's bytes as they are, as 128 hex digits and a newline. Copy both files
to the board; a server with the public key in [signatures] trusted_keys
verifies MODULE.sig when it loads MODULE. Re-sign after every change to
MODULE: a signature covers one exact file.

Options:
  -k, --key KEYFILE  the secret key (required)
  -g, --gojinn       write Gojinn's signed file instead of MODULE.sig: the
                     module's bytes, the 64-byte signature of them, then
                     the 5 bytes GJSIG, as one file that Gojinn and
                     wasmgate both verify and load. Written to NAME.signed.wasm
                     next to MODULE (hello.wasm: hello.signed.wasm), replaced
                     atomically. A MODULE that already ends with a GJSIG
                     trailer is refused: sign the unsigned module.
  -o, --out FILE     with --gojinn, where to write the signed file instead
                     (it may be MODULE itself, replaced atomically)";

/// What `wasmgate sign` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignOutput {
    /// The detached `MODULE.sig`.
    Detached,
    /// Gojinn's signed file, at this path.
    Gojinn(PathBuf),
}

/// `wasmgate sign`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignArgs {
    /// The module to sign.
    pub module: PathBuf,
    /// The secret key file.
    pub key: PathBuf,
    /// What to write.
    pub output: SignOutput,
}

/// Where `--gojinn` writes the signed file of `module` without `--out`:
/// `hello.wasm` → `hello.signed.wasm`; a name without `.wasm` gets
/// `.signed.wasm` added.
pub fn gojinn_path(module: &Path) -> PathBuf {
    let name = module.file_name().unwrap_or_default();
    let stem = match Path::new(name).extension() {
        Some(ext) if ext == "wasm" => Path::new(name).file_stem().unwrap_or(name),
        _ => name,
    };
    let mut signed = stem.to_owned();
    signed.push(".signed.wasm");
    module.with_file_name(signed)
}

/// Parses what follows `wasmgate keygen`: the key file, or the usage text.
pub fn parse_keygen(p: &mut lexopt::Parser) -> Result<Result<PathBuf, &'static str>, CliError> {
    use lexopt::prelude::*;
    let mut out = None;
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Err(KEYGEN_USAGE)),
            Short('o') | Long("out") => out = Some(PathBuf::from(p.value()?)),
            other => return Err(other.unexpected().into()),
        }
    }
    out.map(Ok)
        .ok_or_else(|| CliError::Usage("keygen: give --out KEYFILE for the secret key".into()))
}

/// Parses what follows `wasmgate sign`: the module, the key file and what
/// to write, or the usage text.
pub fn parse_sign(p: &mut lexopt::Parser) -> Result<Result<SignArgs, &'static str>, CliError> {
    use lexopt::prelude::*;
    let (mut module, mut key): (Option<OsString>, Option<OsString>) = (None, None);
    let (mut gojinn, mut out): (bool, Option<OsString>) = (false, None);
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Err(SIGN_USAGE)),
            Short('k') | Long("key") => key = Some(p.value()?),
            Short('g') | Long("gojinn") => gojinn = true,
            Short('o') | Long("out") => out = Some(p.value()?),
            Value(v) if module.is_none() => module = Some(v),
            other => return Err(other.unexpected().into()),
        }
    }
    let module: PathBuf = module
        .ok_or_else(|| CliError::Usage("sign: give a MODULE".into()))?
        .into();
    let key = key.ok_or_else(|| CliError::Usage("sign: give --key KEYFILE".into()))?;
    let output = match (gojinn, out) {
        (false, None) => SignOutput::Detached,
        (false, Some(_)) => {
            return Err(CliError::Usage(
                "sign: --out is for --gojinn (the detached signature is always MODULE.sig)".into(),
            ));
        }
        (true, out) => SignOutput::Gojinn(out.map_or_else(|| gojinn_path(&module), PathBuf::from)),
    };
    Ok(Ok(SignArgs {
        module,
        key: key.into(),
        output,
    }))
}

/// `wasmgate keygen --out KEYFILE`.
pub fn keygen(out: &Path) -> Result<(), CliError> {
    let key = SigningKey::generate().map_err(CliError::Runtime)?;
    let fail = |e: std::io::Error| CliError::Runtime(format!("{}: {e}", out.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => CliError::Runtime(format!(
                "{}: already exists; a key file is never overwritten",
                out.display()
            )),
            _ => fail(e),
        })?;
    file.write_all(key.to_file().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(fail)?;
    let _ = writeln!(std::io::stdout(), "{}", hex(&key.public()));
    let _ = writeln!(
        std::io::stderr(),
        "secret key written to {} (mode 0600); the public key above goes in [signatures] trusted_keys",
        out.display()
    );
    Ok(())
}

/// `wasmgate sign MODULE --key KEYFILE [--gojinn [--out FILE]]`.
pub fn sign(args: &SignArgs) -> Result<(), CliError> {
    let (module, key_file) = (args.module.as_path(), args.key.as_path());
    let key_error = |why: String| CliError::Runtime(format!("{}: {why}", key_file.display()));
    let meta = std::fs::metadata(key_file).map_err(|e| key_error(e.to_string()))?;
    // Far larger than any key file: not read whole if it is something else.
    if meta.len() > 1024 {
        return Err(key_error("not a key file (larger than 1 KiB)".into()));
    }
    let text = std::fs::read(key_file).map_err(|e| key_error(e.to_string()))?;
    let key = SigningKey::parse(&text)
        .map_err(|why| key_error(format!("not an Ed25519 key file: {why}")))?;
    if meta.permissions().mode() & 0o077 != 0 {
        let _ = writeln!(
            std::io::stderr(),
            "warning: {} can be read by other users (mode {:o}); a secret key should be 0600",
            key_file.display(),
            meta.permissions().mode() & 0o777
        );
    }
    let mut bytes = std::fs::read(module)
        .map_err(|e| CliError::Runtime(format!("{}: {e}", module.display())))?;
    let signature = key.sign(&bytes);
    let signed = bytes.len();
    let (target, contents) = match &args.output {
        SignOutput::Detached => (
            sig_path(module),
            format!("{}\n", hex(&signature)).into_bytes(),
        ),
        SignOutput::Gojinn(out) => {
            // A second trailer would sign the first: Gojinn would verify
            // the outer one and compile a module that still ends with the
            // inner one, which is not Wasm.
            if gojinn_split(&bytes).is_some() {
                return Err(CliError::Runtime(format!(
                    "{}: already signed in Gojinn's format (it ends with a 64-byte signature and GJSIG); sign the unsigned module",
                    module.display()
                )));
            }
            bytes.extend_from_slice(&signature);
            bytes.extend_from_slice(GOJINN_MAGIC);
            (out.clone(), bytes)
        }
    };
    replace(&target, &contents)?;
    let _ = writeln!(
        std::io::stdout(),
        "{}: signed {} ({} bytes) with key {}",
        target.display(),
        module.display(),
        signed,
        hex(&key.public())
    );
    Ok(())
}

/// Writes `contents` to `target`, replacing it atomically: written aside
/// and renamed, so a server never reads half a signature or a signed file.
/// A file replaced keeps its mode (a private module stays private); a
/// symbolic link is refused, since the rename would replace the link, not
/// the file it names. The directory is synced after the rename, so the
/// new file survives a power cut.
fn replace(target: &Path, contents: &[u8]) -> Result<(), CliError> {
    let mode = match std::fs::symlink_metadata(target) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(CliError::Runtime(format!(
                "{}: is a symbolic link; name the file it points to",
                target.display()
            )));
        }
        Ok(meta) => meta.permissions().mode() & 0o777,
        Err(_) => 0o644,
    };
    let mut temp = target.to_owned().into_os_string();
    temp.push(format!(".tmp-{}", std::process::id()));
    let temp = PathBuf::from(temp);
    // `create_new`: never through a link planted at the temporary name,
    // never over another file.
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp);
    let mut file = created.map_err(|e| CliError::Runtime(format!("{}: {e}", temp.display())))?;
    let written = file
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temp, target));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(CliError::Runtime(format!("{}: {e}", target.display())));
    }
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CliError::Runtime(format!("{}: {e}", dir.display())))?;
    Ok(())
}

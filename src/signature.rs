//! Signed modules (`[signatures]`): what a module file must prove before it
//! is compiled, and the key and signature files `wasmgate keygen` and
//! `wasmgate sign` write.
//!
//! A module is signed with Ed25519 in one of two ways, and every signature
//! present must verify with one of the `trusted_keys`:
//!
//! - a detached `MODULE.sig` next to it (`hello.wasm.sig`): the signature
//!   of the file's bytes exactly as they are on disk, written as 128 hex
//!   digits (and a newline), or as the 64 raw bytes;
//! - Gojinn's signed file: the module bytes, then the 64-byte signature of
//!   them, then the 5 bytes `GJSIG`. A file is taken to be one when it ends
//!   with `GJSIG` and has at least 69 bytes, as Gojinn decides; the trailer
//!   is removed before the module is compiled.
//!
//! Policy: with no `trusted_keys`, nothing is checked (`.sig` files are
//! ignored) and a Gojinn trailer is removed unchecked, as Gojinn does
//! without keys: a file with a trailer is not valid Wasm. With keys, a
//! signature that does not verify or a malformed `.sig` refuses the module
//! (a bad signature is never ignored); an unsigned module loads unless
//! `require = true`. The check runs where the cache reads the file, on the
//! bytes it compiles.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_compact::{KeyPair, PublicKey, Seed, Signature};

/// Bytes of an Ed25519 public key (64 hex digits).
pub const KEY_BYTES: usize = PublicKey::BYTES;
/// Bytes of an Ed25519 signature (128 hex digits).
pub const SIGNATURE_BYTES: usize = Signature::BYTES;
/// The last bytes of a file signed by Gojinn.
pub const GOJINN_MAGIC: &[u8; 5] = b"GJSIG";
/// A `.sig` file larger than this is malformed without being read: the hex
/// form and a line ending are 130 bytes; 1 KiB leaves room for a CRLF or
/// spaces, never for a file someone wrote there by mistake.
const MAX_SIG_FILE: u64 = 1024;

/// `[signatures]`: the keys modules may be signed with, and whether every
/// module must be signed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signatures {
    /// Raw Ed25519 public keys (`trusted_keys`, 64 hex digits each), each
    /// a valid curve point. Defaults to none: signatures are not checked.
    pub trusted_keys: Vec<[u8; KEY_BYTES]>,
    /// Refuse unsigned modules (`require`). Defaults to false: unsigned
    /// modules load, signed ones must verify. Needs `trusted_keys`.
    pub require: bool,
}

impl Signatures {
    /// Whether modules are checked at all.
    pub fn enabled(&self) -> bool {
        !self.trusted_keys.is_empty()
    }
}

/// The detached signature file of `module`: its name with `.sig` added.
pub fn sig_path(module: &Path) -> PathBuf {
    let mut name = module.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// What the check found about a module that loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No `trusted_keys`: nothing checked. `gojinn`: a Gojinn trailer was
    /// removed without being verified.
    Unchecked { gojinn: bool },
    /// Keys are configured, `require` is not, and the module is unsigned.
    Unsigned,
    /// Every signature present verified; `key` is the trusted key that
    /// verified the first (the `.sig`'s if there is one).
    Verified {
        key: [u8; KEY_BYTES],
        detached: bool,
        gojinn: bool,
    },
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Unchecked { gojinn: false } => {
                f.write_str("not checked (no [signatures] trusted_keys)")
            }
            Status::Unchecked { gojinn: true } => f.write_str(
                "not checked (no [signatures] trusted_keys); its Gojinn signature trailer was removed unverified",
            ),
            Status::Unsigned => f.write_str("unsigned (allowed: [signatures] require is false)"),
            Status::Verified {
                key,
                detached,
                gojinn,
            } => {
                let how = match (detached, gojinn) {
                    (true, true) => ".sig file and Gojinn trailer",
                    (true, false) => ".sig file",
                    _ => "Gojinn trailer",
                };
                write!(f, "verified ({how}) with trusted key {}", hex(key))
            }
        }
    }
}

/// Why a module's signatures refused it.
#[derive(Debug)]
pub enum SignatureError {
    /// `require = true` and the module has neither a `.sig` nor a trailer.
    Missing { sig: PathBuf },
    /// The `.sig` file is neither 64 bytes nor 128 hex digits.
    Malformed { sig: PathBuf, why: String },
    /// The `.sig` file exists but cannot be read.
    Unreadable { sig: PathBuf, error: std::io::Error },
    /// The `.sig` does not verify with any trusted key.
    Detached { sig: PathBuf, keys: usize },
    /// The Gojinn trailer does not verify with any trusted key.
    Gojinn { keys: usize },
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = |n: &usize| match n {
            1 => "the trusted key".to_owned(),
            n => format!("any of the {n} trusted keys"),
        };
        match self {
            SignatureError::Missing { sig } => write!(
                f,
                "no signature: [signatures] require = true, and there is neither {} nor a Gojinn signature trailer",
                sig.display()
            ),
            SignatureError::Malformed { sig, why } => {
                write!(f, "malformed signature file {}: {why}", sig.display())
            }
            SignatureError::Unreadable { sig, error } => {
                write!(f, "cannot read signature file {}: {error}", sig.display())
            }
            SignatureError::Detached { sig, keys: n } => write!(
                f,
                "signature {} does not verify with {}: the module changed after it was signed, or another key signed it",
                sig.display(),
                keys(n)
            ),
            SignatureError::Gojinn { keys: n } => write!(
                f,
                "the Gojinn signature trailer does not verify with {}: the module changed after it was signed, or another key signed it",
                keys(n)
            ),
        }
    }
}

/// Checks the module file `path`, read as `bytes`, under `policy`, and
/// returns the bytes to compile (a Gojinn trailer removed) and what was
/// found. The `.sig` is read here, after the module: both are checked
/// against the cache's stamp of the two files (see `cache.rs`).
pub fn check(
    policy: &Signatures,
    path: &Path,
    mut bytes: Vec<u8>,
) -> Result<(Vec<u8>, Status), SignatureError> {
    let trailer = gojinn_split(&bytes);
    if !policy.enabled() {
        if let Some((len, _)) = trailer {
            bytes.truncate(len);
        }
        let gojinn = trailer.is_some();
        return Ok((bytes, Status::Unchecked { gojinn }));
    }
    let keys = &policy.trusted_keys;
    let sig = sig_path(path);
    // The `.sig` signs the file as it is on disk, trailer and all.
    let detached = match read_sig(&sig)? {
        None => None,
        Some(signature) => match trusted_signer(keys, &bytes, &signature) {
            Some(key) => Some(key),
            None => {
                return Err(SignatureError::Detached {
                    sig,
                    keys: keys.len(),
                });
            }
        },
    };
    let gojinn = match trailer {
        None => None,
        Some((len, signature)) => match trusted_signer(keys, &bytes[..len], &signature) {
            Some(key) => {
                bytes.truncate(len);
                Some(key)
            }
            None => return Err(SignatureError::Gojinn { keys: keys.len() }),
        },
    };
    let status = match detached.or(gojinn) {
        Some(key) => Status::Verified {
            key,
            detached: detached.is_some(),
            gojinn: gojinn.is_some(),
        },
        None if policy.require => return Err(SignatureError::Missing { sig }),
        None => Status::Unsigned,
    };
    Ok((bytes, status))
}

/// The length of the module and its signature, if `bytes` is a file
/// signed by Gojinn: module ‖ 64-byte signature ‖ `GJSIG`.
pub fn gojinn_split(bytes: &[u8]) -> Option<(usize, [u8; SIGNATURE_BYTES])> {
    let module = bytes
        .len()
        .checked_sub(SIGNATURE_BYTES + GOJINN_MAGIC.len())?;
    let (rest, magic) = bytes.split_at(bytes.len() - GOJINN_MAGIC.len());
    if magic != GOJINN_MAGIC {
        return None;
    }
    let signature = rest.get(module..)?.try_into().ok()?;
    Some((module, signature))
}

/// The first of `keys` under which `signature` verifies `message`.
fn trusted_signer(
    keys: &[[u8; KEY_BYTES]],
    message: &[u8],
    signature: &[u8; SIGNATURE_BYTES],
) -> Option<[u8; KEY_BYTES]> {
    let signature = Signature::new(*signature);
    keys.iter()
        .find(|key| PublicKey::new(**key).verify(message, &signature).is_ok())
        .copied()
}

/// `O_NONBLOCK` on Linux (x86_64, aarch64, arm: the same value).
pub(crate) const O_NONBLOCK: i32 = 0o4000;

/// The signature in `sig`, `None` if there is no such file.
fn read_sig(sig: &Path) -> Result<Option<[u8; SIGNATURE_BYTES]>, SignatureError> {
    let unreadable = |error| SignatureError::Unreadable {
        sig: sig.to_owned(),
        error,
    };
    // Opened without blocking (a FIFO would block the load thread, and
    // every module load with it), then refused unless what was opened is
    // a regular file: checking the path first and opening it after left
    // a window to swap a FIFO in.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(sig);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e)),
    };
    if !file.metadata().map_err(unreadable)?.is_file() {
        return Err(SignatureError::Malformed {
            sig: sig.to_owned(),
            why: "not a regular file".into(),
        });
    }
    let mut text = Vec::new();
    file.take(MAX_SIG_FILE + 1)
        .read_to_end(&mut text)
        .map_err(unreadable)?;
    parse_signature(&text)
        .map(Some)
        .map_err(|why| SignatureError::Malformed {
            sig: sig.to_owned(),
            why,
        })
}

/// A `.sig` file's content: 64 raw bytes, or 128 hex digits with optional
/// surrounding whitespace.
pub fn parse_signature(text: &[u8]) -> Result<[u8; SIGNATURE_BYTES], String> {
    if let Ok(raw) = <[u8; SIGNATURE_BYTES]>::try_from(text) {
        return Ok(raw);
    }
    let expected = format!(
        "expected {SIGNATURE_BYTES} raw bytes or {} hex digits",
        SIGNATURE_BYTES * 2
    );
    if u64::try_from(text.len()).map_or(true, |n| n > MAX_SIG_FILE) {
        return Err(format!("larger than {MAX_SIG_FILE} bytes; {expected}"));
    }
    parse_hex(text.trim_ascii()).map_err(|why| format!("{expected}: {why}"))
}

/// `N` bytes written as `2 * N` hex digits (either case), or why not.
pub fn parse_hex<const N: usize>(text: &[u8]) -> Result<[u8; N], String> {
    let expected = N * 2;
    if text.len() != expected {
        return Err(format!(
            "{} characters, not {expected} hex digits",
            text.len()
        ));
    }
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16);
        match (digit(pair[0]), digit(pair[1])) {
            // Both below 16: the sum is below 256.
            (Some(hi), Some(lo)) => *byte = u8::try_from(hi * 16 + lo).unwrap_or(0),
            _ => {
                return Err(format!(
                    "{:?} is not a pair of hex digits",
                    String::from_utf8_lossy(pair)
                ));
            }
        }
    }
    Ok(out)
}

/// `bytes` as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A trusted key from config: 64 hex digits that decode to a curve point
/// (a key that is not one could never verify anything).
pub fn parse_public_key(text: &str) -> Result<[u8; KEY_BYTES], String> {
    let key = parse_hex::<KEY_BYTES>(text.as_bytes())?;
    PublicKey::new(key)
        .validate()
        .map_err(|e| format!("64 hex digits that are not a usable curve point ({e})"))?;
    Ok(key)
}

/// A signing key: the seed and the public key it makes.
pub struct SigningKey(KeyPair);

impl SigningKey {
    /// A new key from the system's random source.
    pub fn generate() -> Result<Self, String> {
        let mut seed = [0; Seed::BYTES];
        getrandom::fill(&mut seed).map_err(|e| format!("no random source: {e}"))?;
        KeyPair::try_from_seed(Seed::new(seed))
            .map(Self)
            .map_err(|e| format!("cannot make a key: {e}"))
    }

    /// A key file's content: 128 hex digits, the seed then the public key
    /// (Go's `ed25519.PrivateKey`, as Gojinn's `.priv` files hold it), or
    /// 64 hex digits, the seed alone; surrounding whitespace is ignored.
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        let text = text.trim_ascii();
        let (seed, public) = match text.len() {
            64 => (parse_hex::<32>(text)?, None),
            128 => {
                let both = parse_hex::<64>(text)?;
                let (seed, public) = both.split_at(32);
                let seed: [u8; 32] = seed.try_into().map_err(|_| "bad length".to_owned())?;
                (seed, Some(public.to_vec()))
            }
            n => {
                return Err(format!(
                    "{n} characters, not 128 hex digits (seed and public key) or 64 (seed)"
                ));
            }
        };
        let pair = KeyPair::try_from_seed(Seed::new(seed)).map_err(|e| e.to_string())?;
        if public.is_some_and(|p| p[..] != pair.pk[..]) {
            return Err("its public half is not the key of its seed".into());
        }
        Ok(Self(pair))
    }

    /// The key file's content: 128 hex digits, no line ending (Gojinn's
    /// `.priv` format, which its signer reads back).
    pub fn to_file(&self) -> String {
        hex(&self.0.sk[..])
    }

    /// The public key.
    pub fn public(&self) -> [u8; KEY_BYTES] {
        *self.0.pk
    }

    /// The signature of `message` (deterministic, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_BYTES] {
        *self.0.sk.sign(message, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(key: &SigningKey, require: bool) -> Signatures {
        Signatures {
            trusted_keys: vec![key.public()],
            require,
        }
    }

    #[test]
    fn a_gojinn_trailer_is_recognised_only_at_the_end_and_long_enough() {
        let mut file = b"\0asm\x01\0\0\0".to_vec();
        file.extend([7; 64]);
        file.extend(GOJINN_MAGIC);
        assert_eq!(gojinn_split(&file), Some((8, [7; 64])));
        // Exactly the trailer: an empty module.
        assert_eq!(gojinn_split(&file[8..]), Some((0, [7; 64])));
        // One byte short of a trailer; the magic not last.
        assert_eq!(gojinn_split(&file[9..]), None);
        let mut after = file.clone();
        after.push(b'\n');
        assert_eq!(gojinn_split(&after), None);
        assert_eq!(gojinn_split(b"GJSIG"), None);
    }

    #[test]
    fn signatures_verify_and_refuse() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let module = b"\0asm\x01\0\0\0".to_vec();
        let mut gojinn = module.clone();
        gojinn.extend(key.sign(&module));
        gojinn.extend(GOJINN_MAGIC);
        let path = Path::new("/nonexistent/wasmgate-signature-test.wasm");
        // Unchecked: the trailer is removed.
        let (bytes, status) = check(&Signatures::default(), path, gojinn.clone()).unwrap();
        assert_eq!(
            (bytes, status),
            (module.clone(), Status::Unchecked { gojinn: true })
        );
        let (bytes, status) = check(&policy(&key, true), path, gojinn.clone()).unwrap();
        assert_eq!(bytes, module);
        assert!(
            matches!(status, Status::Verified { gojinn: true, detached: false, key: k } if k == key.public())
        );
        // Another key, a flipped byte.
        let e = check(&policy(&other, false), path, gojinn.clone()).unwrap_err();
        assert!(matches!(e, SignatureError::Gojinn { keys: 1 }), "{e}");
        let mut tampered = gojinn.clone();
        tampered[4] ^= 1;
        assert!(check(&policy(&key, false), path, tampered).is_err());
        // Unsigned.
        let (_, status) = check(&policy(&key, false), path, module.clone()).unwrap();
        assert_eq!(status, Status::Unsigned);
        let e = check(&policy(&key, true), path, module).unwrap_err();
        assert!(e.to_string().starts_with("no signature"), "{e}");
    }

    #[test]
    fn a_sig_that_is_not_a_regular_file_is_malformed_and_never_opened() {
        let dir = std::env::temp_dir().join(format!("wasmgate-sig-{}", std::process::id()));
        let module = dir.join("m.wasm");
        std::fs::create_dir_all(sig_path(&module)).unwrap();
        let key = SigningKey::generate().unwrap();
        let e = check(&policy(&key, false), &module, b"\0asm".to_vec()).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            e.to_string().contains("m.wasm.sig: not a regular file"),
            "{e}"
        );
        // A FIFO with no writer: refused at once, the read never waits.
        let fifo_dir = dir.join("fifo");
        std::fs::create_dir_all(&fifo_dir).unwrap();
        let module = fifo_dir.join("m.wasm");
        let made = std::process::Command::new("mkfifo")
            .arg(sig_path(&module))
            .status()
            .is_ok_and(|s| s.success());
        if made {
            let e = check(&policy(&key, false), &module, b"\0asm".to_vec()).unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn key_and_signature_files_round_trip() {
        let key = SigningKey::generate().unwrap();
        let file = key.to_file();
        assert_eq!(file.len(), 128);
        let back = SigningKey::parse(format!("{file}\n").as_bytes()).unwrap();
        assert_eq!(back.public(), key.public());
        let seed_only = SigningKey::parse(&file.as_bytes()[..64]).unwrap();
        assert_eq!(seed_only.public(), key.public());
        // A public half that is not the seed's.
        let mut wrong = file.into_bytes();
        wrong[127] = if wrong[127] == b'0' { b'1' } else { b'0' };
        assert!(SigningKey::parse(&wrong).is_err());
        let sig = key.sign(b"m");
        assert_eq!(parse_signature(&sig).unwrap(), sig);
        assert_eq!(
            parse_signature(format!(" {}\r\n", hex(&sig)).as_bytes()).unwrap(),
            sig
        );
        assert!(parse_signature(&hex(&sig).as_bytes()[2..]).is_err());
        assert!(parse_signature(&[b'0'; 2000]).is_err());
    }

    #[test]
    fn public_keys_are_64_hex_digits_of_a_point() {
        let key = SigningKey::generate().unwrap();
        let text = hex(&key.public());
        assert_eq!(parse_public_key(&text).unwrap(), key.public());
        assert_eq!(
            parse_public_key(&text.to_uppercase()).unwrap(),
            key.public()
        );
        let short = parse_public_key(&text[..62]).unwrap_err();
        assert_eq!(short, "62 characters, not 64 hex digits");
        assert!(parse_public_key(&format!("{}zz", &text[..62])).is_err());
        // The identity point has small order: no signature verifies with it.
        let identity = format!("01{}", "0".repeat(62));
        assert!(
            parse_public_key(&identity)
                .unwrap_err()
                .contains("not a usable curve point")
        );
    }
}

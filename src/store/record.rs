//! The bytes of the store's log: a header, then records. A record is one
//! committed batch: `len: u32 LE`, `crc32(payload): u32 LE`, `payload`.
//! The payload is a run of operations, each with its namespace and key
//! length-prefixed, so no key bytes can be read as another namespace:
//!
//! ```text
//! set:    1, ns_len u32, ns, key_len u32, key, expires u64 (unix ms, 0 = never), value_len u32, value
//! delete: 2, ns_len u32, ns, key_len u32, key
//! ```
//!
//! Replay stops at the first record that is short, fails its CRC or does
//! not decode: that is the damaged tail a crash (or a bad sector) left.

/// The first bytes of a log file: the format and its version.
pub const MAGIC: &[u8; 8] = b"WGKV\x01\n\0\0";

/// Bytes before a record's payload.
pub const HEADER: usize = 8;

/// The longest payload replay accepts: a longer length field is damage, not
/// a batch (a batch is bounded by the namespace quotas, far below this).
pub const MAX_PAYLOAD: u32 = 256 << 20;

/// One operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `key` of namespace `ns` holds `value` until `expires` (unix ms; 0:
    /// never).
    Set {
        ns: Vec<u8>,
        key: Vec<u8>,
        value: Vec<u8>,
        expires: u64,
    },
    /// `key` of namespace `ns` is gone.
    Delete { ns: Vec<u8>, key: Vec<u8> },
}

/// CRC-32 (IEEE 802.3, reflected, as zlib and PNG compute it), with a
/// table built at compile time.
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8);
    }
    !crc
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Keys, values and namespaces are bounded far below 4 GiB by the
    // quotas and `MAX_KEY` before they get here.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends `op` to a payload.
pub fn encode_op(out: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Set {
            ns,
            key,
            value,
            expires,
        } => {
            out.push(1);
            put_bytes(out, ns);
            put_bytes(out, key);
            out.extend_from_slice(&expires.to_le_bytes());
            put_bytes(out, value);
        }
        Op::Delete { ns, key } => {
            out.push(2);
            put_bytes(out, ns);
            put_bytes(out, key);
        }
    }
}

/// Frames a payload as a record: length, CRC, payload.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A reader over a payload.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }

    fn bytes(&mut self) -> Option<Vec<u8>> {
        let len = usize::try_from(self.u32()?).ok()?;
        Some(self.take(len)?.to_vec())
    }
}

/// The operations of a payload, or `None` if it does not decode.
pub fn decode(payload: &[u8]) -> Option<Vec<Op>> {
    let mut r = Reader(payload);
    let mut ops = Vec::new();
    while !r.0.is_empty() {
        let tag = r.take(1)?[0];
        let ns = r.bytes()?;
        let key = r.bytes()?;
        ops.push(match tag {
            1 => {
                let expires = r.u64()?;
                let value = r.bytes()?;
                Op::Set {
                    ns,
                    key,
                    value,
                    expires,
                }
            }
            2 => Op::Delete { ns, key },
            _ => return None,
        });
    }
    Some(ops)
}

/// What replaying a log found.
#[derive(Debug, Default)]
pub struct Replay {
    /// Every intact record's operations, in order.
    pub batches: Vec<Vec<Op>>,
    /// Where the intact part ends: the file is cut here.
    pub good_len: u64,
    /// Why the rest was dropped, if there was a rest.
    pub damage: Option<String>,
    /// Whether the damage is more than a torn last write: a record that
    /// fails its checksum or does not decode, or claims a length out of
    /// range (bytes after it may be acknowledged records).
    pub followed: bool,
}

/// Reads a whole log file's bytes.
pub fn replay(bytes: &[u8]) -> Replay {
    let mut out = Replay::default();
    if bytes.is_empty() {
        return out;
    }
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        out.damage = Some("the file does not start with the store's header".into());
        return out;
    }
    let mut pos = MAGIC.len();
    out.good_len = pos as u64;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let why = match parse_one(rest) {
            Ok((ops, used)) => {
                out.batches.push(ops);
                pos += used;
                out.good_len = pos as u64;
                continue;
            }
            Err(why) => why,
        };
        // Replay never looks for records past damage: values are a
        // guest's bytes, and one may hold what reads as a whole record (a
        // forged write into another namespace). What follows damage is
        // cut off; `followed` tells a torn write (a crash: the last record
        // cut short) from damage that may have acknowledged records after
        // it, which the store keeps aside before cutting.
        out.followed = !matches!(
            why,
            "a record is cut short" | "a record header is cut short"
        );
        out.damage = Some(format!(
            "{why} at offset {pos}; dropped the last {} bytes",
            bytes.len() - pos
        ));
        break;
    }
    out
}

fn parse_one(rest: &[u8]) -> Result<(Vec<Op>, usize), &'static str> {
    if rest.len() < HEADER {
        return Err("a record header is cut short");
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if len > MAX_PAYLOAD {
        return Err("a record length is out of range");
    }
    let end = usize::try_from(len)
        .ok()
        .and_then(|len| HEADER.checked_add(len))
        .ok_or("a record length is out of range")?;
    let payload = rest.get(HEADER..end).ok_or("a record is cut short")?;
    if crc32(payload) != crc {
        return Err("a record fails its checksum");
    }
    let ops = decode(payload).ok_or("a record does not decode")?;
    Ok((ops, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn records_round_trip_and_a_damaged_tail_is_dropped() {
        let ops = vec![
            Op::Set {
                ns: b"a".to_vec(),
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                expires: 7,
            },
            Op::Delete {
                ns: b"b".to_vec(),
                key: b"".to_vec(),
            },
        ];
        let mut payload = Vec::new();
        for op in &ops {
            encode_op(&mut payload, op);
        }
        let mut file = MAGIC.to_vec();
        file.extend(frame(&payload));
        let whole = file.len() as u64;
        file.extend(frame(&payload));
        let r = replay(&file);
        assert_eq!(r.batches, vec![ops.clone(), ops.clone()]);
        assert!(r.damage.is_none());
        // Every cut of the second record keeps exactly the first.
        for cut in whole as usize..file.len() {
            let r = replay(&file[..cut]);
            assert_eq!(r.batches, vec![ops.clone()], "cut at {cut}");
            assert_eq!(r.good_len, whole);
            assert_eq!(r.damage.is_some(), cut > whole as usize);
        }
        // A flipped bit anywhere in the second record drops it.
        for i in whole as usize..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x10;
            let r = replay(&bad);
            assert_eq!(r.batches.len(), 1, "flip at {i}");
            assert!(r.damage.is_some());
        }
    }
}

//! SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for the
//! `wasmgate.sha256` and `wasmgate.hmac_sha256` host functions
//! (`imports::crypto`). The padding and HMAC are written here; the block
//! function is `sha2`'s `compress256`, which uses the CPU's SHA
//! instructions where it has them (x86-64 SHA-NI, the aarch64 `sha2`
//! extension of e.g. the Raspberry Pi 5's Cortex-A76; detected at run time)
//! and a portable implementation elsewhere (armv7, the Pi 4's Cortex-A72).
//! Both are free of data-dependent branches and table lookups, so a digest
//! of a secret leaks nothing through timing. Checked against the FIPS
//! 180-4, NIST and RFC 4231 vectors below.

use sha2::block_api::compress256;

/// The length of a SHA-256 digest in bytes.
pub const DIGEST_LEN: usize = 32;

const BLOCK: usize = 64;

const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// An incremental SHA-256.
#[derive(Clone)]
pub struct Sha256 {
    state: [u32; 8],
    buf: [u8; BLOCK],
    /// Bytes in `buf`.
    filled: usize,
    /// Bytes hashed so far, `buf` included.
    len: u64,
}

impl Default for Sha256 {
    fn default() -> Self {
        Sha256 {
            state: H0,
            buf: [0; BLOCK],
            filled: 0,
            len: 0,
        }
    }
}

impl Sha256 {
    /// Adds `data` to the message.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.filled > 0 {
            let take = (BLOCK - self.filled).min(data.len());
            self.buf[self.filled..self.filled + take].copy_from_slice(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled < BLOCK {
                return;
            }
            compress256(&mut self.state, std::slice::from_ref(&self.buf));
            self.filled = 0;
        }
        let (blocks, rest) = data.as_chunks::<BLOCK>();
        compress256(&mut self.state, blocks);
        self.buf[..rest.len()].copy_from_slice(rest);
        self.filled = rest.len();
    }

    /// The digest of the message.
    pub fn finish(mut self) -> [u8; DIGEST_LEN] {
        let bits = self.len.wrapping_mul(8);
        // The padding: 0x80, zeros up to 8 bytes short of a block end,
        // then the length in bits; at most 72 bytes, added in one update.
        let mut pad = [0u8; BLOCK + 8];
        pad[0] = 0x80;
        let zeros = (BLOCK + BLOCK - 9 - self.filled) % BLOCK;
        let end = 1 + zeros;
        pad[end..end + 8].copy_from_slice(&bits.to_be_bytes());
        self.update(&pad[..end + 8]);
        let mut out = [0; DIGEST_LEN];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

/// The SHA-256 digest of `data`.
pub fn sha256(data: &[u8]) -> [u8; DIGEST_LEN] {
    let mut h = Sha256::default();
    h.update(data);
    h.finish()
}

/// HMAC-SHA256 of `data` under `key` (RFC 2104; a key longer than a block
/// is hashed first).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; DIGEST_LEN] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..DIGEST_LEN].copy_from_slice(&sha256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|k| k ^ byte);
    let mut inner = Sha256::default();
    inner.update(&pad(0x36));
    inner.update(data);
    let mut outer = Sha256::default();
    outer.update(&pad(0x5c));
    outer.update(&inner.finish());
    outer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn fips_180_4_and_nist_vectors() {
        for (input, digest) in [
            (
                &b""[..],
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                b"abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
            (
                b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
                "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
            ),
        ] {
            assert_eq!(hex(&sha256(input)), digest);
        }
        // One million 'a's, fed in uneven pieces: the buffering across
        // `update` calls is exercised too.
        let mut h = Sha256::default();
        let a = [b'a'; 1000];
        let mut left = 1_000_000usize;
        let mut step = 1;
        while left > 0 {
            let n = step.min(left).min(a.len());
            h.update(&a[..n]);
            left -= n;
            step = step % 997 + 13;
        }
        assert_eq!(
            hex(&h.finish()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn every_length_around_the_padding_boundary_matches_one_shot_hashing() {
        let data: Vec<u8> = (0..200u8).collect();
        for len in 0..data.len() {
            let mut h = Sha256::default();
            let (x, y) = data[..len].split_at(len / 3);
            h.update(x);
            h.update(y);
            assert_eq!(h.finish(), sha256(&data[..len]), "{len}");
        }
        // Known digests at 55, 56 and 64 bytes (one or two padding blocks).
        assert_eq!(
            hex(&sha256(&[b'a'; 55])),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"
        );
        assert_eq!(
            hex(&sha256(&[b'a'; 56])),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"
        );
        assert_eq!(
            hex(&sha256(&[b'a'; 64])),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"
        );
    }

    #[test]
    fn rfc_4231_vectors() {
        let long_key = [0xaa; 131];
        for (key, data, mac) in [
            (
                &[0x0b; 20][..],
                &b"Hi There"[..],
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 20],
                &[0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                &long_key,
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                &long_key,
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ] {
            assert_eq!(hex(&hmac_sha256(key, data)), mac);
        }
        // A key of exactly one block is used as it is; one byte more is
        // hashed first (Python's `hmac`).
        assert_eq!(
            hex(&hmac_sha256(&[b'a'; 64], b"")),
            "b389ef8fc24e40e35b42b70221b466916836a241257699d090bc736b8ad21b98"
        );
        assert_eq!(
            hex(&hmac_sha256(&[b'a'; 65], b"x")),
            "5c8ad20f6d25c86ccfc9774f1c0ca49d3675f3a112d9905cce286e2636681b75"
        );
    }
}

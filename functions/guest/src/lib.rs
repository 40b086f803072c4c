//! Write wasmgate functions in Rust with the native ABI.
//!
//! A function is a `cdylib` crate built for `wasm32-unknown-unknown` with one
//! handler and one macro call:
//!
//! ```
//! use wasmgate_guest::{Request, Response, log};
//!
//! fn handle(req: Request<'_>) -> Response {
//!     log::info("greeting someone");
//!     let who = wasmgate_guest::query(req.uri, "name").unwrap_or("world");
//!     Response::text(200, format!("Hello, {who}!\n"))
//! }
//!
//! wasmgate_guest::handler!(handle);
//! ```
//!
//! The macro exports what the host looks for (see [`abi`]): `wasmgate_alloc`,
//! which hands the host a buffer for the encoded [`Request`], `wasmgate_handle`,
//! which decodes it, calls the handler and returns the encoded [`Response`], and
//! the version marker `wasmgate_abi_v1`. [`log`] writes lines to the host log.
//! It also installs [`ArenaAlloc`] as the global allocator (opt out with
//! `handler!(handle, allocator = own)`).
//!
//! On the host (any target but `wasm32`) the crate is just the [`abi`] types:
//! the server depends on it for them, and the macro only type-checks the
//! handler, so a function crate can still be unit tested natively.

#![no_std]

extern crate alloc;

pub mod abi;
mod arena;

pub use abi::{Level, Request, Response};
pub use arena::{ARENA_SIZE, ArenaAlloc};

/// Lines for the host log, tagged by the host with the function and trace id.
///
/// Outside `wasm32` these do nothing, so handlers can be tested natively.
pub mod log {
    use crate::abi::Level;

    #[cfg(target_arch = "wasm32")]
    mod host {
        #[link(wasm_import_module = "wasmgate")]
        unsafe extern "C" {
            /// `wasmgate.log(level, ptr, len)`: the host reads `len` bytes of
            /// UTF-8 at `ptr` from our memory.
            #[link_name = "log"]
            pub fn wasmgate_log(level: i32, ptr: i32, len: i32);
        }
    }

    /// Writes one line at `level`.
    #[inline]
    pub fn write(level: Level, line: &str) {
        #[cfg(target_arch = "wasm32")]
        // SAFETY: the import only reads `line.len()` bytes at `line.as_ptr()`,
        // which is a valid, initialised `&str` for the whole call; on wasm32
        // pointers and `usize` are 32 bits, so the casts are lossless.
        unsafe {
            host::wasmgate_log(level as i32, line.as_ptr() as i32, line.len() as i32)
        };
        #[cfg(not(target_arch = "wasm32"))]
        let _ = (level, line);
    }

    /// Logs at [`Level::Error`]: something failed.
    pub fn error(line: &str) {
        write(Level::Error, line)
    }

    /// Logs at [`Level::Warn`]: something looks wrong.
    pub fn warn(line: &str) {
        write(Level::Warn, line)
    }

    /// Logs at [`Level::Info`]: normal operation.
    pub fn info(line: &str) {
        write(Level::Info, line)
    }

    /// Logs at [`Level::Debug`]: detail for developers.
    pub fn debug(line: &str) {
        write(Level::Debug, line)
    }

    /// Logs at [`Level::Trace`]: even more detail.
    pub fn trace(line: &str) {
        write(Level::Trace, line)
    }
}

/// The function's key-value state: its own namespace in the server's
/// store (README "State"). Writes are the request's until it answers
/// successfully, then committed together; a trap discards them.
///
/// Outside `wasm32` every call answers [`Error::Unavailable`].
pub mod kv {
    use alloc::vec::Vec;

    /// Why a KV call failed: the host's negative result codes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Error {
        /// The key is longer than 1024 bytes.
        KeyTooLong,
        /// The value is larger than the server's `[state] max_value`.
        ValueTooLarge,
        /// The namespace is full (`max_keys` or `max_bytes`).
        Quota,
        /// `incr` on a value that is not a decimal integer.
        NotANumber,
        /// `incr` past the range of an `i64`.
        Overflow,
        /// The server's store is unavailable (its log says why).
        Unavailable,
        /// A result code this crate does not know.
        Other(i32),
    }

    fn error(code: i32) -> Error {
        match code {
            -2 => Error::KeyTooLong,
            -3 => Error::ValueTooLarge,
            -4 => Error::Quota,
            -5 => Error::NotANumber,
            -6 => Error::Overflow,
            -7 => Error::Unavailable,
            other => Error::Other(other),
        }
    }

    /// `kv_get` and `kv_delete` answer -1 for a missing key.
    const NOT_FOUND: i32 = -1;

    #[cfg(target_arch = "wasm32")]
    mod host {
        #[link(wasm_import_module = "wasmgate")]
        unsafe extern "C" {
            pub fn kv_get(key: i32, key_len: i32, out: i32, out_max: i32) -> i32;
            pub fn kv_set(key: i32, key_len: i32, val: i32, val_len: i32, ttl_ms: i64) -> i32;
            pub fn kv_delete(key: i32, key_len: i32) -> i32;
            pub fn kv_incr(key: i32, key_len: i32, delta: i64, ttl_ms: i64, out: i32) -> i32;
            pub fn kv_list(
                prefix: i32,
                prefix_len: i32,
                after: i32,
                after_len: i32,
                out: i32,
                out_max: i32,
            ) -> i32;
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod host {
        const UNAVAILABLE: i32 = -7;
        pub unsafe fn kv_get(_: i32, _: i32, _: i32, _: i32) -> i32 {
            UNAVAILABLE
        }
        pub unsafe fn kv_set(_: i32, _: i32, _: i32, _: i32, _: i64) -> i32 {
            UNAVAILABLE
        }
        pub unsafe fn kv_delete(_: i32, _: i32) -> i32 {
            UNAVAILABLE
        }
        pub unsafe fn kv_incr(_: i32, _: i32, _: i64, _: i64, _: i32) -> i32 {
            UNAVAILABLE
        }
        pub unsafe fn kv_list(_: i32, _: i32, _: i32, _: i32, _: i32, _: i32) -> i32 {
            UNAVAILABLE
        }
    }

    /// A pointer and length as the host reads them (32-bit on wasm32).
    fn raw(bytes: &[u8]) -> (i32, i32) {
        (bytes.as_ptr() as usize as i32, bytes.len() as i32)
    }

    /// The value of `key`, or `None` if there is none.
    pub fn get(key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let (k, kl) = raw(key);
        let mut buf: Vec<u8> = Vec::new();
        let mut cap = 256usize;
        loop {
            buf.resize(cap, 0);
            // SAFETY: the host reads `kl` bytes at `k` (a live slice) and
            // writes at most `cap` bytes at `buf`'s start, which holds `cap`.
            let n = unsafe { host::kv_get(k, kl, buf.as_mut_ptr() as usize as i32, cap as i32) };
            if n == NOT_FOUND {
                return Ok(None);
            }
            if n < 0 {
                return Err(error(n));
            }
            let n = n as usize;
            if n <= cap {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            // The value is `n` bytes: nothing was copied; ask again.
            cap = n;
        }
    }

    /// Sets `key` to `value`.
    pub fn set(key: &[u8], value: &[u8]) -> Result<(), Error> {
        set_with_ttl(key, value, 0)
    }

    /// Sets `key` to `value`, gone `ttl_ms` milliseconds from now (0: never).
    pub fn set_with_ttl(key: &[u8], value: &[u8], ttl_ms: u64) -> Result<(), Error> {
        let ((k, kl), (v, vl)) = (raw(key), raw(value));
        // SAFETY: the host only reads the two live slices.
        match unsafe { host::kv_set(k, kl, v, vl, ttl_ms as i64) } {
            0 => Ok(()),
            code => Err(error(code)),
        }
    }

    /// Deletes `key`; whether it was there.
    pub fn delete(key: &[u8]) -> Result<bool, Error> {
        let (k, kl) = raw(key);
        // SAFETY: the host only reads the live slice.
        match unsafe { host::kv_delete(k, kl) } {
            0 => Ok(true),
            NOT_FOUND => Ok(false),
            code => Err(error(code)),
        }
    }

    /// Adds `delta` to the integer at `key` (absent: 0) and returns the new
    /// value. Concurrent requests' increments all count.
    pub fn incr(key: &[u8], delta: i64) -> Result<i64, Error> {
        incr_with_ttl(key, delta, 0)
    }

    /// [`incr`]; a key it creates is gone `ttl_ms` from now (a window for a
    /// rate limit), an existing key keeps its expiry.
    pub fn incr_with_ttl(key: &[u8], delta: i64, ttl_ms: u64) -> Result<i64, Error> {
        let (k, kl) = raw(key);
        let mut out = [0u8; 8];
        // SAFETY: the host reads the live key slice and writes 8 bytes at
        // `out`, which holds 8.
        let code = unsafe {
            host::kv_incr(
                k,
                kl,
                delta,
                ttl_ms as i64,
                out.as_mut_ptr() as usize as i32,
            )
        };
        match code {
            0 => Ok(i64::from_le_bytes(out)),
            code => Err(error(code)),
        }
    }

    /// Every key starting with `prefix`, in order.
    pub fn list(prefix: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
        let (p, pl) = raw(prefix);
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut buf = alloc::vec![0u8; 16 * 1024];
        loop {
            let after = keys.last().map_or(&[][..], |k| &k[..]);
            let (a, al) = raw(after);
            // SAFETY: the host reads the live prefix and after slices and
            // writes at most `buf.len()` bytes at `buf`'s start.
            let n = unsafe {
                host::kv_list(
                    p,
                    pl,
                    a,
                    al,
                    buf.as_mut_ptr() as usize as i32,
                    buf.len() as i32,
                )
            };
            if n < 0 {
                return Err(error(n));
            }
            if n == 0 {
                return Ok(keys);
            }
            let mut rest = &buf[..n as usize];
            while rest.len() >= 4 {
                let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let Some(key) = rest.get(4..4 + len) else {
                    break;
                };
                keys.push(key.to_vec());
                rest = &rest[4 + len..];
            }
        }
    }
}

/// Readers of the http-wasm handler ABI (`http_handler`) into buffers the
/// caller owns, for middleware whose per-request cost matters (wasmgate
/// makes a fresh instance per request, and every instruction is
/// interpreted). The `http-wasm-guest` crate's `header.values()` and
/// `body.read()` copy each value and chunk into allocations of their own;
/// these do not allocate (a header that does not fit is the caller's to
/// retry with a larger buffer). They mix with `http-wasm-guest`: use it to
/// register the handler and answer, these to read on the hot path.
pub mod http_wasm {
    /// Whose header or body: the request's or the response's (the ABI's
    /// `header_kind` / `body_kind`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Kind {
        /// The request.
        Request = 0,
        /// The response.
        Response = 1,
    }

    #[cfg(target_arch = "wasm32")]
    #[link(wasm_import_module = "http_handler")]
    unsafe extern "C" {
        fn get_header_values(kind: i32, name: i32, name_len: i32, buf: i32, limit: i32) -> i64;
        fn read_body(kind: i32, buf: i32, limit: i32) -> i64;
    }

    /// The values of header `name` read into `buf`, each a slice of it (in
    /// the order the host holds them; none if the header is absent), or
    /// `Err(needed)` if they take more than `buf.len()` bytes: retry with
    /// a buffer of `needed`.
    #[cfg(target_arch = "wasm32")]
    pub fn header_values<'b>(
        kind: Kind,
        name: &[u8],
        buf: &'b mut [u8],
    ) -> Result<impl Iterator<Item = &'b [u8]> + use<'b>, usize> {
        let limit = i32::try_from(buf.len()).unwrap_or(i32::MAX);
        // SAFETY: the host reads `name` and writes at most `limit` bytes
        // at `buf`, both live; wasm32 addresses and lengths are 32-bit.
        let packed = unsafe {
            get_header_values(
                kind as i32,
                name.as_ptr() as i32,
                name.len() as i32,
                buf.as_mut_ptr() as i32,
                limit,
            )
        };
        split_values(buf, packed)
    }

    /// The values in the first `len` bytes of `buf` (the low 32 bits of
    /// `packed`; the high 32 are their count), each ended by a NUL, or
    /// `Err(len)` if `buf` is shorter (the host then wrote nothing).
    pub fn split_values(buf: &[u8], packed: i64) -> Result<impl Iterator<Item = &[u8]>, usize> {
        let count = (packed >> 32) as u32 as usize;
        let len = packed as u32 as usize;
        let Some(written) = buf.get(..len) else {
            return Err(len);
        };
        // Each value ends with a NUL: the piece after the last is not one.
        Ok(written.split(|&b| b == 0).take(count))
    }

    /// Appends the whole body to `out`, reading straight into its spare
    /// capacity (one allocation for a body that fits the first 4 KiB
    /// reserved, doubling after).
    #[cfg(target_arch = "wasm32")]
    pub fn read_body_into(kind: Kind, out: &mut alloc::vec::Vec<u8>) {
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.len().max(4096));
            }
            let spare = out.spare_capacity_mut();
            let limit = i32::try_from(spare.len()).unwrap_or(i32::MAX);
            // SAFETY: the host writes at most `limit` bytes into the spare
            // capacity and returns how many.
            let packed = unsafe { read_body(kind as i32, spare.as_mut_ptr() as i32, limit) };
            let (eof, n) = ((packed >> 32) != 0, packed as u32 as usize);
            let n = n.min(spare.len());
            // SAFETY: the host initialised those `n` bytes.
            unsafe { out.set_len(out.len() + n) };
            if eof || n == 0 {
                return;
            }
        }
    }
}

/// SHA-256 and HMAC-SHA256 computed by the host (`wasmgate.sha256`,
/// `wasmgate.hmac_sha256`): ~10× less fuel and far less time than the same
/// digest interpreted as guest code. At most 1 MiB of key and data per
/// call (more traps). wasm32 only: there is no host to ask elsewhere.
#[cfg(target_arch = "wasm32")]
pub mod digest {
    #[link(wasm_import_module = "wasmgate")]
    unsafe extern "C" {
        #[link_name = "sha256"]
        fn host_sha256(data: i32, data_len: i32, out: i32);
        #[link_name = "hmac_sha256"]
        fn host_hmac_sha256(key: i32, key_len: i32, data: i32, data_len: i32, out: i32);
    }

    /// The SHA-256 digest of `data`.
    pub fn sha256(data: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        // SAFETY: the host reads the live `data` slice and writes 32 bytes
        // at `out`, which holds 32; wasm32 pointers and lengths are 32-bit.
        unsafe {
            host_sha256(
                data.as_ptr() as i32,
                data.len() as i32,
                out.as_mut_ptr() as i32,
            )
        };
        out
    }

    /// The HMAC-SHA256 of `data` under `key`.
    pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        // SAFETY: as in `sha256`, with the live `key` slice read too.
        unsafe {
            host_hmac_sha256(
                key.as_ptr() as i32,
                key.len() as i32,
                data.as_ptr() as i32,
                data.len() as i32,
                out.as_mut_ptr() as i32,
            )
        };
        out
    }
}

/// The raw value of the first `key=value` pair named `key` in the query
/// string of `uri` (the part after `?`), not percent-decoded. `Some("")` for
/// `?key` or `?key=`.
///
/// ```
/// assert_eq!(wasmgate_guest::query("/sieve?x=1&n=10", "n"), Some("10"));
/// assert_eq!(wasmgate_guest::query("/sieve?n", "n"), Some(""));
/// assert_eq!(wasmgate_guest::query("/sieve", "n"), None);
/// ```
pub fn query<'a>(uri: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = uri.split_once('?')?;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then_some(v)
    })
}

/// Exports the native ABI around a handler `fn(Request<'_>) -> Response`.
///
/// Use it once per crate, at the top level:
///
/// ```
/// # use wasmgate_guest::{Request, Response};
/// fn handle(_req: Request<'_>) -> Response {
///     Response::text(200, "ok\n")
/// }
/// wasmgate_guest::handler!(handle);
/// ```
///
/// On `wasm32` this defines the exports `wasmgate_alloc`, `wasmgate_handle`
/// and `wasmgate_abi_v1`, and makes [`ArenaAlloc`] over `std`'s allocator the
/// global allocator; elsewhere it only checks the handler's type. A crate
/// that brings its own global allocator (or has no `std`) writes
/// `handler!(handle, allocator = own)`.
#[macro_export]
macro_rules! handler {
    ($handler:path) => {
        $crate::handler!($handler, allocator = arena);
    };
    ($handler:path, allocator = arena) => {
        $crate::handler!($handler, allocator = own);

        /// Small allocations from a 16 KiB static arena first.
        #[cfg(target_arch = "wasm32")]
        #[global_allocator]
        static WASMGATE_ALLOCATOR: $crate::ArenaAlloc<::std::alloc::System> =
            $crate::ArenaAlloc::new(::std::alloc::System);
    };
    ($handler:path, allocator = own) => {
        const _: fn($crate::Request<'_>) -> $crate::Response = $handler;

        /// Returns a buffer of `len` bytes for the encoded request, or 0.
        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub extern "C" fn wasmgate_alloc(len: i32) -> i32 {
            $crate::__private::wasmgate_alloc(len)
        }

        /// Handles the request at `ptr..ptr+len`; returns `(ptr << 32) | len`
        /// of the encoded response.
        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub extern "C" fn wasmgate_handle(ptr: i32, len: i32) -> i64 {
            $crate::__private::wasmgate_handle(ptr, len, $handler)
        }

        /// Marks this module as built for native ABI version 1.
        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub extern "C" fn wasmgate_abi_v1() {}
    };
}

/// What [`handler!`] expands to call. Not a stable API.
#[doc(hidden)]
pub mod __private {
    use crate::abi::{Request, Response};
    use alloc::vec::Vec;
    use core::sync::atomic::{AtomicUsize, Ordering};

    /// The one request buffer handed out by [`alloc_request`] and not yet
    /// taken back: its address (0 = none), length and capacity. The host
    /// makes one request per instance, so one slot is enough; a second
    /// `alloc` simply leaks the first buffer until the instance is dropped.
    /// Atomics (plain loads and stores on single-threaded wasm32) keep this
    /// free of `static mut`.
    static BUF_PTR: AtomicUsize = AtomicUsize::new(0);
    static BUF_LEN: AtomicUsize = AtomicUsize::new(0);
    static BUF_CAP: AtomicUsize = AtomicUsize::new(0);

    /// The encoding of `Response::new(500)`, returned if encoding the real
    /// response fails (it cannot, short of a bug in postcard).
    pub const ENCODED_500: [u8; 4] = [0xf4, 0x03, 0x00, 0x00];

    /// Allocates a zeroed buffer of `len` bytes, remembers it and returns its
    /// address; `None` if the allocator cannot provide it.
    pub fn alloc_request(len: usize) -> Option<*mut u8> {
        let mut buf: Vec<u8> = Vec::new();
        buf.try_reserve_exact(len).ok()?;
        buf.resize(len, 0);
        let mut buf = core::mem::ManuallyDrop::new(buf);
        let ptr = buf.as_mut_ptr();
        BUF_LEN.store(buf.len(), Ordering::Relaxed);
        BUF_CAP.store(buf.capacity(), Ordering::Relaxed);
        BUF_PTR.store(ptr as usize, Ordering::Relaxed);
        Some(ptr)
    }

    /// Takes back the buffer of the last [`alloc_request`] if `ptr` is its
    /// address and `len` fits in it, truncated to `len`. Anything else (a
    /// pointer we never handed out, a buffer already taken, a length past its
    /// end) gives `None`.
    pub fn take_request(ptr: usize, len: usize) -> Option<Vec<u8>> {
        let (cap, buf_len) = (
            BUF_CAP.load(Ordering::Relaxed),
            BUF_LEN.load(Ordering::Relaxed),
        );
        if ptr == 0 || BUF_PTR.load(Ordering::Relaxed) != ptr || len > buf_len {
            return None;
        }
        BUF_PTR.store(0, Ordering::Relaxed);
        // SAFETY: `ptr`, `buf_len` and `cap` are exactly the parts of a
        // `Vec<u8>` that `alloc_request` forgot (the slot was cleared above,
        // so it is rebuilt once), its `buf_len` bytes were zeroed and hence
        // initialised, and `len <= buf_len`, so truncating keeps that true.
        let mut buf = unsafe { Vec::from_raw_parts(ptr as *mut u8, buf_len, cap) };
        buf.truncate(len);
        Some(buf)
    }

    /// Decodes a request, calls the handler and encodes its response.
    /// Undecodable input gets a 400 instead of reaching the handler.
    pub fn respond<F>(encoded: &[u8], handler: F) -> Vec<u8>
    where
        F: FnOnce(Request<'_>) -> Response,
    {
        let response = match postcard::from_bytes::<Request<'_>>(encoded) {
            Ok(request) => handler(request),
            Err(_) => Response::text(400, "bad request encoding"),
        };
        postcard::to_allocvec(&response).unwrap_or_else(|_| ENCODED_500.to_vec())
    }

    /// Packs a response location the way `wasmgate_handle` returns it.
    pub fn pack(ptr: u32, len: u32) -> i64 {
        ((u64::from(ptr) << 32) | u64::from(len)) as i64
    }

    /// `wasmgate_alloc`: a buffer of `len` bytes for the request, 0 if `len`
    /// is negative or the memory cannot be had.
    #[cfg(target_arch = "wasm32")]
    pub fn wasmgate_alloc(len: i32) -> i32 {
        match usize::try_from(len).ok().and_then(alloc_request) {
            Some(ptr) => ptr as usize as i32,
            None => 0,
        }
    }

    /// `wasmgate_handle`: handles the request the host wrote into the buffer
    /// from `wasmgate_alloc` and returns where the encoded response is. The
    /// response is leaked: the host reads it, then drops the whole instance.
    #[cfg(target_arch = "wasm32")]
    pub fn wasmgate_handle<F>(ptr: i32, len: i32, handler: F) -> i64
    where
        F: FnOnce(Request<'_>) -> Response,
    {
        let request = usize::try_from(len)
            .ok()
            .and_then(|len| take_request(ptr as u32 as usize, len));
        let encoded = match request {
            Some(request) => respond(&request, handler),
            None => postcard::to_allocvec(&Response::text(400, "bad request buffer"))
                .unwrap_or_else(|_| ENCODED_500.to_vec()),
        };
        let encoded: &'static mut [u8] = encoded.leak();
        // wasm32 addresses and lengths are 32 bits: the casts are lossless.
        pack(encoded.as_ptr() as usize as u32, encoded.len() as u32)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_wasm_values_are_the_nul_ended_pieces_that_fit() {
        use crate::http_wasm::split_values;
        let buf = b"sha256=ab\0second\0garbage";
        let packed = |count: i64, len: i64| (count << 32) | len;
        let got: alloc::vec::Vec<&[u8]> = split_values(buf, packed(2, 17)).unwrap().collect();
        assert_eq!(got, [&b"sha256=ab"[..], b"second"]);
        let got: alloc::vec::Vec<&[u8]> = split_values(buf, packed(0, 0)).unwrap().collect();
        assert!(got.is_empty());
        // An empty value is one.
        let got: alloc::vec::Vec<&[u8]> = split_values(b"\0", packed(1, 1)).unwrap().collect();
        assert_eq!(got, [&b""[..]]);
        // Longer than the buffer: the host wrote nothing; retry with 40.
        assert_eq!(split_values(buf, packed(3, 40)).err(), Some(40));
    }

    use super::__private::*;
    use super::*;
    use alloc::{string::String, vec};

    fn echo_uri(req: Request<'_>) -> Response {
        Response::text(200, req.uri)
    }

    #[test]
    fn respond_decodes_calls_and_encodes() {
        let req = Request {
            method: "GET",
            uri: "/hello?name=pi",
            headers: vec![("x", b"1".as_slice())],
            body: b"",
            trace_id: "t",
        };
        let encoded = postcard::to_allocvec(&req).unwrap();
        let out: Response = postcard::from_bytes(&respond(&encoded, echo_uri)).unwrap();
        assert_eq!(out, Response::text(200, "/hello?name=pi"));
    }

    #[test]
    fn respond_answers_garbage_with_400() {
        for garbage in [&b""[..], b"\xff\xff\xff\xff\xff\xff", b"\x03GE\xff"] {
            let out: Response =
                postcard::from_bytes(&respond(garbage, |_| unreachable!())).unwrap();
            assert_eq!(out, Response::text(400, "bad request encoding"));
        }
    }

    #[test]
    fn encoded_500_is_response_500() {
        assert_eq!(
            postcard::to_allocvec(&Response::new(500)).unwrap(),
            ENCODED_500
        );
    }

    #[test]
    fn pack_puts_pointer_high_and_length_low() {
        assert_eq!(pack(0x10, 0x20), 0x0000_0010_0000_0020);
        assert_eq!(pack(u32::MAX, u32::MAX), -1);
    }

    // One test for the whole buffer slot: it is global state.
    #[test]
    fn request_buffer_is_taken_back_once_and_only_if_it_fits() {
        let ptr = alloc_request(16).unwrap() as usize;
        assert_eq!(take_request(ptr + 1, 4), None);
        assert_eq!(take_request(ptr, 17), None);
        assert_eq!(take_request(0, 0), None);
        let buf = take_request(ptr, 5).unwrap();
        assert_eq!(buf, [0; 5]);
        assert_eq!(take_request(ptr, 5), None, "taken twice");

        let ptr = alloc_request(0).unwrap() as usize;
        assert_eq!(take_request(ptr, 0).unwrap().len(), 0);
        assert!(alloc_request(usize::MAX).is_none());
    }

    #[test]
    fn log_is_a_no_op_off_wasm() {
        log::error("e");
        log::warn("w");
        log::info(&String::from("i"));
        log::debug("d");
        log::trace("t");
    }
}

//! `sieve`: a CPU-heavy function for deadline and fuel tests.
//!
//! `GET /sieve?n=N` counts the primes below `N` (default 100 000, at most
//! 50 000 000) with a sieve of Eratosthenes and answers
//! "primes below N: COUNT". A missing cap would let one request ask for any
//! amount of memory and time; a bad or too large `n` gets a 400.
//!
//! Memory: the sieve keeps one bit per odd number, `N / 16` bytes: about
//! 6 KiB for the default, 610 KiB for `n=10000000`, 3 MiB (48 Wasm pages on
//! top of the module's own) for the cap. Time grows as `N log log N`; at the
//! cap it is billions of Wasm instructions, far past a sensible fuel budget,
//! which is the point.

use wasmgate_guest::{Request, Response};

/// `n` when the query has none.
const DEFAULT_N: u32 = 100_000;
/// The largest `n` accepted: 50 million needs ~3 MiB of sieve.
const MAX_N: u32 = 50_000_000;

fn handle(req: Request<'_>) -> Response {
    let n = match wasmgate_guest::query(req.uri, "n") {
        None => DEFAULT_N,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if n <= MAX_N => n,
            _ => {
                return Response::text(
                    400,
                    format!("n must be an integer from 0 to {MAX_N}, got `{raw}`\n"),
                );
            }
        },
    };
    Response::text(
        200,
        format!("primes below {n}: {}\n", count_primes_below(n)),
    )
}

wasmgate_guest::handler!(handle);

/// The number of primes `p < n`. Bit `i` of the sieve stands for the odd
/// number `2i + 1`; a set bit means composite.
fn count_primes_below(n: u32) -> u32 {
    if n <= 2 {
        return 0;
    }
    let odds = (n / 2) as usize; // odd numbers below n: 1, 3, …
    let mut composite = vec![0u8; odds.div_ceil(8)];
    let is_set = |bits: &[u8], i: usize| bits[i / 8] & (1 << (i % 8)) != 0;
    let mut p = 3usize;
    while p * p < n as usize {
        if !is_set(&composite, p / 2) {
            // Odd multiples of p from p²: values step by 2p, indices by p.
            let mut i = p * p / 2;
            while i < odds {
                composite[i / 8] |= 1 << (i % 8);
                i += p;
            }
        }
        p += 2;
    }
    // 2, plus every odd number from 3 up that is not marked.
    1 + (1..odds).filter(|&i| !is_set(&composite, i)).count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_primes() {
        let known = [(0, 0), (2, 0), (3, 1), (4, 2), (10, 4), (11, 4), (12, 5)];
        for (n, count) in known {
            assert_eq!(count_primes_below(n), count, "n = {n}");
        }
        assert_eq!(count_primes_below(100_000), 9592);
        assert_eq!(count_primes_below(1_000_000), 78498);
    }

    #[test]
    fn rejects_bad_n() {
        let get = |uri| {
            handle(Request {
                method: "GET",
                uri,
                headers: Vec::new(),
                body: b"",
                trace_id: "t",
            })
        };
        assert_eq!(get("/sieve").body, b"primes below 100000: 9592\n");
        assert_eq!(get("/sieve?n=50000001").status, 400);
        assert_eq!(get("/sieve?n=-1").status, 400);
        assert_eq!(get("/sieve?n=50000000").status, 200);
    }
}

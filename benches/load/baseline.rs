//! The native baseline of the load benchmark: the same server as wasmgate
//! with the guest replaced by plain Rust handlers.
//!
//! Same stack as `wasmgate serve`: one thread, one `smol::LocalExecutor`,
//! one task per connection, `TCP_NODELAY`, wasmgate's own HTTP framing
//! (`wasmgate::internals::server::{read_request, write}`), the same write timeout, trace
//! ids, access log line and `env_logger` set-up. The handlers do the work
//! the example functions do:
//!
//! - `/hello[?name=N]`: the greeting, logged once at info (as `hello.wasm`
//!   logs it through `wasmgate.log`);
//! - `/echo`: a JSON description of the request (as `echo.wasm`);
//! - `/tax`: parses a JSON order, adds 15% tax, answers JSON (as `tax.wasm`,
//!   without the wasi-json envelope: that is the overhead being measured);
//! - `/sieve?n=N`: counts primes below N (as `sieve.wasm`).
//!
//! ```sh
//! cargo run --release --example baseline -- 127.0.0.1:8090
//! ```

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use smol::net::{TcpListener, TcpStream};
use wasmgate::internals::http::{self, DecodeError, Decoder, Request, Response};
use wasmgate::internals::limits::ServerLimits;
use wasmgate::internals::server::{read_request, run_local, write};

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let listen: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".into())
        .parse()
        .expect("usage: baseline [HOST:PORT]");
    let result = run_local(move |executor| async move {
        let listener = TcpListener::bind(listen).await?;
        println!("baseline listening on http://{}", listener.local_addr()?);
        let limits = Rc::new(ServerLimits::default());
        loop {
            let (stream, _) = listener.accept().await?;
            let limits = Rc::clone(&limits);
            executor
                .spawn(async move {
                    let _ = connection(stream, &limits).await;
                })
                .detach();
        }
    });
    if let Err(e) = result {
        eprintln!("baseline: {e}");
        std::process::exit(1);
    }
}

async fn connection(mut stream: TcpStream, limits: &ServerLimits) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let framing = http::Limits::from(limits);
    let mut decoder = Decoder::new();
    loop {
        let req = match read_request(&mut decoder, &mut stream, &framing, &()).await {
            Ok(req) => req,
            Err(DecodeError::Closed) => return Ok(()),
            Err(DecodeError::Io(e)) => return Err(e),
            Err(_) => {
                let r = text(400, "bad request\n".into());
                return write(&mut stream, &r, false, false, limits.write_timeout).await;
            }
        };
        let started = Instant::now();
        let trace = trace_id();
        let (name, mut response) = handle(&req, &trace);
        response
            .headers
            .push(("x-trace-id".into(), trace.as_bytes().to_vec()));
        log::info!(
            target: "access",
            "{} {} fn={} status={} error=- fuel=0 us={} trace={}",
            req.method,
            req.uri,
            name,
            response.status,
            started.elapsed().as_micros(),
            trace,
        );
        write(
            &mut stream,
            &response,
            req.keep_alive,
            false,
            limits.write_timeout,
        )
        .await?;
        if !req.keep_alive {
            return Ok(());
        }
    }
}

fn handle(req: &Request, trace: &str) -> (&'static str, Response) {
    let path = req.path();
    let name = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match name {
        "hello" => {
            let body = match wasmgate_guest::query(&req.uri, "name") {
                Some(n) => format!("Hello, {}!\n", percent_decode(n)),
                None => String::from("Hello from wasmgate!\n"),
            };
            log::info!(target: "guest", "[hello {trace}] {}", body.trim_end());
            ("hello", text(200, body))
        }
        "echo" => {
            let headers: Vec<(&str, String)> = req
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), String::from_utf8_lossy(v).into_owned()))
                .collect();
            let mut body = serde_json::to_vec(&serde_json::json!({
                "method": req.method,
                "uri": req.uri,
                "headers": headers,
                "body": String::from_utf8_lossy(&req.body),
                "trace_id": trace,
            }))
            .unwrap_or_default();
            body.push(b'\n');
            ("echo", json(200, body))
        }
        "tax" => {
            #[derive(serde::Deserialize)]
            struct Order {
                id: serde_json::Value,
                value: f64,
            }
            let (status, body) = match serde_json::from_slice::<Order>(&req.body) {
                Ok(order) => {
                    let total = (order.value * 1.15 * 100.0).round() / 100.0;
                    (
                        200,
                        serde_json::json!({"order_id": order.id, "total_final": total}),
                    )
                }
                Err(e) => (400, serde_json::json!({"error": e.to_string()})),
            };
            ("tax", json(status, body.to_string().into_bytes()))
        }
        "sieve" => {
            let n = wasmgate_guest::query(&req.uri, "n")
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(100_000)
                .min(50_000_000);
            let body = format!("primes below {n}: {}\n", count_primes_below(n));
            ("sieve", text(200, body))
        }
        _ => ("-", text(404, "not found\n".into())),
    }
}

fn text(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), b"text/plain; charset=utf-8".to_vec())],
        body: body.into_bytes(),
        stream: None,
    }
}

fn json(status: u16, body: Vec<u8>) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body,
        stream: None,
    }
}

/// A new trace id, as wasmgate generates one.
fn trace_id() -> heapless::String<64> {
    let mut id = heapless::String::new();
    for _ in 0..32 {
        let _ = id.push(char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'));
    }
    id
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |j: usize| bytes.get(j).and_then(|b| (*b as char).to_digit(16));
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn count_primes_below(n: u32) -> u32 {
    if n <= 2 {
        return 0;
    }
    let odds = (n / 2) as usize;
    let mut composite = vec![0u8; odds.div_ceil(8)];
    let is_set = |bits: &[u8], i: usize| bits[i / 8] & (1 << (i % 8)) != 0;
    let mut p = 3usize;
    while p * p < n as usize {
        if !is_set(&composite, p / 2) {
            let mut i = p * p / 2;
            while i < odds {
                composite[i / 8] |= 1 << (i % 8);
                i += p;
            }
        }
        p += 2;
    }
    1 + (1..odds).filter(|&i| !is_set(&composite, i)).count() as u32
}

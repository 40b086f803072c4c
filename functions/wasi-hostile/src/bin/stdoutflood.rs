// Expected: 502 `bad-response` — writes to stdout forever; the host caps
// stdout at `max_response` and traps the write that crosses it.
use std::io::Write;

fn main() {
    let chunk = [b'x'; 4096];
    let mut out = std::io::stdout().lock();
    loop {
        // Errors are ignored: the cap must stop this, not the guest giving up.
        let _ = out.write_all(&chunk);
    }
}

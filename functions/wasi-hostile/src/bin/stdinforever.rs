// Expected: 504 `deadline` — reads stdin in a loop forever, ignoring EOF
// (every `fd_read` after the request returns 0 bytes, and it asks again).
use std::io::Read;

fn main() {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 256];
    loop {
        let _ = stdin.read(&mut buf);
    }
}

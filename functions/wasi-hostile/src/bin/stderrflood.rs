// Expected: 504 `deadline` — writes lines to stderr forever. The host log is
// capped, so nothing grows without bound; the fuel runs out.
use std::io::Write;

fn main() {
    let mut err = std::io::stderr().lock();
    let mut i: u64 = 0;
    loop {
        let _ = writeln!(err, "stderr flood line {i}");
        i = i.wrapping_add(1);
    }
}

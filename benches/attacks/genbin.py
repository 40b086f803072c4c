#!/usr/bin/env python3
"""Hand-built binary modules whose text form is too big for wat2wasm: one native-ABI
module whose wasmgate_handle calls $big (i32)->i32 with a given body."""
import os, sys
out = sys.argv[1]
def leb(n):
    b = bytearray()
    while True:
        c = n & 0x7f; n >>= 7
        if n: b.append(c | 0x80)
        else: b.append(c); return bytes(b)
def sleb(n):
    b = bytearray()
    while True:
        c = n & 0x7f; n >>= 7
        if (n == 0 and not c & 0x40) or (n == -1 and c & 0x40): b.append(c); return bytes(b)
        b.append(c | 0x80)
def sec(i, payload): return bytes([i]) + leb(len(payload)) + payload
def vec(items): return leb(len(items)) + b''.join(items)
def name(s): return leb(len(s)) + s.encode()
def module(big_locals, big_code):
    types = vec([b'\x60\x00\x00', b'\x60\x01\x7f\x01\x7f', b'\x60\x02\x7f\x7f\x01\x7e'])
    funcs = vec([leb(0), leb(1), leb(2), leb(1)])
    mem = vec([b'\x00\x01'])
    exps = vec([name('memory') + b'\x02\x00', name('wasmgate_abi_v1') + b'\x00\x00',
                name('wasmgate_alloc') + b'\x00\x01', name('wasmgate_handle') + b'\x00\x02'])
    def body(locals_, code):
        b = locals_ + code
        return leb(len(b)) + b
    codes = vec([body(b'\x00', b'\x0b'), body(b'\x00', b'\x41' + sleb(1024) + b'\x0b'),
                 body(b'\x00', b'\x41\x01\x10\x03\x1a\x42\x05\x0b'),
                 body(big_locals, big_code)])
    data = vec([b'\x00\x41\x00\x0b' + vec([bytes([c]) for c in b'\xc8\x01\x00\x02ok'])])
    return b'\0asm\1\0\0\0' + sec(1, types) + sec(3, funcs) + sec(5, mem) + sec(7, exps) + sec(10, codes) + sec(11, data)
def write(n, m):
    open(os.path.join(out, n + '.wasm'), 'wb').write(m)
    print(n, len(m))
MiB = 1024 * 1024
# straight-line: local.get 0; i32.const 1; i32.add; local.set 1 (7 bytes)
op = b'\x20\x00\x41\x01\x6a\x21\x01'
write('hugefn', module(b'\x01\x01\x7f', op * (15 * MiB // 7) + b'\x20\x00\x0b'))
# deep block nesting: 'block' (02 40) * d then 'end' * d
d = 5 * MiB // 3
write('deepnest', module(b'\x00', b'\x02\x40' * d + b'\x0b' * d + b'\x20\x00\x0b'))
# one huge br_table: 14 MiB of targets (label 0)
n = 14 * MiB
write('brtable2', module(b'\x00', b'\x02\x40\x20\x00\x0e' + leb(n) + b'\x00' * n + b'\x00\x0b\x20\x00\x0b'))
# many locals (50000 is wasmparser's max) and a body using the last one a lot
write('maxlocals', module(b'\x01' + leb(50000) + b'\x7e', (b'\x20' + leb(50000) + b'\x21' + leb(49999)) * (14 * MiB // 8) + b'\x20\x00\x0b'))

#!/usr/bin/env python3
"""Modules just under the structural limits added for issue 9 (re-review):
max_module_function_size 1 MiB, max_module_nesting 10000, max_module_size 16 MiB.
Each: native ABI, wasmgate_handle calls the first of N big (i32)->i32 functions;
eager translation translates all N at load.  usage: genlimits.py OUT"""
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
def module(bigs, tag=b''):
    """bigs: list of (locals, code) bodies of type (i32)->i32."""
    types = vec([b'\x60\x00\x00', b'\x60\x01\x7f\x01\x7f', b'\x60\x02\x7f\x7f\x01\x7e'])
    funcs = vec([leb(0), leb(1), leb(2)] + [leb(1)] * len(bigs))
    mem = vec([b'\x00\x01'])
    exps = vec([name('memory') + b'\x02\x00', name('wasmgate_abi_v1') + b'\x00\x00',
                name('wasmgate_alloc') + b'\x00\x01', name('wasmgate_handle') + b'\x00\x02'])
    def body(locals_, code):
        b = locals_ + code
        return leb(len(b)) + b
    codes = vec([body(b'\x00', b'\x0b'), body(b'\x00', b'\x41' + sleb(1024) + b'\x0b'),
                 body(b'\x00', b'\x41\x01\x10\x03\x1a\x42\x05\x0b')] + [body(l, c) for l, c in bigs])
    data = vec([b'\x00\x41\x00\x0b' + vec([bytes([c]) for c in b'\xc8\x01\x00\x02ok'])])
    m = b'\0asm\1\0\0\0' + sec(1, types) + sec(3, funcs) + sec(5, mem) + sec(7, exps) + sec(10, codes) + sec(11, data)
    if tag: m += sec(0, name('t') + tag)
    return m
MiB = 1024 * 1024
FN = MiB - 64          # one body just under max_module_function_size
N = 15                 # 15 such bodies: just under max_module_size (16 MiB)
def write(n, m):
    open(os.path.join(out, n + '.wasm'), 'wb').write(m); print(n, len(m))
def fill(unit, tail=b'\x20\x00\x0b', size=FN):
    return unit * ((size - len(tail)) // len(unit)) + tail
# A: straight-line local.get/i32.const/i32.add/local.set
op = b'\x20\x00\x41\x01\x6a\x21\x01'
straight = (b'\x01\x01\x7f', fill(op))
# B: blocks nested 9 990 deep, repeated until 1 MiB
D = 9990
grp = b'\x02\x40' * D + b'\x0b' * D
nest = (b'\x00', grp * ((FN - 3) // len(grp)) + b'\x20\x00\x0b')
# C: 50 000 i64 locals, copying the high ones
locs = (b'\x01' + leb(20000) + b'\x7e', fill(b'\x20' + leb(19999) + b'\x21' + leb(19998)))
# D: loops nested 9 990 deep, each with a value (i32.const 1 / drop inside)
lgrp = (b'\x03\x40\x41\x01\x1a') * D + b'\x0b' * D
loops = (b'\x00', lgrp * ((FN - 3) // len(lgrp)) + b'\x20\x00\x0b')
# E: br_table inside 1000 nested blocks, ~1 M targets spread over all depths
# E: br_tables of 65 000 targets (wasmparser's bound is 65 520) over 127 depths
targets = bytes((i % 127) for i in range(65000))
one = b'\x20\x00\x0e' + leb(len(targets)) + targets + b'\x00'
k = (FN - 3 * 127 - 8) // len(one)
brt = (b'\x00', b'\x02\x40' * 127 + one * k + b'\x0b' * 127 + b'\x20\x00\x0b')
for nm, big in [('straight', straight), ('nest', nest), ('locs', locs), ('loops', loops), ('brt', brt)]:
    for k in [int(a) for a in (sys.argv[2:] or ['1', '15'])]:
        write(nm + str(k), module([big] * k))

#!/usr/bin/env python3
"""deepnest15/deeploop/deepif: one function of deeply nested blocks (binary, via genbin.module)."""
import sys
out = sys.argv[1]
exec(open(__file__.replace('deepnest.py', 'genbin.py')).read().split("MiB = 1024 * 1024")[0].replace("out = sys.argv[1]", "out = %r" % out))
MiB = 1 << 20
d = 15 * MiB // 3
write('deepnest15', module(b'\x00', b'\x02\x40' * d + b'\x0b' * d + b'\x20\x00\x0b'))
d = 5 * MiB // 3
write('deeploop', module(b'\x00', b'\x03\x40' * d + b'\x0b' * d + b'\x20\x00\x0b'))
d = 5 * MiB // 5
write('deepif', module(b'\x00', b'\x20\x00\x04\x40' * d + b'\x0b' * d + b'\x20\x00\x0b'))

#!/usr/bin/env python3
"""Client attacks for the re-review (lingering close, eviction). usage: clients2.py PORT TEST [ARGS]
bigpost N MIB [HOST]: N parallel POST /echo of MIB MiB each, whole body sent before reading;
  counts statuses / RST / EPIPE (A7: the 503 must arrive, not a reset).
lingerhold N SECS: N connections from 127.0.0.9 each send 'GET /hello, Connection: close' and never
  close or read; re-opened as the server drops them, for SECS; meanwhile bigpost 10 x 15 MiB
  from 127.0.0.1 and /hello latency; prints server fds (needs PID env).
lingerflood SECS: as fast as possible, open, send a 1 MiB POST to a refused path, never close."""
import socket, sys, time, threading, os, collections
port = int(sys.argv[1]); test = sys.argv[2]
def fds():
    pid = os.environ.get('PID')
    return len(os.listdir(f'/proc/{pid}/fd')) if pid else -1
def hello(host='127.0.0.1'):
    t = time.time()
    try:
        s = socket.create_connection((host, port), timeout=10); s.sendall(b'GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        d = b''
        while True:
            c = s.recv(65536)
            if not c: break
            d += c
        return d.split(b'\r\n')[0].decode()[9:12], round(time.time() - t, 3)
    except Exception as e:
        return 'EXC ' + type(e).__name__, round(time.time() - t, 3)
def bigpost(n, mib, host='127.0.0.1'):
    res = collections.Counter()
    def one():
        t0 = time.time()
        try:
            s = socket.create_connection((host, port), timeout=20)
            body = b'A' * (mib << 20)
            s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n' % len(body))
            t0 = time.time()
            try: s.sendall(body)
            except Exception as e:
                res['send:%s@%.1fs' % (type(e).__name__, time.time() - t0)] += 1
                s.settimeout(3)
            d = b''
            while True:
                c = s.recv(65536)
                if not c: break
                d += c
            k = d.split(b'\r\n')[0].decode()[9:12] or 'EOF-empty'
            if b'x-wasmgate-error: ' in d: k += ' ' + d.split(b'x-wasmgate-error: ')[1].split(b'\r\n')[0].decode()
            res[k] += 1
        except Exception as e: res['EXC %s@%.1fs' % (type(e).__name__, time.time() - t0)] += 1
    ts = [threading.Thread(target=one) for _ in range(n)]
    for t in ts: t.start()
    for t in ts: t.join()
    return dict(res)
if test == 'bigpost':
    print(bigpost(int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else '127.0.0.1'))
elif test == 'lingerhold':
    n, secs = int(sys.argv[3]), float(sys.argv[4])
    stop = time.time() + secs; held = collections.Counter()
    def holder():
        while time.time() < stop:
            try:
                s = socket.create_connection(('127.0.0.9', port), timeout=5)
                s.sendall(b'GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
                t = time.time()
                # never read, never close: wait until the server's FIN+RST ends it
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
                while time.time() < stop:
                    time.sleep(0.5)
                    try:
                        s.send(b'x' * 100)    # keep sending: the server discards while lingering
                    except Exception: break
                held['closed-after-%.0fs' % (time.time() - t)] += 1
                s.close()
            except Exception as e: held['EXC ' + type(e).__name__] += 1; time.sleep(0.1)
    ts = [threading.Thread(target=holder) for _ in range(n)]
    for t in ts: t.start()
    time.sleep(1.5)
    for k in range(int(os.environ.get('ROUNDS', '3'))):
        print('fds', fds(), 'hello', hello(), 'bigpost 10x15MiB', bigpost(10, 15), 'fds', fds()); time.sleep(0.5)
    for t in ts: t.join()
    print('holders', dict(held), 'fds', fds())

#!/usr/bin/env python3
"""Client-side attacks. usage: clients.py PORT TEST"""
import socket, sys, time, threading, os
port = int(sys.argv[1]); test = sys.argv[2]
def conn(host='127.0.0.1', fam=socket.AF_INET, timeout=10):
    s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(timeout); s.connect((host, port)); return s
def hello(host='127.0.0.1', fam=socket.AF_INET):
    t = time.time()
    try:
        s = conn(host, fam); s.sendall(b'GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        d = b''
        while True:
            c = s.recv(65536)
            if not c: break
            d += c
        return d.split(b'\r\n')[0].decode() + ' ' + (d.split(b'x-wasmgate-error: ')[1].split(b'\r\n')[0].decode() if b'x-wasmgate-error' in d else ''), time.time() - t
    except Exception as e:
        return 'EXC ' + repr(e), time.time() - t
if test == 'pipeline-noread':
    # many pipelined requests for a big response, never read: server must not buffer unboundedly
    ss = []
    for i in range(20):
        s = conn(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            for j in range(2000):
                s.sendall(b'GET /bigresp HTTP/1.1\r\nHost: x\r\n\r\n')
        except Exception as e: print('send stopped', i, j, e)
        ss.append(s)
    for k in range(10):
        print('hello', hello()); time.sleep(1)
elif test == 'trickle-body':
    # 250 connections each announcing a 512 KiB body and trickling it one byte/2s
    ss = []
    for i in range(int(sys.argv[3]) if len(sys.argv) > 3 else 60):
        try:
            s = conn(); s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 524288\r\n\r\n' + b'A' * 65536); ss.append(s)
        except Exception as e: print('conn', i, e); break
    print('opened', len(ss)); print('hello', hello())
    for k in range(8):
        for s in ss:
            try: s.send(b'A')
            except Exception: pass
        time.sleep(1)
        print('hello', hello())
elif test == 'trickle-chunked':
    ss = []
    for i in range(60):
        try:
            s = conn(); s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'); ss.append(s)
        except Exception as e: print('conn', i, e); break
    # each sends many small chunks slowly: 10000 x 1-byte chunks as fast as possible but never ends
    for k in range(10):
        for s in ss:
            try: s.send(b'1\r\nA\r\n' * 2000)
            except Exception as e: pass
        print('hello', hello()); time.sleep(0.5)
elif test == 'slowread':
    # request big responses, read 1 byte per second
    ss = []
    for i in range(60):
        s = conn(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        s.sendall(b'GET /bigresp HTTP/1.1\r\nHost: x\r\n\r\n'); ss.append(s)
    for k in range(10):
        for s in ss:
            try: s.recv(1)
            except Exception: pass
        print('hello', hello()); time.sleep(1)
elif test == 'v6flood':
    # fill per-address limit from ::1 with body-trickling connections, then try ::1, 127.0.0.1, 127.0.0.2
    ss = []
    for i in range(300):
        try:
            s = conn('::1', socket.AF_INET6); s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nA'); ss.append(s)
        except Exception as e: print('conn', i, e); break
    time.sleep(0.5)
    print('v6 opened', len(ss))
    print('::1', hello('::1', socket.AF_INET6))
    print('127.0.0.2', hello('127.0.0.2'))
elif test == 'flood':
    ss = []
    for i in range(int(sys.argv[3])):
        try:
            s = conn('127.0.0.%d' % (2 + i % 200)); s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nA'); ss.append(s)
        except Exception as e: print('conn', i, e); break
    time.sleep(0.5); print('opened', len(ss))
    for h in ['127.0.0.1', '127.0.0.250']: print(h, hello(h))

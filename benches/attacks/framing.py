#!/usr/bin/env python3
"""Framing probes: sends each byte stream on one connection, prints every response
(status, x-wasmgate-error, and for /echo the uri and body the guest saw).
usage: framing.py PORT [case-substring]"""
import socket, sys, json, time, os
port = int(sys.argv[1]); only = sys.argv[2] if len(sys.argv) > 2 else ''
H = b'Host: x\r\n'
def post(extra, body=b'', target=b'/echo/a'):
    return b'POST ' + target + b' HTTP/1.1\r\n' + H + extra + b'\r\n' + body
NEXT = b'GET /echo/NEXT HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
CASES = [
 ('bare CR in a field line', b'GET /echo/a HTTP/1.1\r\nHost: x\rX-Y: z\r\nConnection: close\r\n\r\n'),
 ('obs-fold', b'GET /echo/a HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\nConnection: close\r\n\r\n'),
 ('space before colon CL', post(b'Content-Length : 3\r\n', b'abc') + NEXT),
 ('tab before colon', post(b'Content-Length\t: 3\r\n', b'abc') + NEXT),
 ('leading ws first field', b'GET /echo/a HTTP/1.1\r\n Host: x\r\nConnection: close\r\n\r\n'),
 ('CL leading zeros', post(b'Content-Length: 0003\r\n', b'abc') + NEXT),
 ('CL list same', post(b'Content-Length: 3, 3\r\n', b'abc') + NEXT),
 ('CL list empty elt', post(b'Content-Length: 3,\r\n', b'abc') + NEXT),
 ('CL two fields same', post(b'Content-Length: 3\r\nContent-Length: 3\r\n', b'abc') + NEXT),
 ('CL two fields differ', post(b'Content-Length: 3\r\nContent-Length: 4\r\n', b'abcd') + NEXT),
 ('CL hex', post(b'Content-Length: 0x3\r\n', b'abc') + NEXT),
 ('CL huge digits', post(b'Content-Length: 000000000000000000000000000003\r\n', b'abc') + NEXT),
 ('CL overflow', post(b'Content-Length: 18446744073709551619\r\n', b'abc') + NEXT),
 ('CL empty', post(b'Content-Length: \r\n', b'') + NEXT),
 ('CL + TE', post(b'Content-Length: 3\r\nTransfer-Encoding: chunked\r\n', b'0\r\n\r\n') + NEXT),
 ('TE Chunked case', post(b'Transfer-Encoding: Chunked\r\n', b'3\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('TE chunked trailing ws', post(b'Transfer-Encoding: chunked \r\n', b'3\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('TE gzip, chunked', post(b'Transfer-Encoding: gzip, chunked\r\n', b'3\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('TE chunked, gzip', post(b'Transfer-Encoding: chunked, gzip\r\n', b'3\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('TE identity', post(b'Transfer-Encoding: identity\r\n', b'') + NEXT),
 ('TE empty', post(b'Transfer-Encoding: \r\n', b'') + NEXT),
 ('TE chunked then identity field', post(b'Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n', b'3\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('TE ",chunked"', post(b'Transfer-Encoding: ,chunked\r\n', b'3\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('TE "chunked,"', post(b'Transfer-Encoding: chunked,\r\n', b'3\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('TE xchunked', post(b'Transfer-Encoding: xchunked\r\n', b'3\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('chunk size overflow', post(b'Transfer-Encoding: chunked\r\n', b'10000000000000003\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('chunk size leading zeros', post(b'Transfer-Encoding: chunked\r\n', b'0000000000000000000003\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('chunk size uppercase hex', post(b'Transfer-Encoding: chunked\r\n', b'A\r\n0123456789\r\n0\r\n\r\n') + NEXT),
 ('chunk data no CRLF', post(b'Transfer-Encoding: chunked\r\n', b'3\r\nabcXY0\r\n\r\n') + NEXT),
 ('chunk data bare LF', post(b'Transfer-Encoding: chunked\r\n', b'3\r\nabc\n0\r\n\r\n') + NEXT),
 ('chunk ext quoted', post(b'Transfer-Encoding: chunked\r\n', b'3;a="x;y\\"z"\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('chunk ext ws', post(b'Transfer-Encoding: chunked\r\n', b'3 ;a=b\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('chunk ext no name', post(b'Transfer-Encoding: chunked\r\n', b'3;\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('last-chunk ext', post(b'Transfer-Encoding: chunked\r\n', b'3\r\nabc\r\n0;x=y\r\n\r\n') + NEXT),
 ('trailer fields', post(b'Transfer-Encoding: chunked\r\n', b'3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n') + NEXT),
 ('trailer bare LF', post(b'Transfer-Encoding: chunked\r\n', b'3\r\nabc\r\n0\r\nX-T: 1\n\r\n') + NEXT),
 ('trailer bad name', post(b'Transfer-Encoding: chunked\r\n', b'3\r\nabc\r\n0\r\nX T: 1\r\n\r\n') + NEXT),
 ('trailer CL smuggle', post(b'Transfer-Encoding: chunked\r\n', b'3\r\nabc\r\n0\r\nContent-Length: 50\r\n\r\n') + NEXT),
 ('double space request line', b'GET  /echo/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('trailing space request line', b'GET /echo/a HTTP/1.1 \r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('tab separator request line', b'GET\t/echo/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('lowercase version', b'GET /echo/a http/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('HTTP/1.10', b'GET /echo/a HTTP/1.10\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('HTTP/2.0', b'GET /echo/a HTTP/2.0\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('HTTP/0.9 style', b'GET /echo/a\r\n\r\n'),
 ('leading CRLFs', b'\r\n\r\nGET /echo/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('leading LF', b'\nGET /echo/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target //', b'GET //hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target %2e%2e', b'GET /echo/%2e%2e/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target /./echo', b'GET /./echo/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target /echo/a/..', b'GET /echo/a/.. HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target /echo/..', b'GET /echo/.. HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target /hello/../echo?x=/../', b'GET /hello/../echo?x=/../ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target /..', b'GET /.. HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target /../../echo', b'GET /../../echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target %68ello', b'GET /%68ello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target echo%2F', b'GET /echo%2Fa HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target backslash', b'GET /echo\\..\\hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target fragment', b'GET /echo/a#f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target ;param', b'GET /echo;x/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target asterisk', b'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target authority', b'CONNECT x:80 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target query only', b'GET ?x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('target absolute', b'GET http://x/echo/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('Host empty', b'GET /echo/a HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n'),
 ('Host with space', b'GET /echo/a HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n'),
 ('Host userinfo', b'GET /echo/a HTTP/1.1\r\nHost: u@x\r\nConnection: close\r\n\r\n'),
 ('Host and host', b'GET /echo/a HTTP/1.1\r\nHost: x\r\nhost: y\r\nConnection: close\r\n\r\n'),
 ('HTTP/1.0 no host', b'GET /echo/a HTTP/1.0\r\n\r\n'),
 ('HTTP/1.0 keepalive pipelined', b'GET /echo/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' + NEXT),
 ('HTTP/1.0 CL keepalive pipelined', b'POST /echo/a HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc' + NEXT),
 ('HTTP/1.1 Connection: close, then more', b'GET /echo/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' + NEXT),
 ('Connection: keep-alive, close', b'GET /echo/a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n' + NEXT),
 ('Connection: CLOSE', b'GET /echo/a HTTP/1.1\r\nHost: x\r\nConnection: CLOSE\r\n\r\n' + NEXT),
 ('NUL in value', b'GET /echo/a HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\nConnection: close\r\n\r\n'),
 ('DEL in value', b'GET /echo/a HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\nConnection: close\r\n\r\n'),
 ('obs-text in value', b'GET /echo/a HTTP/1.1\r\nHost: x\r\nX: a\xffb\r\nConnection: close\r\n\r\n'),
 ('bad name char', b'GET /echo/a HTTP/1.1\r\nHost: x\r\nX@: y\r\nConnection: close\r\n\r\n'),
 ('empty name', b'GET /echo/a HTTP/1.1\r\nHost: x\r\n: y\r\nConnection: close\r\n\r\n'),
 ('no colon', b'GET /echo/a HTTP/1.1\r\nHost: x\r\nXY\r\nConnection: close\r\n\r\n'),
 ('GET with CL body pipelined', b'GET /echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello' + NEXT),
 ('GET with chunked body', b'GET /echo/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' + NEXT),
 ('Expect 100', post(b'Expect: 100-continue\r\nContent-Length: 3\r\n', b'abc') + NEXT),
 ('Expect unknown', post(b'Expect: 200-ok\r\nContent-Length: 3\r\n', b'abc') + NEXT),
 ('method lowercase', b'get /echo/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('method with slash', b'G/T /echo/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('HEAD response', b'HEAD /echo/a HTTP/1.1\r\nHost: x\r\n\r\n' + NEXT),
 ('upgrade h2c', b'GET /echo/a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n' + NEXT),
 ('h2 preface', b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
('fragment then dots', b'GET /echo#/../hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('query then dots', b'GET /echo?/../hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('dot %2e mixed', b'GET /echo/.%2e/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('dots with ;', b'GET /echo/..;/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('trailing dot seg', b'GET /hello/. HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('hello/../echo/a', b'GET /hello/../echo/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
 ('last chunk then bare LF then request', post(b'Transfer-Encoding: chunked\r\n', b'3\r\nabc\r\n0\r\n\n') + NEXT),
 ('last chunk CR only', post(b'Transfer-Encoding: chunked\r\n', b'3\r\nabc\r\n0\r\n\rX') + NEXT),
 ('chunk size line LF only', post(b'Transfer-Encoding: chunked\r\n', b'3\nabc\r\n0\r\n\r\n') + NEXT),
 ('chunk size 0x prefix', post(b'Transfer-Encoding: chunked\r\n', b'0x3\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('chunk size 16 hex digits', post(b'Transfer-Encoding: chunked\r\n', b'0000000000000003\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('chunk size 17 hex digits', post(b'Transfer-Encoding: chunked\r\n', b'00000000000000003\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('chunk ext bare CR', post(b'Transfer-Encoding: chunked\r\n', b'3;a\rb\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('chunk ext obs-text', post(b'Transfer-Encoding: chunked\r\n', b'3;a=\xff\r\nabc\r\n0\r\n\r\n') + NEXT),
 ('TE in trailer', post(b'Transfer-Encoding: chunked\r\n', b'3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n') + NEXT),
 ('TE on HTTP/1.0 chunked', b'POST /echo/a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' + NEXT),
 ('CL with + sign', post(b'Content-Length: +3\r\n', b'abc') + NEXT),
 ('CL with trailing tab', post(b'Content-Length: 3\t\r\n', b'abc') + NEXT),
 ('CL with inner space', post(b'Content-Length: 1 2\r\n', b'abcdefghijkl') + NEXT),
 ('CL unicode digit', post('Content-Length: \u0663\r\n'.encode(), b'abc') + NEXT),
 ('field name with trailing space', b'GET /echo/a HTTP/1.1\r\nHost: x\r\nX-A : b\r\nConnection: close\r\n\r\n'),
 ('Host: x:99999', b'GET /echo/a HTTP/1.1\r\nHost: x:99999\r\nConnection: close\r\n\r\n'),
 ('Host: [::1', b'GET /echo/a HTTP/1.1\r\nHost: [::1\r\nConnection: close\r\n\r\n'),
]
def responses(data):
    out = []
    while data:
        head, sep, rest = data.partition(b'\r\n\r\n')
        if not sep: out.append(('TRUNC', head[:80])); break
        lines = head.split(b'\r\n'); st = lines[0][9:12].decode()
        hdr = {}
        for l in lines[1:]:
            k, _, v = l.partition(b':'); hdr[k.strip().lower()] = v.strip()
        n = int(hdr.get(b'content-length', b'0'))
        body, data = rest[:n], rest[n:]
        if st == '100': out.append('100'); continue
        info = st + ('/' + hdr[b'x-wasmgate-error'].decode() if b'x-wasmgate-error' in hdr else '')
        if body.startswith(b'{"method"'):
            j = json.loads(body); info += ' %s %s body=%r' % (j['method'], j['uri'], j['body'][:40])
        out.append(info)
    return out
for name, data in CASES:
    if only not in name: continue
    s = socket.create_connection(('127.0.0.1', port), timeout=3)
    if os.environ.get('SLOW'):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            try: s.send(data[i:i+1]); time.sleep(0.0005)
            except OSError: break
    else:
        s.sendall(data)
    got = b''
    try:
        while True:
            c = s.recv(65536)
            if not c: break
            got += c
    except socket.timeout: got += b''; closed = 'open'
    except ConnectionResetError: pass
    else: closed = 'closed'
    print('%-34s %s %s' % (name, responses(got), '' if got else 'NO RESPONSE'))

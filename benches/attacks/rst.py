import socket, time, sys
port = int(sys.argv[1])
ss = []
for i in range(64):
    s = socket.create_connection(('127.0.0.3', port)); s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nA'); ss.append(s)
time.sleep(0.3)
res = {}
for k in range(20):
    s = socket.create_connection(('127.0.0.3', port), timeout=5)
    s.sendall(b'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n')
    time.sleep(0.05)
    try:
        d = s.recv(1000); r = d.split(b'\r\n')[0].decode()
    except Exception as e: r = repr(e)[:40]
    res[r] = res.get(r, 0) + 1
print(res)

#!/usr/bin/env python3
"""BIN env (default: the release build); CYCLE=1 makes each attacker cycle through all fns; PROBE=/a,/b probes those paths serially (60 s timeout) and prints (latency, status).
Starts wasmgate on DIR with a config, fires N concurrent hostile requests at
each named function while a prober measures /hello latency; reports statuses,
max /hello latency, peak RSS (VmHWM, and sampled VmRSS), and liveness.
usage: harness.py DIR CONFIG_EXTRA_TOML SECONDS CONC fn1 [fn2...]"""
import os, socket, subprocess, sys, threading, time, collections, signal
BIN = os.environ.get('BIN') or os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'target', 'release', 'wasmgate')
def start(dir_, extra, port):
    cfg = f'/tmp/atk/cfg-{port}.toml'
    open(cfg, 'w').write(f'[server]\nlisten = "127.0.0.1:{port}"\nfunctions_dir = "{dir_}"\n' + extra)
    log = open(f'/tmp/atk/log-{port}.txt', 'w')
    p = subprocess.Popen([BIN, 'serve', '--config', cfg], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close(); return p
        except OSError:
            if p.poll() is not None: print('server exited', p.returncode, open(f'/tmp/atk/log-{port}.txt').read()[-2000:]); sys.exit(1)
            time.sleep(0.05)
    return p
def req(port, path, timeout=30, body=b''):
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    method = 'POST' if body else 'GET'
    s.sendall(f'{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n'.encode() + body)
    data = b''
    while True:
        try: c = s.recv(65536)
        except socket.timeout: return 'TIMEOUT', data
        except ConnectionResetError: return 'RESET', data
        if not c: break
        data += c
    s.close()
    line = data.split(b'\r\n', 1)[0].decode(errors='replace')
    kind = ''
    for l in data.split(b'\r\n\r\n', 1)[0].split(b'\r\n'):
        if l.lower().startswith(b'x-wasmgate-error'): kind = l.split(b':', 1)[1].strip().decode()
    return (line[9:12] + ' ' + kind).strip(), data
def rss(pid):
    try:
        d = dict(l.split(':', 1) for l in open(f'/proc/{pid}/status'))
        return int(d['VmRSS'].split()[0]) // 1024, int(d['VmHWM'].split()[0]) // 1024
    except Exception: return -1, -1
def main():
    dir_, extra, secs, conc = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    fns = sys.argv[5:]
    port = 18000 + os.getpid() % 1000
    p = start(dir_, extra.replace('\\n', '\n'), port)
    print('idle rss MiB', rss(p.pid))
    stop = time.time() + secs
    lat = []; statuses = collections.Counter(); peak = [0]
    def prober():
        while time.time() < stop:
            t = time.time(); st, _ = req(port, '/hello', 10); lat.append((time.time() - t, st)); time.sleep(0.05)
    probe2 = collections.defaultdict(list)
    def prober2(path):
        while time.time() < stop:
            t = time.time(); st, _ = req(port, path, 60); probe2[path].append((round(time.time() - t, 2), st)); time.sleep(0.2)
    def sampler():
        while time.time() < stop + 1:
            peak[0] = max(peak[0], rss(p.pid)[0]); time.sleep(0.05)
    def attacker(fn):
        k = fns.index(fn)
        while time.time() < stop:
            if os.environ.get('CYCLE'): k = (k + conc) % len(fns); fn = fns[k]
            st, data = req(port, '/' + fn, 60)
            statuses[(fn, st)] += 1
            if st.startswith('200') and fn not in ('hello',) and statuses[(fn, st)] == 1: print(fn, 'body', data[-200:])
    ts = [threading.Thread(target=prober), threading.Thread(target=sampler)]
    for p2 in filter(None, os.environ.get('PROBE', '').split(',')): ts.append(threading.Thread(target=prober2, args=(p2,)))
    for i in range(conc): ts.append(threading.Thread(target=attacker, args=(fns[i % len(fns)],)))
    for t in ts: t.start()
    for t in ts: t.join()
    lat.sort(key=lambda x: x[0])
    print('statuses', dict(statuses))
    print('hello n=%d max=%.0fms p50=%.0fms non200=%s' % (len(lat), lat[-1][0]*1000 if lat else -1, lat[len(lat)//2][0]*1000 if lat else -1, [s for _, s in lat if not s.startswith('200')][:5]))
    for p2, v in probe2.items(): print('probe', p2, 'n=%d' % len(v), v[:12])
    print('rss peak sampled MiB', peak[0], 'now/hwm', rss(p.pid))
    time.sleep(2); print("after 2s rss", rss(p.pid))
    if os.environ.get("WAIT"): time.sleep(float(os.environ["WAIT"])); print("after more rss", rss(p.pid))
    alive = p.poll() is None
    print('alive', alive, 'hello after', req(port, '/hello', 10)[0] if alive else '-')
    p.send_signal(signal.SIGTERM); p.wait(10)
    print('log tail:'); print(open(f'/tmp/atk/log-{port}.txt').read()[-1500:])
main()

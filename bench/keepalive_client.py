#!/usr/bin/env python3
"""Sends exactly N keep-alive HTTP/1.1 GET requests over C connections, then exits.

Used by bench/ir-per-request.sh: the request count must be exact (instructions are divided
by it), which time-bound load generators such as wrk cannot promise. Speed does not matter.

    keepalive_client.py HOST:PORT N C [PATH]

KEEPALIVE_HEADER="Name: value" adds one header to every request (a waiting-room cookie).
"""

import asyncio
import os
import sys


async def worker(host, port, path, quota, errors):
    reader, writer = await asyncio.open_connection(host, port)
    extra = os.environ.get("KEEPALIVE_HEADER", "")
    extra = f"{extra}\r\n" if extra else ""
    req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
    for _ in range(quota):
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length:
            await reader.readexactly(length)
        if status != 200:
            errors.append(status)
    writer.close()
    await writer.wait_closed()


async def main():
    addr, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    path = sys.argv[4] if len(sys.argv) > 4 else "/"
    host, port = addr.rsplit(":", 1)
    errors = []
    quotas = [n // c + (1 if i < n % c else 0) for i in range(c)]
    await asyncio.gather(*(worker(host, int(port), path, q, errors) for q in quotas))
    if errors:
        print(f"{len(errors)} non-200 answers, e.g. {errors[:5]}", file=sys.stderr)
        sys.exit(1)


asyncio.run(main())

#!/usr/bin/env python3
"""A black-hole HTTP receiver for bench/hooks.sh: accepts every request on
127.0.0.1:PORT, reads it (headers and Content-Length body), answers
with an empty body and discards it; keeps connections alive. Counts
the requests and prints the count to stderr when it ends (SIGTERM).
MODE: `200` (the default) answers 200; `500` answers 500 (the server
retries); `silent` reads each request and never answers (the server's
attempt runs into its timeout).
   python3 bench/blackhole.py PORT [200|500|silent]"""
import asyncio
import signal
import sys

count = 0
MODE = sys.argv[2] if len(sys.argv) > 2 else "200"


async def serve(reader, writer):
    global count
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or 0)
            if length:
                await reader.readexactly(length)
            count += 1
            if MODE == "silent":
                # Held open, never answered, until the client gives up.
                await reader.read()
                return
            status = b"500 Internal Server Error" if MODE == "500" else b"200 OK"
            writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main(port):
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    print(f"blackhole: {count} requests", file=sys.stderr)


asyncio.run(main(int(sys.argv[1])))

"""A registry across the world, on loopback: a TCP relay that delays every response's first byte.

Usage: ``python bench/_latency.py UPSTREAM_HOST:PORT DELAY_MS``; prints ``READY HOST:PORT``, then relays
until stdin closes. Each time the client sends (a new request on a kept-alive connection), the first
bytes the server sends back are held until ``DELAY_MS`` after the request arrived: a round trip of that
length per request, whatever the protocol above TCP. Runs in its own process so its work never shares
the GIL with the client being measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time


class _Pending:
    """When the client last sent data that no response byte has answered yet (None: nothing pending)."""

    def __init__(self) -> None:
        self.since: float | None = None


async def _client_to_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pending: _Pending) -> None:
    try:
        while data := await reader.read(256 * 1024):
            if pending.since is None:
                pending.since = time.monotonic()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        if writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()


async def _server_to_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pending: _Pending,
                            delay: float) -> None:
    try:
        while data := await reader.read(256 * 1024):
            if pending.since is not None:
                wait = pending.since + delay - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                pending.since = None
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main() -> None:
    upstream, delay_ms = sys.argv[1], float(sys.argv[2])
    host, _, port = upstream.rpartition(":")
    delay = delay_ms / 1000

    async def handle(c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            s_reader, s_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            c_writer.close()
            return
        pending = _Pending()
        await asyncio.gather(_client_to_server(c_reader, s_writer, pending),
                             _server_to_client(s_reader, c_writer, pending, delay))
        s_writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    addr = server.sockets[0].getsockname()
    print(f"READY {addr[0]}:{addr[1]}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    server.close()


if __name__ == "__main__":
    asyncio.run(main())

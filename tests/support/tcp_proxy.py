"""A TCP proxy a test can cut: "Postgres stopped" for one service, while the shared Postgres keeps running.

`cut()` drops every live connection through the proxy and refuses new ones (connection refused),
which is what a client sees when the database goes down; `restore()` listens again on the same port.
`freeze()` keeps every connection open and accepts new ones but forwards nothing, in either
direction, until `thaw()`: what a client sees when a server is stopped (SIGSTOP) or a network
path silently drops packets.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit

from tests.support.services import free_port


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._live: set[asyncio.StreamWriter] = set()
        self.connections = 0  # accepted so far, for tests that want to see traffic went through
        self._flowing = asyncio.Event()
        self._flowing.set()

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    @classmethod
    def to(cls, url: str) -> TcpProxy:
        """A proxy to the host and port of a postgresql:// URL."""
        parts = urlsplit(url)
        return cls(parts.hostname or "localhost", parts.port or 5432)

    def url(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        return self

    async def cut(self) -> None:
        """Refuse new connections and drop the live ones, like a database that went down."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._live):
            writer.transport.abort()
        self._live.clear()

    async def restore(self) -> None:
        if self._server is None:
            await self.start()

    async def stop(self) -> None:
        await self.cut()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._live.add(client_writer)
        await self._flowing.wait()
        self._live.discard(client_writer)
        if client_writer.is_closing():
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.transport.abort()
            return
        self.connections += 1
        pair = {client_writer, upstream_writer}
        self._live |= pair
        try:
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer),
                self._pipe(upstream_reader, client_writer),
            )
        finally:
            self._live -= pair
            for writer in pair:
                writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                await self._flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await self._flowing.wait()  # what arrives while frozen is held back, not passed on
                writer.write(data)
                await writer.drain()
        # One direction ended: end the other too, so neither side waits on a half-open pipe.
        writer.transport.abort()

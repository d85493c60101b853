"""A stand-in for team chats' webhooks on 127.0.0.1: records each post, or fails, or hangs.

One aiohttp server in a thread of its own answers every POST (a json:// webhook, Mattermost's
/hooks/TOKEN, Rocket.Chat's /hooks/TOKEN alike). `mode` says how: "ok" (200, recorded), "fail"
(500, recorded as refused) or "hang" (never answers, until the server stops); `fail` refuses
that many posts first, whatever the mode.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Received:
    """One POST as the server received it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        """Return the body read as JSON."""
        return json.loads(self.body)


class ChatServer:
    """Webhooks of team chats on 127.0.0.1, in a background thread."""

    def __init__(self, mode: str = "ok", fail: int = 0):
        self.mode, self.fail = mode, fail
        self.posts: list[Received] = []  # taken (answered 200)
        self.refused: list[Received] = []  # answered 500, or left hanging
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None

    def __enter__(self) -> ChatServer:
        self._thread = threading.Thread(target=self._serve, name="chat-server", daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the chat server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stopping is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)

    @property
    def host(self) -> str:
        """Return host:port, as a URL writes it."""
        return f"127.0.0.1:{self.port}"

    def messages(self) -> list[Any]:
        """Return the body of each post taken, read as JSON."""
        return [post.json for post in self.posts]

    def wait_for(self, count: int, seconds: float = 10.0) -> None:
        """Wait until count requests (taken or not) arrived."""
        deadline = time.monotonic() + seconds
        while len(self.posts) + len(self.refused) < count:
            assert time.monotonic() < deadline, "the posts did not arrive"
            time.sleep(0.005)

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._ready.set()
        await self._stopping.wait()
        await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received = Received(
            request.path, dict(request.query), dict(request.headers), await request.read()
        )
        if self.fail:
            self.fail -= 1
            self.refused.append(received)
            return web.Response(status=503, text="try again later")
        if self.mode == "ok":
            self.posts.append(received)
            return web.Response(text="ok")
        self.refused.append(received)
        if self.mode == "hang":
            assert self._stopping is not None
            await self._stopping.wait()
        return web.Response(status=500, text="down for maintenance")

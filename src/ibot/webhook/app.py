"""The TradingView webhook door: FastAPI on uvicorn, inside the node's one asyncio loop.

`WebhookDoor` is a node component (`await door.start(node)` .. `await door.stop()`): it listens on
127.0.0.1 by default (`door.port` is the bound port, any free one when the settings say 0), commits every
request to the records database before answering (ack first: the answer never waits for IB), and its worker
sends accepted alerts through the node's order intake. `create_app(door)` is the FastAPI application, with
the alert's JSON schema in its OpenAPI description.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ibot.aio import cancel_and_wait
from ibot.engine.runner import _SURVIVORS
from ibot.model.errors import IbotError
from ibot.webhook.alerts import AlertStore
from ibot.webhook.handler import AlertHandler, market_date
from ibot.webhook.schema import TradingViewAlert
from ibot.webhook.settings import WebhookSettings
from ibot.webhook.worker import AlertWorker

if TYPE_CHECKING:
    from ibot.app.node import TradingNode

__all__ = ["ALERT_PATH", "WebhookDoor", "WebhookError", "create_app"]

log = logging.getLogger("ibot.webhook")

ALERT_PATH = "/webhook/tradingview"


class WebhookError(IbotError, RuntimeError):
    """The door cannot start (its address is taken, no secret...): one sentence naming what and where."""


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the node owns SIGINT/SIGTERM and stops the door itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def create_app(door: WebhookDoor) -> FastAPI:
    """The HTTP application of `door`: one POST route; no docs pages are served, the schema is kept."""
    app = FastAPI(
        title="ibot TradingView webhook",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    schema = TradingViewAlert.model_json_schema()

    @app.post(
        ALERT_PATH,
        summary="A TradingView alert (seed 000's format); the secret goes in the body",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": schema}, "text/plain": {"schema": schema}},
            }
        },
        responses={
            200: {"description": "accepted (queued for the order intake) or duplicate (nothing placed)"},
            400: {"description": "not JSON (line and column named), not a JSON object, not UTF-8"},
            401: {"description": "secret missing or wrong"},
            403: {"description": "source address not allowed"},
            413: {"description": "body larger than the limit (64 KB)"},
            422: {"description": "a field is unknown, missing, of a wrong type or value (named)"},
        },
    )
    async def tradingview(request: Request) -> JSONResponse:
        return await _respond(door, request)

    return app


async def _respond(door: WebhookDoor, request: Request) -> JSONResponse:
    """The door's answer to one POST of an alert."""
    try:
        answer = await door.handle(request)
    except Exception as exc:  # a defect: logged with its traceback, answered in one line, never shown
        log.exception("webhook: the request failed")
        body = {"status": "error", "error": f"internal error ({type(exc).__name__}); see the node's log"}
        return JSONResponse(body, status_code=500)
    return JSONResponse(answer.body, status_code=answer.status)


def _fast_path(door: WebhookDoor, app: FastAPI) -> ASGIApp:
    """What uvicorn serves: a POST to the alert path goes straight to the door's handler (the answer FastAPI's
    route gives, without its routing and middleware stack on every alert); anything else goes to `app`
    (404, 405, ...)."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == ALERT_PATH:
            response = await _respond(door, Request(scope, receive))
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    return asgi


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, or WebhookError in one sentence (a busy port, an address not of this host)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise WebhookError(
            f"webhook --host {host!r} is not an address of this machine: {exc.strerror}"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise WebhookError(f"webhook cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


class WebhookDoor:
    """The TradingView door as a node component; `port` and `url` once started."""

    name = "webhook"

    def __init__(self, settings: WebhookSettings) -> None:
        settings.require_secret()  # refuse at once, before any connection is made
        self.settings = settings
        self.port = 0
        self.handler: AlertHandler | None = None
        self.store: AlertStore | None = None
        self.worker: AlertWorker | None = None
        self.app = create_app(self)
        self._server: _EmbeddedServer | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._final: dict[str, int] | None = None
        self._holding_survivors = False

    def __repr__(self) -> str:
        return f"WebhookDoor({self.settings.host}:{self.port or self.settings.port})"

    @property
    def url(self) -> str:
        host = self.settings.host if ":" not in self.settings.host else f"[{self.settings.host}]"
        return f"http://{host}:{self.port}{ALERT_PATH}"

    async def handle(self, request: Request) -> Any:
        if self.handler is None:
            raise WebhookError("the webhook door is not started")
        return await self.handler.handle(request)

    async def start(self, node: TradingNode) -> None:
        """Listen, start the worker (it first takes what a crash left pending); `self.port` is then bound."""
        window = timedelta(seconds=self.settings.window_seconds)
        session = node.session
        self.store = AlertStore(node.records, market=session.market_clock)
        self.worker = AlertWorker(self.store, node.intake, session, window=window)
        self.handler = AlertHandler(
            self.settings, self.store, node.intake, market_date(session.market_clock), self.worker.wake
        )
        sock = _listen(self.settings.host, self.settings.port)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            _fast_path(self, self.app),
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=True,
            forwarded_allow_ips=self.settings.trusted_proxies,
            timeout_keep_alive=5,
        )
        self._server = _EmbeddedServer(config)
        self._serve_task = asyncio.ensure_future(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._serve_task.done():
                sock.close()
                raise WebhookError(f"webhook could not start on {self.settings.host}:{self.port}")
            await asyncio.sleep(0.01)
        self._worker_task = asyncio.ensure_future(self.worker.run())
        if not self._holding_survivors:
            _SURVIVORS.hold()  # as a strategy's runner does: full collections stop scanning every order kept
            self._holding_survivors = True
        log.info("webhook listening on %s", self.url)

    async def stop(self) -> None:
        """Stop answering (requests in flight finish), then the worker after the alert it is placing; what is
        still pending stays committed for the next start."""
        if self._server is not None and self._serve_task is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(self._serve_task), 5.0)
            except TimeoutError:
                self._server.force_exit = True
                await cancel_and_wait([self._serve_task])
        await cancel_and_wait([self._worker_task])
        if self._holding_survivors:
            _SURVIVORS.release()
            self._holding_survivors = False
        self._server = self._serve_task = self._worker_task = None
        if self.store is not None:
            self._final = dict(self.store.counts())  # the node closes the records after its doors

    def summary(self) -> dict[str, int]:
        """How many alerts of each verdict (and "pending"), now or as they were when the door stopped."""
        if self._serve_task is None and self._final is not None:
            return dict(self._final)
        return {} if self.store is None else dict(self.store.counts())

    def status(self) -> str:
        if self.store is None:
            return "webhook stopped"
        counts = self.store.counts()
        shown = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()) if verdict != "pending")
        return (
            f"webhook {self.settings.host}:{self.port}: {shown or 'no alerts'}; {counts['pending']} pending"
        )

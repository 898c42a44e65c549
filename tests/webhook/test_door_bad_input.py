"""Every class of bad input gets its status code, names what was wrong, is recorded, and places nothing:
checked against the simulator's orders (server.broker), not only the records. Real HTTP, real node."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from webhook_helpers import SECRET, SEED_000_SAMPLE, WAIT, alert, answer, door_rig, sim_server, sqlite_url

from ibot.webhook.alerts import AlertVerdict

# (what, body, status, field, words the error must contain)
CASES: list[tuple[str, Any, int, str, str]] = [
    ("seed 000's sample verbatim", SEED_000_SAMPLE, 400, "body", "invalid JSON at line 5 column 3"),
    ("not JSON at all", "BUY MES now", 400, "body", "invalid JSON at line 1 column 1"),
    ("a JSON list", "[1, 2]", 400, "body", "must be a JSON object"),
    ("nested too deeply", "[" * 60_000, 400, "body", "nested too deeply"),
    ("not UTF-8", b'{"ticker": "\xff"}', 400, "body", "not UTF-8"),
    (
        "a lone surrogate escape",
        json.dumps(alert()).replace('"MES1!"', '"MES\\ud91d!"'),
        400,
        "body",
        "lone surrogate",
    ),
    ("no secret", alert(secret=...), 401, "secret", "missing"),
    ("a wrong secret", alert(secret="not-the-secret-at-all"), 401, "secret", "wrong"),
    ("a secret of the wrong type", alert(secret=12345), 401, "secret", "missing"),
    ("an unknown field", alert(quantiy="1"), 422, "quantiy", "unknown field 'quantiy'"),
    ("a missing ticker", alert(ticker=...), 422, "ticker", "missing"),
    ("a list as quantity", alert(quantity=[1]), 422, "quantity", "string or a number"),
    ("an object as price", alert(price={"x": 1}), 422, "price", "string or a number"),
    ("true as action", alert(action=True), 422, "action", "string or a number"),
    ("null as order", alert(order=None), 422, "order", "string or a number"),
    ("quantity zero", alert(quantity="0"), 422, "quantity", "more than 0"),
    ("a negative quantity", alert(quantity=-2), 422, "quantity", "more than 0"),
    ("a fractional quantity", alert(quantity="1.5"), 422, "quantity", "whole number"),
    ("a fractional number quantity", alert(quantity=0.5), 422, "quantity", "whole number"),
    ("a text quantity", alert(quantity="one"), 422, "quantity", "must be a number"),
    ("NaN as price (bare)", json.dumps(alert(order="LMT", price=float("nan"))), 422, "price", "finite"),
    ("NaN as price (text)", alert(order="LMT", price="NaN"), 422, "price", "finite"),
    ("Infinity as price", json.dumps(alert(order="LMT", price=float("inf"))), 422, "price", "finite"),
    ("a negative price", alert(order="LMT", price="-5"), 422, "price", "more than 0"),
    ("a zero price", alert(order="LMT", price=0), 422, "price", "more than 0"),
    ("LMT without a price", alert(order="LMT", price=...), 422, "price", "required for a LMT"),
    ("LMT with an empty price", alert(order="LMT", price=""), 422, "price", "required for a LMT"),
    ("an unknown order type", alert(order="STOP"), 422, "order", "LMT or MKT"),
    ("an unknown action", alert(action="hold"), 422, "action", "BUY or SELL"),
    ("an unknown ticker", alert(ticker="FOO1!"), 422, "ticker", "unknown ticker 'FOO1!'"),
    ("an expired month", alert(ticker="MESZ2020"), 422, "ticker", "stopped trading"),
    ("a stock called a future", alert(ticker="AAPL"), 422, "contract", "contract is FUT"),
    (
        "quantity and target",
        alert(position_size="2", market_position="long"),
        422,
        "market_position",
        "not both",
    ),
    (
        "a stale replay",
        alert(timenow="2020-01-01T00:00:00Z"),
        422,
        "timenow",
        "replayed alert places nothing",
    ),
    (
        "a time years ahead",
        alert(timenow="2099-01-01T00:00:00Z"),
        422,
        "timenow",
        "in the future",
    ),
    ("a time that is no time", alert(timenow="yesterday"), 422, "timenow", "must be a time"),
]


async def _chunks(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * 8192
        sent += 8192


def test_every_bad_input_class_is_named_recorded_and_places_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        async with sim_server() as server, door_rig(sqlite_url(tmp_path), server) as rig:
            for what, body, status, field, words in CASES:
                response = await rig.post(body, headers={"content-type": "text/plain"})
                assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
                got = answer(response)
                assert got["field"] == field, f"{what}: field {got.get('field')!r}, error {got['error']!r}"
                assert words in got["error"], f"{what}: {got['error']!r}"
                assert SECRET not in response.text
            # over 64 KB: by Content-Length, and chunked (no length to trust: never read past the limit)
            big = json.dumps(alert(reason="x" * 70_000))
            response = await rig.post(big)
            assert response.status_code == 413 and answer(response)["field"] == "body"
            response = await rig.client.post(rig.door.url, content=_chunks(10 << 20))
            assert response.status_code == 413, response.text
            # a valid alert still goes through afterwards: the door was not hurt by any of it
            ok = await rig.post(alert(quantity=2))
            assert ok.status_code == 200, ok.text
            cid = answer(ok)["client_order_id"]
            await rig.until(lambda: len(rig.sim_orders()) == 1, "the one good order at the simulator")
            await asyncio.sleep(0.3)
            # nothing else was placed: the simulator saw one order, ours; the records hold that one only
            assert [o.view.order_ref for o in rig.sim_orders()] == [cid]
            assert [o.client_order_id for o in rig.node.records.orders()] == [cid]
            # every request was recorded, with its verdict, and no record holds the secret
            rows = rig.alerts()
            assert len(rows) == len(CASES) + 3
            for row, (what, _, status, field, _) in zip(rows, CASES, strict=False):
                assert (row.http_status, row.field) == (status, field), what
                assert row.verdict in (AlertVerdict.REJECTED, AlertVerdict.UNAUTHORIZED), what
                assert SECRET not in row.body and SECRET not in row.reason, what
            assert [r.http_status for r in rows[-3:]] == [413, 413, 200]

    asyncio.run(asyncio.wait_for(main(), 6 * WAIT))


def test_a_source_outside_the_allow_list_gets_403_and_places_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        async with sim_server() as server, door_rig(sqlite_url(tmp_path), server, allow="tradingview") as rig:
            # the peer is loopback, a trusted proxy: X-Forwarded-For names the source, as behind Caddy/nginx
            outsider = await rig.post(alert(), headers={"x-forwarded-for": "203.0.113.9"})
            assert outsider.status_code == 403
            assert "203.0.113.9" in answer(outsider)["error"]
            tradingview = await rig.post(alert(), headers={"x-forwarded-for": "52.89.214.238"})
            assert tradingview.status_code == 200, tradingview.text
            cid = answer(tradingview)["client_order_id"]
            await rig.until(lambda: len(rig.sim_orders()) == 1, "TradingView's order at the simulator")
            await asyncio.sleep(0.2)
            assert [o.view.order_ref for o in rig.sim_orders()] == [cid]
            first, second = rig.alerts()
            assert (first.http_status, first.verdict, first.source_address) == (
                403,
                AlertVerdict.FORBIDDEN,
                "203.0.113.9",
            )
            assert second.source_address == "52.89.214.238"

    asyncio.run(asyncio.wait_for(main(), 4 * WAIT))

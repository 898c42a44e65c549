"""`SimClient` against IB's official Python client (ibapi, which offers v100..226), run in its own thread."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from decimal import Decimal

import pytest
from ibapi_helpers import connected, mes_june, threaded_server
from sim_helpers import START

from ibot.model import catalog
from ibot.sim.client import HandshakeError, MarketDataSub, SimClient, negotiate
from ibot.sim.server import SimServer
from ibot.sim.wire import FrameBuffer, frame


@pytest.fixture
def server() -> Iterator[SimServer]:
    with threaded_server(["MES", "SPY"]) as srv:
        yield srv


def test_ibapi_connects_at_178_and_gets_next_valid_id_and_farms(server: SimServer) -> None:
    app = connected(server)
    app.wait_for("nextValidId")
    assert app.serverVersion() == 178
    codes = [e[2] for e in app.wait_for("error", 3)]
    assert codes[:3] == [2104, 2106, 2158]
    app.disconnect()


def test_ibapi_contract_details(server: SimServer) -> None:
    app = connected(server)
    app.wait_for("nextValidId")
    app.reqContractDetails(11, mes_june())
    app.wait_for("contractDetailsEnd")
    [(_, req_id, cd)] = app.of("contractDetails")
    expected = catalog.contract("MES", 2025, 6)
    assert req_id == 11
    assert cd.contract.conId == expected.con_id
    assert cd.contract.localSymbol == "MESM5"
    assert cd.minTick == 0.25 and cd.contract.multiplier == "5"
    assert cd.minSize == Decimal(1)
    app.disconnect()


def test_ibapi_contract_details_by_expiry_with_time_or_unreadable(server: SimServer) -> None:
    """CONTRACT_DATA's expiry as sent ("20250620 08:30 US/Central", which @stoqey/ib does not split and so
    sends back whole) names that month; an unreadable expiry is an unknown contract, not every month."""
    app = connected(server)
    app.wait_for("nextValidId")
    echoed = mes_june()
    echoed.lastTradeDateOrContractMonth = "20250620 08:30 US/Central"
    app.reqContractDetails(12, echoed)
    app.wait_for("contractDetailsEnd")
    assert [cd.contract.localSymbol for _, _, cd in app.of("contractDetails")] == ["MESM5"]
    garbled = mes_june()
    garbled.lastTradeDateOrContractMonth = "June 2025"
    app.reqContractDetails(13, garbled)
    refused = [e for e in app.wait_until("error", lambda e: e[2] == 200) if e[2] == 200]
    assert [e[1] for e in refused] == [13] and len(app.of("contractDetails")) == 1
    app.disconnect()


def test_ibapi_ticks_arrive(server: SimServer) -> None:
    app = connected(server)
    app.wait_for("nextValidId")
    app.reqMktData(21, mes_june(), "", False, False, [])
    ticks = app.wait_for("tickPrice", 7)  # last, high, low, close, open, bid, ask
    assert {t[2] for t in ticks} >= {1, 2, 4}
    assert all(t[3] % 0.25 == 0 for t in ticks)
    app.disconnect()


def test_ibapi_historical_bars_format_date_2(server: SimServer) -> None:
    app = connected(server)
    app.wait_for("nextValidId")
    app.reqHistoricalData(31, mes_june(), "", "1800 S", "1 min", "TRADES", 0, 2, False, [])
    app.wait_for("historicalDataEnd")
    bars = [e[2] for e in app.of("historicalData")]
    assert len(bars) in (30, 31)
    times = [int(b.date) for b in bars]
    assert all(b - a == 60 for a, b in itertools.pairwise(times))
    assert times[-1] <= server.market.now_s
    app.disconnect()


def test_ibapi_duplicate_client_id_gets_326(server: SimServer) -> None:
    first = connected(server, 9)
    first.wait_for("nextValidId")
    second = connected(server, 9, await_id=False)
    [(_, req_id, code, _)] = [e for e in second.wait_for("error") if e[2] == 326]
    assert (req_id, code) == (-1, 326)
    second.wait_for("connectionClosed")
    first.disconnect()


@pytest.mark.parametrize(
    ("offer", "expected"),
    [("v157..176", 176), ("v100..226", 178), ("v178", 178), ("v160..170 +PACEAPI", 170)],
)
def test_negotiate_answers_min_of_both_maxima(offer: str, expected: int) -> None:
    assert negotiate(offer) == expected


@pytest.mark.parametrize("offer", ["v100..150", "v179..200", "hello"])
def test_negotiate_refuses_ranges_it_cannot_meet(offer: str) -> None:
    with pytest.raises(HandshakeError):
        negotiate(offer)


# --- the quote stream, driven step by step: what the client holds after each clock step ---------------------

_END = 9_999  # not an IB message: marks the end of one step's bytes on the test socket


async def _client_on_a_socket(
    server: SimServer,
) -> tuple[SimClient, asyncio.StreamReader, asyncio.StreamWriter]:
    """A started `SimClient` of `server` (its clock not running) on a real loopback socket: (the client, the
    test's reader, the test's writer)."""
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future()
    )

    async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        accepted.set_result((r, w))

    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.sockets[0].getsockname()[1])
    listener.close()
    r, w = await accepted
    client = SimClient(server, r, w, 1)
    client.started, client.server_version, client.client_id = True, 176, 1
    return client, reader, writer


async def _step_messages(client: SimClient, reader: asyncio.StreamReader) -> list[list[str]]:
    client.writer.write(frame([_END]))
    buf, out = FrameBuffer(), []
    while not out or out[-1] != [str(_END)]:
        out += buf.feed(await reader.read(65536))
    return out[:-1]


# IB's tick type numbers, live and delayed (market data type 3), by the Quote field they carry
_LIVE_TICKS = {"bid": 1, "ask": 2, "bid_size": 0, "ask_size": 3, "high": 6, "low": 7, "volume": 8, "close": 9}
_LIVE_TICKS |= {"open": 14, "last": 4, "time": 45}
_DELAYED_TICKS = {"bid": 66, "ask": 67, "bid_size": 69, "ask_size": 70, "high": 72, "low": 73, "volume": 74}
_DELAYED_TICKS |= {"close": 75, "open": 76, "last": 68, "time": 88}


def test_after_every_clock_step_the_client_holds_the_market_quote_live_and_delayed() -> None:
    async def main() -> None:
        server = SimServer(port=0, symbols=["MES", "MCL"], speed=60.0, start=START)
        client, reader, writer = await _client_on_a_socket(server)
        subs = [
            MarketDataSub(1, catalog.contract("MES", 2025, 6), delayed=False),
            MarketDataSub(2, catalog.contract("MCL", 2025, 5), delayed=False),
            MarketDataSub(3, catalog.contract("MES", 2025, 6), delayed=True),  # same contract, delayed
        ]
        now = int(server.market.now_s)
        for sub in subs:
            client._stream_quote(sub, now)
            client.subs[sub.req_id] = sub
        held: dict[tuple[int, int], str] = {}  # (reqId, tick type) -> the last value the client received
        messages = await _step_messages(client, reader)
        traded = 0
        for step in (1, 5, 0, 30, 2, 1, 5, 5):
            for m in messages:  # TICK_PRICE, TICK_SIZE, TICK_STRING: id, version, reqId, tickType, value...
                assert m[0] in ("1", "2", "46")
                held[(int(m[2]), int(m[3]))] = m[4]
            second = int(server.market.now_s)
            for sub in subs:
                q = server.market.quote(sub.inst, second)
                assert q is not None
                tick = _DELAYED_TICKS if sub.delayed else _LIVE_TICKS
                got = {name: held.get((sub.req_id, t), "") for name, t in tick.items()}
                for name in ("bid", "ask", "high", "low", "close", "open"):
                    assert float(got[name]) == getattr(q, name), (sub.req_id, name)
                for name in ("bid_size", "ask_size", "volume"):
                    assert int(got[name]) == getattr(q, name), (sub.req_id, name)
                if q.traded:
                    traded += 1
                    assert float(got["last"]) == q.last and got["time"] == str(second)
            old, new = server.market.advance(step)
            client.on_clock(old, new, 0.0)
            messages = await _step_messages(client, reader)
            if step == 0:
                assert messages == []  # nothing changed, nothing sent
        assert traded > 0
        writer.close()
        client.close()

    asyncio.run(main())

"""What the simulator says when a market is closed: to the client as TWS says it, and in its own log.

What TWS does on a closed market (the evidence these texts follow):

- An order is accepted and parked until the exchange opens: error 399 on the order id, "Order Message:" then
  the order and "Warning: your order will not be placed at the exchange until <open> <zone>", then
  OPEN_ORDER + ORDER_STATUS PreSubmitted (IB Gateway 10.40 capture of a Saturday session, 2026-09-26:
  deepentropy/ibx tests/fixtures/gw1040/scenarios/20260926/lmt_cancel.api.jsonl, seq 2354-2357:
  "BUY 1 AAPL NASDAQ.NMS\\nWarning: your order will not be placed at the exchange until 2026-09-28 09:30:00
  US/Eastern"). The order stays PreSubmitted until the open, then works (and a market order fills).
- Market data: "if a market is currently closed and real time data is requested, -1 values will commonly be
  returned for the bid and ask prices ... To receive the last known bid/ask price before the market close,
  switch to market data type 2" (TWS API documentation, Market Data Types, "Frozen"; the last price, the
  close and the session's high / low / volume still come: ib_insync #471, AAPL after hours with type 2,
  bid/ask nan, last and close set). A frozen request on a closed market is answered with MARKET_DATA_TYPE 2
  (4 for delayed-frozen), and live data (1 / 3) once the market opens.
- 5-second bars and tick-by-tick data: nothing while closed (no bar has a trade or a quote), without error.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ibot.exchange.hours import listed_hours_for
from ibot.model.instruments import Instrument

ORDER_MESSAGE = 399  # "Order Message": a warning, the order stays live (ib_async keeps the trade)


def exchange_time(inst: Instrument, second: int) -> str:
    """``2026-12-06 17:00:00 US/Central``: a second in the exchange's time zone, as IB writes it in 399."""
    hours = listed_hours_for(inst)
    return f"{datetime.fromtimestamp(second, hours.listing_tz):%Y-%m-%d %H:%M:%S} {hours.listing_tz_label}"


def utc_time(second: int) -> str:
    """``2026-12-05 14:03:23 UTC (Sat)``: a market-clock second for the simulator's own lines."""
    dt = datetime.fromtimestamp(second, UTC)
    return f"{dt:%Y-%m-%d %H:%M:%S} UTC ({dt:%a})"


def until_text(inst: Instrument, open_s: int) -> str:
    """``2026-12-06 17:00:00 US/Central (2026-12-06 23:00:00 UTC)``."""
    return f"{exchange_time(inst, open_s)} ({datetime.fromtimestamp(open_s, UTC):%Y-%m-%d %H:%M:%S} UTC)"


def order_held_text(side: str, quantity: int, inst: Instrument, open_s: int) -> str:
    """The text of error 399 for an order parked until the open (the capture's layout, futures' names)."""
    name = inst.local_symbol or inst.symbol
    return (
        f"Order Message:\n{side} {quantity} {name} {inst.exchange}\n"
        f"Warning: your order will not be placed at the exchange until {exchange_time(inst, open_s)}"
    )


def status_summary(insts: list[Instrument], second: int) -> str:
    """``MES, MNQ closed until 2026-12-06 23:00:00 UTC; SPY open until ...``: products with one status
    share it, in their order."""
    groups: dict[str, list[str]] = {}
    for inst in insts:
        is_open, boundary = listed_hours_for(inst).state_at(second)
        at = datetime.fromtimestamp(boundary, UTC)
        state = f"{'open' if is_open else 'closed'} until {at:%Y-%m-%d %H:%M:%S} UTC"
        groups.setdefault(state, []).append(inst.symbol)
    return "; ".join(f"{', '.join(names)} {state}" for state, names in groups.items())

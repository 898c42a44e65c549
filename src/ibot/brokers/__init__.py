"""Broker adapters: each implements the OMS's Broker port and keeps its venue's types inside its folder.

``ibot.brokers.ib`` talks to Interactive Brokers (TWS / IB Gateway) through ib_async.
"""

__all__: list[str] = []

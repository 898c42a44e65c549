"""Compiled twins (numba) of the built-in strategies, for parameter sweeps.

A twin is the strategy's signal and fill logic as one compiled loop over integer ticks. It returns what the
event-driven Backtester returns for the same strategy, parameters, bars, fees, fill rules and sessions: the
same trades (times, sides, quantities, prices, fees, gross and net P&L to the cent), fill count, per-bar
position and equity arrays (bit for bit), logs and metrics. tests/strategies/test_twins.py holds them to it.

Twins (declared as `Strategy.twin`, dispatched by ibot.backtest.compiled.run_backtest):
    SmaReversal  -> ibot.strategies.twins.sma_reversal:run
    MaBreakout   -> ibot.strategies.twins.ma_breakout:run

Full result: `run(spec: TwinRun) -> BacktestResult`. A run a twin does not reproduce goes to the event-driven
engine unchanged: a subclass of the strategy (it may change the logic), a FeeModel subclass (fees may not be
per contract), or FillRules.bar_volume_participation (partial fills).

Fast path (one sweep trial, no Trade objects), what the optimizer and bench/optimize.py use:

    from ibot.strategies.twins import ma_breakout
    from ibot.strategies.twins.result import prepare, summarize

    data = prepare(instrument, bars, sessions)             # once per data set: validation, ticks, days
    fills = ma_breakout.simulate(data, params, rules)      # per trial: the compiled kernel -> Fills
    s = summarize(data, fills, fees, initial_capital)      # -> Summary

`params` are resolved parameters (`Strategy.p`, e.g. `MaBreakout(**trial).p`); `Fills` holds compact arrays:
per fill the bar index, side, quantity, price in ticks and reason code, and per bar the position, cash (ticks)
and fills so far. `Summary` is (net_pnl: exact Decimal over closed round trips = metrics.net_pnl,
trades: round trips = metrics.trades, trades_per_day: round trips per trading day present in the bars, by
exit bar, equity: the per-bar equity array = BacktestResult.equity). The raw kernels (`kernel` in each module)
take numpy arrays and plain ints and may be called directly.

Money: prices and cash are integer ticks in the kernels; P&L is tick value x ticks and fees are per-contract
fee x contracts, both Decimal, at the end. Equity uses the engine's own float formula and fee order.
"""

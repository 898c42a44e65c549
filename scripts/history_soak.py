"""Soak test of `ibot history download` at full size, run as a user runs it: the real CLI as subprocesses.

    .venv/bin/python scripts/history_soak.py [--months 24] [--kills 3] [--scale 60] [--seed 1] [--keep]

1. starts `ibot sim --pacing-scale K` (market time the day after --end) on a free port;
2. downloads MES and MGC 1-min bars over --months months up to --end into dir A, uninterrupted
   (`ibot history download ... --pacing-scale K --json`): requests sent (the CLI's count and the simulator's
   log), the fewest needed (the CLI's, and the sessions of every contract's window counted here), pacing
   violations (the CLI's and the simulator's WARNING lines), wall time;
3. downloads the same into dir B, SIGKILLing the CLI at --kills seeded random points of the download (spread
   over the time A took) and resuming each time, then runs it to completion;
4. compares A and B bar for bar per contract (same keys, same rows, sorted, no duplicate time), runs
   `ibot history gaps` on both and checks that every session of each window without bars (and every thin one)
   is named by the report; the check itself is tested on a copy of A with one session's bars removed;
5. runs the download on A again: it must send no request;
6. builds `ibot data continuous` (backward-spread) of both products on A, checks each roll against the raw
   months and the series' raw prices (price - adjustment) against the months' closes, then runs
   `ibot backtest --continuous` on MES and checks that every roll is in the report with its fills and fees
   and that the net P&L equals the per-contract P&L recomputed from the trades file's raw prices;
7. prints a summary table; exits 1 when a check failed (2 when the simulator did not start).

The machine's other load changes the wall times; nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import calendar
import itertools
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from ibot.exchange.hours import listed_hours_for
from ibot.model import catalog

IBOT = [str(Path(sys.executable).with_name("ibot"))]  # the console script beside this interpreter
CLIENT_ID = 21  # the historical-data client id of the client-id plan
IB_WINDOW_S = 600.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Soak:
    """The run's settings, where it works, the simulator's log, and every figure and check."""

    args: argparse.Namespace
    work: Path
    start: date
    end: date
    symbols: list[str]
    port: int = 0
    sim: subprocess.Popen[bytes] | None = None
    sim_log: Path = Path()
    figures: list[tuple[str, str]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        mark = "ok  " if ok else "FAIL"
        print(f"[{mark}] {name}{': ' + detail if detail else ''}", flush=True)
        return bool(ok)

    def figure(self, name: str, value: object) -> None:
        self.figures.append((name, str(value)))
        print(f"       {name}: {value}", flush=True)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(TWS_API_ADDR="127.0.0.1", TWS_API_PORT=str(self.port), COLUMNS="200", NO_COLOR="1")
        return env

    def ibot(self, *argv: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*IBOT, *argv],
            cwd=self.work,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    # --- the simulator's log: requests and violations per phase -------------------------------------------
    def log_mark(self) -> int:
        return self.sim_log.stat().st_size

    def log_since(self, mark: int) -> tuple[int, int]:
        """(reqHistoricalData lines of the historical client, pacing-violation WARNINGs) logged since mark."""
        with self.sim_log.open("rb") as fh:
            fh.seek(mark)
            text = fh.read().decode("utf-8", "replace")
        requests = len(re.findall(rf"client {CLIENT_ID} reqHistoricalData ", text))
        violations = len(re.findall(r"WARNING.*historical pacing violation", text))
        if violations == 0:  # the logger's format may not show the level: match the message alone
            violations = len(re.findall(r"historical pacing violation #", text))
        return requests, violations


# --- 1. the simulator ------------------------------------------------------------------------------------


def start_sim(s: Soak) -> None:
    market = f"{(s.end + timedelta(days=1)).isoformat()}T12:00"
    s.sim_log = s.work / "sim.log"
    fh = s.sim_log.open("wb")
    argv = [
        *IBOT,
        "sim",
        "--port",
        "0",
        "--start",
        market,
        "--pacing-scale",
        f"{s.args.scale:g}",
        "-s",
        ",".join(s.symbols),
    ]
    s.sim = subprocess.Popen(argv, cwd=s.work, stdout=fh, stderr=subprocess.STDOUT, env=s.env())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"listening on [\d.]+:(\d+)", s.sim_log.read_text("utf-8", "replace"))
        if found:
            s.port = int(found.group(1))
            s.figure("simulator", f"port {s.port}, market time {market} UTC, pacing scale {s.args.scale:g}")
            return
        if s.sim.poll() is not None:
            break
        time.sleep(0.2)
    raise SystemExit(f"the simulator did not start: {s.sim_log.read_text('utf-8', 'replace')[-2000:]}")


def stop_sim(s: Soak) -> None:
    if s.sim is not None and s.sim.poll() is None:
        s.sim.send_signal(signal.SIGTERM)
        try:
            s.sim.wait(20)
        except subprocess.TimeoutExpired:
            s.sim.kill()
            s.sim.wait()


def pacing_pause(s: Soak) -> None:
    """IB (and the simulator) pace the session, not the data directory: before a download into another
    directory (whose checkpoint does not know the requests just sent) the ten-minute window is let pass."""
    time.sleep(IB_WINDOW_S / s.args.scale * 1.05 + 0.5)


# --- 2. / 3. downloads -----------------------------------------------------------------------------------


def download_argv(s: Soak, symbol: str, data: Path) -> list[str]:
    return [
        "history",
        "download",
        "--symbol",
        symbol,
        "--bar",
        "1 min",
        "--from",
        s.start.isoformat(),
        "--to",
        s.end.isoformat(),
        "--data-dir",
        str(data),
        "--pacing-scale",
        f"{s.args.scale:g}",
        "--in-flight",
        str(s.args.in_flight),
        "--json",
    ]


def download(s: Soak, data: Path) -> dict[str, Any]:
    """Every symbol into `data`, uninterrupted: the CLI's JSON per symbol, summed, with the wall time and the
    simulator's count of requests and violations."""
    mark, began = s.log_mark(), time.monotonic()
    out: dict[str, Any] = {
        "requests_sent": 0,
        "fewest_needed": 0,
        "violations_seen": 0,
        "bars": 0,
        "contracts": [],
        "complete": True,
        "rc": [],
    }
    for symbol in s.symbols:
        done = s.ibot(*download_argv(s, symbol, data))
        out["rc"].append(done.returncode)
        try:
            d = json.loads(done.stdout)
        except json.JSONDecodeError:
            print(done.stdout[-2000:], done.stderr[-2000:], file=sys.stderr)
            out["complete"] = False
            continue
        out["requests_sent"] += d["requests_sent"]
        out["fewest_needed"] += d["fewest_needed"]
        out["violations_seen"] += d["violations_seen"]
        out["bars"] += sum(d["bars_stored"].values())
        out["complete"] = out["complete"] and d["complete"] and done.returncode == 0
        out["contracts"] += [c for job in d["jobs"] for c in job["contracts"]]
    out["wall"] = time.monotonic() - began
    out["sim_requests"], out["sim_violations"] = s.log_since(mark)
    return out


def done_ranges(data: Path) -> int:
    path = data / "history" / "progress.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM done").fetchone()[0])


def download_with_kills(s: Soak, data: Path, busy_a: float) -> dict[str, Any]:
    """Every symbol into `data`, SIGKILLed at `--kills` seeded points of the cumulative download time (spread
    over 5..85 % of the time A took) and run again after each kill, then to completion."""
    rng = random.Random(s.args.seed)
    kill_at = sorted(rng.uniform(0.05, 0.85) * busy_a for _ in range(s.args.kills))
    mark, began, busy = s.log_mark(), time.monotonic(), 0.0
    kills: list[str] = []
    runs, rcs = 0, []
    for symbol in s.symbols:
        while True:
            runs += 1
            t0 = time.monotonic()
            proc = subprocess.Popen(
                [*IBOT, *download_argv(s, symbol, data)],
                cwd=s.work,
                env=s.env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            limit = kill_at[0] - busy if kill_at else None
            try:
                proc.communicate(timeout=limit)
                busy += time.monotonic() - t0
                rcs.append(proc.returncode)
                break
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
                busy += time.monotonic() - t0
                kill_at.pop(0)
                kills.append(f"{symbol} at {busy:.1f} s ({done_ranges(data)} ranges done)")
    out = {"wall": time.monotonic() - began, "runs": runs, "kills": kills, "rcs": rcs}
    out["sim_requests"], out["sim_violations"] = s.log_since(mark)
    return out


# --- 4. comparing the stores, gaps -----------------------------------------------------------------------


def series_files(data: Path) -> dict[str, Path]:
    return {p.parent.name: p for p in sorted((data / "bars").glob("*/1min.parquet"))}


def compare_stores(s: Soak, a: Path, b: Path) -> None:
    fa, fb = series_files(a), series_files(b)
    s.check(
        "A and B store the same contracts", fa.keys() == fb.keys(), f"{len(fa)} contracts: {' '.join(fa)}"
    )
    differ, dups, rows = [], [], 0
    for key in sorted(fa.keys() & fb.keys()):
        ta, tb = pq.read_table(fa[key]), pq.read_table(fb[key])
        rows += ta.num_rows
        for name, t in (("A", ta), ("B", tb)):
            ts = t.column("ts").to_numpy()
            if len(ts) > 1 and not bool(np.all(np.diff(ts.astype(np.int64)) > 0)):
                dups.append(f"{name}:{key}")
        if ta.column_names != tb.column_names or not ta.equals(tb):
            differ.append(f"{key} ({ta.num_rows} vs {tb.num_rows} rows)")
        side_a = json.loads((fa[key].parent / "contract.json").read_text())
        side_b = json.loads((fb[key].parent / "contract.json").read_text())
        if side_a != side_b:
            differ.append(f"{key} contract.json")
    s.check(
        f"B ({s.args.kills} kills, resumed) equals A bar for bar",
        not differ,
        ", ".join(differ) or f"{rows:,} bars",
    )
    s.check("every series sorted, no duplicate time", not dups, ", ".join(dups))


def expected_gaps(data: Path, symbol: str, contracts: list[dict[str, Any]], min_fill: float) -> dict:
    """{(key, day): kind} of every session of each contract's downloaded window (first_day..last_day as the
    download reported it) that holds no bar ("missing") or fewer than `min_fill` of its minutes ("thin"),
    counted here from the Parquet file and the exchange calendar; and the number of sessions looked at."""
    hours = listed_hours_for(catalog.get_instrument(symbol))
    files = series_files(data)
    out: dict[tuple[str, str], str] = {}
    sessions = 0
    for c in contracts:
        key = c["key"]
        ts = pq.read_table(files[key]).column("ts").to_numpy().astype(np.int64) if key in files else []
        ts = np.asarray(ts, dtype=np.int64)
        side = json.loads((files[key].parent / "contract.json").read_text()) if key in files else {}
        last_trade = str(side.get("lastTradeDate", "")).replace("-", "")
        last = date.fromisoformat(c["last_day"])
        for day, opened, closed in hours.sessions(date.fromisoformat(c["first_day"]), last):
            sessions += 1
            n = int(np.searchsorted(ts, closed) - np.searchsorted(ts, opened))
            minutes = sum(b - a for a, b in hours.session_segments(day)) // 60_000_000_000
            if n == 0:
                out[(key, day.isoformat())] = "missing"
            elif n < min_fill * minutes and f"{day:%Y%m%d}" != last_trade:  # that day ends at the last trade
                out[(key, day.isoformat())] = "thin"
    return {"gaps": out, "sessions": sessions}


def reported_gaps(s: Soak, data: Path, symbol: str) -> dict[tuple[str, str], str]:
    done = s.ibot("history", "gaps", "--symbol", symbol, "--data-dir", str(data), "--json")
    if done.returncode != 0:
        raise RuntimeError(f"ibot history gaps failed ({done.returncode}): {done.stderr[-1000:]}")
    report = json.loads(done.stdout)
    return {(c["key"], g["day"]): g["kind"] for c in report["contracts"] for g in c["gaps"]}


def check_gaps(s: Soak, name: str, data: Path, contracts: dict[str, list[dict[str, Any]]]) -> None:
    unnamed: list[str] = []
    named = found = sessions = 0
    for symbol in s.symbols:
        mine = expected_gaps(data, symbol, contracts[symbol], 0.9)
        theirs = reported_gaps(s, data, symbol)
        sessions += mine["sessions"]
        found += len(mine["gaps"])
        named += len(theirs)
        unnamed += [f"{k} {d} {kind}" for (k, d), kind in mine["gaps"].items() if theirs.get((k, d)) != kind]
        # a session the report calls missing must hold no bar
        unnamed += [
            f"{k} {d} reported missing"
            for (k, d), kind in theirs.items()
            if kind == "missing" and mine["gaps"].get((k, d)) != "missing"
        ]
    s.check(
        f"{name}: every session without bars (or thin) is named by `ibot history gaps`",
        not unnamed,
        f"{sessions} sessions, {found} lack bars, the report names {named}"
        + (f"; not named: {', '.join(unnamed[:5])}" if unnamed else ""),
    )


def check_gap_checker(s: Soak, a: Path, contracts: dict[str, list[dict[str, Any]]]) -> None:
    """The gap check is not vacuous: on a copy of A with one session's bars removed, the session is found
    here and named by the report."""
    symbol = s.symbols[0]
    c = contracts[symbol][len(contracts[symbol]) // 2]
    g = s.work / "G"
    shutil.copytree(a, g)
    hours = listed_hours_for(catalog.get_instrument(symbol))
    sessions = list(hours.sessions(date.fromisoformat(c["first_day"]), date.fromisoformat(c["last_day"])))
    day, opened, closed = sessions[len(sessions) // 2]
    path = series_files(g)[c["key"]]
    table = pq.read_table(path)
    ts = table.column("ts").to_numpy().astype(np.int64)
    pq.write_table(table.filter(~((ts >= opened) & (ts < closed))), path)
    mine = expected_gaps(g, symbol, contracts[symbol], 0.9)["gaps"]
    theirs = reported_gaps(s, g, symbol)
    want = (c["key"], day.isoformat())
    s.check(
        "the gap check finds a session removed on purpose, and the report names it",
        mine.get(want) == "missing" and theirs.get(want) == "missing",
        f"{want[0]} {want[1]}: found {mine.get(want)}, reported {theirs.get(want)}",
    )
    shutil.rmtree(g)


def fewest_sessions(contracts: dict[str, list[dict[str, Any]]]) -> int:
    """One request per session at 1-min bars: the sessions of every contract's window."""
    n = 0
    for symbol, cs in contracts.items():
        hours = listed_hours_for(catalog.get_instrument(symbol))
        for c in cs:
            n += sum(
                1
                for _ in hours.sessions(date.fromisoformat(c["first_day"]), date.fromisoformat(c["last_day"]))
            )
    return n


# --- 6. continuous series and a backtest across rolls ------------------------------------------------------


def store_closes(data: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    t = pq.read_table(series_files(data)[key], columns=["ts", "close"])
    return t.column("ts").to_numpy().astype(np.int64), t.column("close").to_numpy().astype(np.float64)


def close_at(data: Path, key: str, ts: int, span_ns: int = 60_000_000_000) -> float | None:
    """The close of `key`'s last 1-min bar in [ts, ts + span): a `span` bar's close built from 1-min bars."""
    times, closes = store_closes(data, key)
    i = int(np.searchsorted(times, ts + span_ns)) - 1
    return float(closes[i]) if i >= 0 and times[i] >= ts else None


def check_continuous(s: Soak, a: Path, symbol: str) -> list[dict[str, Any]]:
    """`ibot data continuous` on A; its rolls against the raw months, its raw prices against the months'
    closes, and every stored bar of each month between its rolls in the series. Returns the rolls."""
    done = s.ibot("data", "continuous", "--symbol", symbol, "--data-dir", str(a), "--json")
    if not s.check(f"{symbol} continuous series built", done.returncode == 0, done.stderr.strip()[-300:]):
        return []
    d = json.loads(done.stdout)
    inst = catalog.get_instrument(symbol)
    tick = float(inst.tick_size)
    rolls = d["rolls"]
    series = pq.read_table(a / "continuous" / symbol / "1min" / "backward-spread" / "series.parquet")
    ts = series.column("ts").to_numpy().astype(np.int64)
    close = series.column("close").to_numpy().astype(np.float64)
    adj = series.column("adjustment").to_numpy().astype(np.float64)
    month = np.asarray(series.column("contract").to_pylist())
    bad: list[str] = []
    chain = list(dict.fromkeys(month.tolist()))
    pairs = [(r["from_contract"], r["to_contract"]) for r in rolls]
    if pairs != list(itertools.pairwise(chain)):
        bad.append(f"rolls {pairs} do not join the months {chain}")
    for r in rolls:
        for side, key in (("from_price", r["from_contract"]), ("to_price", r["to_contract"])):
            raw = close_at(a, key, int(r["ts"]))
            if raw is None or round(raw / tick) != round(r[side] / tick):
                bad.append(f"{r['time']} {side} {r[side]} but {key} closed at {raw}")
    # a month's bars: after the previous roll bar up to its own (the first and last: the series' ends)
    edges = [int(ts[0]) - 1, *(int(r["ts"]) for r in rolls), int(ts[-1])]
    raw_ok = True
    for k, key in enumerate(chain):
        times, closes = store_closes(a, key)
        lo, hi = np.searchsorted(times, edges[k], "right"), np.searchsorted(times, edges[k + 1], "right")
        rows = month == key
        if not np.array_equal(ts[rows], times[lo:hi]):
            bad.append(f"{key}: series holds {int(rows.sum())} bars, the month {hi - lo} between its rolls")
            continue
        raw_ok = raw_ok and bool(
            np.array_equal(np.rint((close[rows] - adj[rows]) / tick), np.rint(closes[lo:hi] / tick))
        )
    if not raw_ok:
        bad.append("a series price minus its adjustment is not the month's close")
    s.check(
        f"{symbol} continuous: {len(rolls)} rolls at the months' own closes, every bar = raw + adjustment",
        not bad and bool(np.all(np.diff(ts) > 0)),
        "; ".join(bad[:4]) or f"{len(ts):,} bars from {len(chain)} months",
    )
    s.figure(
        f"{symbol} continuous rolls",
        " ".join(f"{r['from_contract']}>{r['to_contract']}@{r['roll_day']}" for r in rolls),
    )
    return rolls


def month_range(s: Soak) -> tuple[str, str]:
    """--from/--to of the backtest: the first whole month of the download, and its last month."""
    first = s.start if s.start.day == 1 else (s.start.replace(day=1) + timedelta(days=32)).replace(day=1)
    return f"{first:%Y-%m}", f"{s.end:%Y-%m}"


def run_backtest(s: Soak, a: Path, symbol: str) -> dict[str, Any] | None:
    first, last = month_range(s)
    out = a / "backtest"
    done = s.ibot(
        "backtest",
        "--symbol",
        symbol,
        "--continuous",
        "--from",
        first,
        "--to",
        last,
        "--strategy",
        s.args.strategy,
        "--bar",
        s.args.bar,
        "--data-dir",
        str(a),
        "--out",
        str(out),
        "--no-chart",
        "--json",
    )
    if not s.check(
        f"{symbol} backtest --continuous {first}..{last} ran",
        done.returncode == 0,
        done.stderr.strip()[-400:],
    ):
        return None
    return dict(json.loads(done.stdout))


def read_trades(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def check_backtest(s: Soak, a: Path, symbol: str, series_rolls: list[dict[str, Any]]) -> None:
    """Every roll of the series inside the run is in the report, at the `--bar` bar's closes of both months,
    with its two fills in the trades file and its fees; net P&L = the per-contract P&L from raw prices."""
    bt = run_backtest(s, a, symbol)
    if bt is None:
        return
    inst = catalog.get_instrument(symbol)
    bar_ns = int(s.args.bar.removesuffix("min")) * 60_000_000_000
    trades = read_trades(Path(bt["files"]["trades_csv"]))
    rolls = bt["rolls"]
    start_ns = int(datetime.fromisoformat(bt["start"].replace(" UTC", "+00:00")).timestamp()) * 10**9
    end_ns = int(datetime.fromisoformat(bt["end"].replace(" UTC", "+00:00")).timestamp()) * 10**9
    inside = [
        (r["from_contract"], r["to_contract"]) for r in series_rolls if start_ns <= int(r["ts"]) < end_ns
    ]
    listed = [(r["from_contract"], r["to_contract"]) for r in rolls]
    s.check(
        f"{symbol} backtest lists every roll of the series in its range",
        listed == inside,
        f"{len(listed)} rolls: {' '.join(f'{x}>{y}' for x, y in listed)}",
    )
    per_side = {Decimal(t["fees"]) / (2 * int(t["quantity"])) for t in trades}
    bad: list[str] = []
    if len(per_side) != 1:
        bad.append(f"fees per contract per side vary: {sorted(per_side)}")
    fee = min(per_side) if per_side else Decimal(0)
    rolled = 0
    for r in rolls:
        at = datetime.fromisoformat(r["time"]).isoformat()
        roll_ns = int(datetime.fromisoformat(r["time"]).timestamp()) * 10**9
        for side, key in (("from_price", r["from_contract"]), ("to_price", r["to_contract"])):
            raw = close_at(a, key, roll_ns, bar_ns)
            if raw != r[side]:
                bad.append(f"{at} {side} {r[side]}: {key}'s {s.args.bar} close there is {raw}")
        q = int(r["quantity"])
        if Decimal(r["fees"]) != 2 * abs(q) * fee:
            bad.append(f"{at} fees {r['fees']} for {q} contracts at {fee} per side")
        out = [t for t in trades if t["exit_reason"] == "roll" and t["exit_time"] == at]
        into = [t for t in trades if t["entry_reason"] == "roll" and t["entry_time"] == at]
        if not q:
            if out or into:
                bad.append(f"{at}: roll fills while flat")
            continue
        rolled += 1
        side = "LONG" if q > 0 else "SHORT"
        want_out = (r["from_contract"], side, abs(q), r["from_price"])
        want_in = (r["to_contract"], side, abs(q), r["to_price"])
        got_out = [(t["contract"], t["side"], int(t["quantity"]), float(t["exit_price"])) for t in out]
        got_in = [(t["contract"], t["side"], int(t["quantity"]), float(t["entry_price"])) for t in into]
        if got_out != [want_out] or got_in != [want_in]:
            bad.append(f"{at}: roll fills {got_out} / {got_in}, want {want_out} / {want_in}")
    s.check(
        f"{symbol} backtest rolls at both months' {s.args.bar} closes, with their fills and fees",
        not bad,
        "; ".join(bad[:4]) or f"{rolled} rolled a position, {len(rolls) - rolled} were flat",
    )
    check_pnl(s, symbol, bt, trades, inst.multiplier, inst.tick_size)


def check_pnl(
    s: Soak, symbol: str, bt: dict[str, Any], trades: list[dict[str, str]], mult: Decimal, tick: Decimal
) -> None:
    """Net P&L of the report = sum over contracts of (exit - entry) x direction x quantity x multiplier
    - fees,
    from the trades file's raw prices."""
    gross: dict[str, Decimal] = defaultdict(Decimal)
    fees: dict[str, Decimal] = defaultdict(Decimal)
    off_grid = 0
    for t in trades:
        entry, exit_ = Decimal(t["entry_price"]), Decimal(t["exit_price"])
        off_grid += (entry % tick != 0) + (exit_ % tick != 0)
        sign = 1 if t["side"] == "LONG" else -1
        gross[t["contract"]] += (exit_ - entry) * sign * int(t["quantity"]) * mult
        fees[t["contract"]] += Decimal(t["fees"])
    net = {k: gross[k] - fees[k] for k in gross}
    total = sum(net.values(), Decimal(0))
    m = bt["metrics"]
    equity = Decimal(bt["final_equity"]) - Decimal(bt["initial_capital"])
    s.figure(
        f"{symbol} backtest per-contract net P&L (raw prices)",
        ", ".join(f"{k} {v:+,.2f}" for k, v in sorted(net.items(), key=lambda kv: kv[0][-1] + kv[0])),
    )
    s.figure(
        f"{symbol} backtest",
        f"{m['trades']} trades, {bt['fills']} fills, net {m['net_pnl']}, gross "
        f"{m['gross_pnl']}, fees {m['fees']}",
    )
    s.check(
        f"{symbol} backtest net P&L = sum of per-contract P&L (and final equity - capital)",
        total == Decimal(m["net_pnl"]) == equity
        and sum(gross.values(), Decimal(0)) == Decimal(m["gross_pnl"])
        and off_grid == 0,
        f"report {m['net_pnl']}, per contract {total}, equity {equity}, prices off the tick grid {off_grid}",
    )


# --- the run -----------------------------------------------------------------------------------------------


def phase_a(s: Soak, a: Path) -> dict[str, Any]:
    print(f"== A: {' and '.join(s.symbols)} 1-min bars {s.start}..{s.end}, uninterrupted", flush=True)
    da = download(s, a)
    by_symbol: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in da["contracts"]:
        by_symbol[c["key"][:-2]].append(c)
    da["by_symbol"] = dict(by_symbol)
    sessions = fewest_sessions(da["by_symbol"])
    s.figure("A: contracts", f"{len(da['contracts'])} ({' '.join(c['key'] for c in da['contracts'])})")
    s.figure(
        "A: requests sent / fewest needed",
        f"{da['requests_sent']} / {da['fewest_needed']} (CLI); "
        f"{da['sim_requests']} reqHistoricalData in the simulator's log; {sessions} sessions in the "
        "contracts' windows",
    )
    s.figure("A: bars stored", f"{da['bars']:,}")
    s.figure("A: wall time", f"{da['wall']:.1f} s ({da['bars'] / max(da['wall'], 1e-9):,.0f} bars/s)")
    s.check("A: download complete (exit 0)", da["complete"], f"exit codes {da['rc']}")
    s.check(
        "A: requests sent = fewest needed = sessions of the windows",
        da["requests_sent"] == da["fewest_needed"] == da["sim_requests"] == sessions,
    )
    s.check(
        "A: zero pacing violations",
        da["violations_seen"] == 0 and da["sim_violations"] == 0,
        f"CLI {da['violations_seen']}, simulator {da['sim_violations']}",
    )
    return da


def phase_b(s: Soak, b: Path, da: dict[str, Any]) -> None:
    print(f"== B: the same, SIGKILLed {s.args.kills} times (seed {s.args.seed}) and resumed", flush=True)
    pacing_pause(s)
    db = download_with_kills(s, b, da["wall"])
    s.figure("B: kills", "; ".join(db["kills"]) or "none")
    s.figure(
        "B: runs / requests sent",
        f"{db['runs']} runs, {db['sim_requests']} reqHistoricalData "
        f"(A needed {da['fewest_needed']}: {db['sim_requests'] - da['fewest_needed']} sent again after "
        "kills)",
    )
    s.figure("B: wall time", f"{db['wall']:.1f} s")
    s.check(
        f"B: killed {s.args.kills} times, then completed (exit 0)",
        len(db["kills"]) == s.args.kills and db["rcs"] == [0] * len(s.symbols),
        f"exit codes {db['rcs']}",
    )
    s.check(
        "B: zero pacing violations (across kills)",
        db["sim_violations"] == 0,
        f"simulator {db['sim_violations']}",
    )


def phase_again(s: Soak, a: Path) -> None:
    print("== A again: a download on complete data", flush=True)
    again = download(s, a)
    s.figure(
        "A again: requests sent",
        f"{again['requests_sent']} (simulator's log: {again['sim_requests']}), {again['wall']:.1f} s",
    )
    s.check(
        "a second run sends no request",
        again["requests_sent"] == 0 == again["sim_requests"] and again["complete"],
    )


def soak(s: Soak) -> None:
    a, b = s.work / "A", s.work / "B"
    start_sim(s)
    da = phase_a(s, a)
    phase_b(s, b, da)
    print("== A vs B, gaps", flush=True)
    compare_stores(s, a, b)
    for name, data in (("A", a), ("B", b)):
        check_gaps(s, name, data, da["by_symbol"])
    check_gap_checker(s, a, da["by_symbol"])
    phase_again(s, a)
    print("== continuous series and a backtest across rolls", flush=True)
    rolls = {symbol: check_continuous(s, a, symbol) for symbol in s.symbols}
    if "MES" in rolls or s.args.backtest in rolls:
        sym = s.args.backtest
        t0 = time.monotonic()
        check_backtest(s, a, sym, rolls.get(sym, []))
        s.figure(f"{sym} backtest wall time", f"{time.monotonic() - t0:.1f} s")


def summary(s: Soak, wall: float) -> None:
    width = max(len(n) for n, _ in s.figures) if s.figures else 10
    print("\n" + "=" * 100)
    print(
        f"history soak: {' '.join(s.symbols)} 1-min {s.start}..{s.end} ({s.args.months} months), pacing "
        f"scale {s.args.scale:g}, {s.args.kills} kills (seed {s.args.seed}), in flight {s.args.in_flight}"
    )
    print("-" * 100)
    for name, value in s.figures:
        print(f"{name:<{width}}  {value}")
    print("-" * 100)
    for c in s.checks:
        print(f"{'PASS' if c.ok else 'FAIL'}  {c.name}{'  (' + c.detail + ')' if c.detail else ''}")
    failed = sum(not c.ok for c in s.checks)
    print("-" * 100)
    print(f"{len(s.checks) - failed} of {len(s.checks)} checks passed; total wall time {wall:.0f} s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--months", type=int, default=24, help="months of bars up to --end (default 24)")
    p.add_argument(
        "--end", default="2026-06-29", help="last trading day (the simulator starts the day after)"
    )
    p.add_argument("--symbols", default="MES,MGC")
    p.add_argument("--kills", type=int, default=3, help="SIGKILLs of the second download")
    p.add_argument("--seed", type=int, default=1, help="seed of the kill points")
    p.add_argument("--scale", type=float, default=60.0, help="pacing scale K (simulator and downloader)")
    p.add_argument("--in-flight", type=int, default=5)
    p.add_argument("--strategy", default="sma_reversal")
    p.add_argument("--bar", default="30min", help="bar size of the backtest (N min)")
    p.add_argument("--backtest", default="MES", help="product of the continuous backtest")
    p.add_argument("--work", type=Path, help="working directory (default: a new temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the working directory")
    args = p.parse_args(argv)
    if args.months < 1 or args.kills < 0 or args.scale < 1:
        p.error("--months must be 1 or more, --kills 0 or more, --scale 1 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    end = date.fromisoformat(args.end)
    after = end + timedelta(days=1)
    year, month = divmod(after.year * 12 + after.month - 1 - args.months, 12)
    start = date(year, month + 1, min(after.day, calendar.monthrange(year, month + 1)[1]))
    work = args.work or Path(tempfile.mkdtemp(prefix="history-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    s = Soak(args, work.resolve(), start, end, [x.strip().upper() for x in args.symbols.split(",")])
    began = time.monotonic()
    try:
        soak(s)
    finally:
        stop_sim(s)
        summary(s, time.monotonic() - began)
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept: {work}")
    return 1 if any(not c.ok for c in s.checks) else 0


if __name__ == "__main__":
    sys.exit(main())

"""The `ibot` command end to end, in-process through Typer's runner, on real files in a temp dir."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ibot.backtest.chart import write_live_chart
from ibot.cli.main import app
from ibot.data.store import BarStore
from ibot.model import catalog
from ibot.model.market import datetime_to_ns, ns_to_datetime
from ibot.model.orders import OrderRequest, OrderType, Side
from ibot.oms.records import OrderRecords

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_contracts_json_lists_each_products_next_months_as_of_a_date() -> None:
    code, out, _ = invoke(
        "contracts", "--asof", "2026-11-22", "--months", "2", "--json", "-s", "MES", "-s", "MCL"
    )
    assert code == 0
    payload = json.loads(out)
    assert payload["asof"] == "2026-11-22"
    rows = payload["contracts"]
    assert [r["local_symbol"] for r in rows] == ["MESZ6", "MESH7", "MCLF7", "MCLG7"]
    assert rows[0]["last_trade_date"] == catalog.last_trade_date("MES", 2026, 12).isoformat()


def test_unknown_symbol_is_one_clear_sentence_not_a_traceback() -> None:
    code, _, err = invoke("contracts", "-s", "NOPE")
    assert code == 2
    assert "unknown symbol 'NOPE'" in err
    assert "Traceback" not in err


def test_bad_date_names_the_option() -> None:
    code, _, err = invoke("contracts", "--asof", "2026-02-30")
    assert code == 2
    assert "--asof" in err


def test_data_synth_then_list_shows_the_stored_series(tmp_path: Path) -> None:
    code, out, _ = invoke(
        "data", "synth", "--symbol", "MCL", "--days", "2", "--data-dir", str(tmp_path), "--json"
    )
    assert code == 0, out
    written = json.loads(out)
    assert written["symbol"] == "MCL" and written["rows"] > 1000
    code, out, _ = invoke("data", "list", "--data-dir", str(tmp_path), "--json")
    rows = json.loads(out)
    assert [(r["symbol"], r["bar_size"], r["rows"]) for r in rows] == [("MCL", "1min", written["rows"])]


def test_backtest_json_reports_metrics_and_writes_trades_and_charts(tmp_path: Path) -> None:
    code, out, err = invoke(
        "backtest",
        "--symbol",
        "MES",
        "--bar",
        "5min",
        "--strategy",
        "ma_breakout",
        "--param",
        "breakout_bars=5",
        "--days",
        "5",
        "--data-dir",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "out"),
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["strategy"] == "ma_breakout"
    assert report["params"]["breakout_bars"] == 5
    metrics = report["metrics"]
    for key in (
        "net_pnl",
        "gross_pnl",
        "fees",
        "trades",
        "win_rate",
        "profit_factor",
        "max_drawdown",
        "sharpe",
    ):
        assert key in metrics
    files = report["files"]
    assert Path(files["trades_csv"]).read_text().count("\n") == metrics["trades"] + 1
    assert Path(files["chart_png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "plotly" in Path(files["chart_html"]).read_text()[:200_000].lower()


def test_backtest_bad_parameter_names_the_parameter(tmp_path: Path) -> None:
    code, _, err = invoke("backtest", "--param", "breakout_bars=0", "--data-dir", str(tmp_path), "--json")
    assert code == 2
    assert "breakout_bars" in err
    code, _, err = invoke("backtest", "--param", "nonsense=1", "--data-dir", str(tmp_path), "--json")
    assert code == 2
    assert "nonsense" in err


def test_backtest_unknown_strategy_lists_the_known_ones(tmp_path: Path) -> None:
    code, _, err = invoke("backtest", "--strategy", "moon", "--data-dir", str(tmp_path))
    assert code == 2
    assert "moon" in err and "ma_breakout" in err


def test_sim_refuses_a_bad_fault_script_before_listening() -> None:
    code, _, err = invoke("sim", "--port", "1", "--fault", "5:boom")
    assert code == 2
    assert "unknown kind 'boom'" in err


def test_sim_replay_without_stored_bars_names_what_is_missing(tmp_path: Path) -> None:
    code, _, err = invoke("sim", "--port", "1", "--replay", "--symbols", "MCL", "--data-dir", str(tmp_path))
    assert code == 2
    assert "MCL" in err


# --- issue 13, findings 9 and 10: data commands that must not change or hide things; help and formats ---


def synth(data_dir: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = invoke("data", "synth", "--data-dir", str(data_dir), "--json", *extra)
    return code, (json.loads(out) if code == 0 else {}), err


def test_backtest_refuses_a_bar_finer_than_the_stored_bars_and_writes_nothing(tmp_path: Path) -> None:
    assert synth(tmp_path / "data", "--days", "2")[0] == 0
    for bar in ("30s", "90s"):  # finer than 1min; not a multiple of 1min
        code, _, err = invoke(
            "backtest", "--bar", bar, "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out")
        )
        assert code == 2
        assert f"--bar {bar}" in err and "1min" in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_backtest_builds_from_the_stored_size_that_divides_the_bar(tmp_path: Path) -> None:
    assert synth(tmp_path / "data", "--days", "2", "--bar", "5min")[0] == 0
    code, out, err = invoke(
        "backtest", "--bar", "15min", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
        "--no-chart", "--json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["files"]["trades_csv"].endswith("MES_15min_ma_breakout_trades.csv")
    assert report["start"] == "2025-01-06 00:00:00 UTC" and report["end"].endswith(":45:00 UTC")
    code, _, err = invoke("backtest", "--bar", "1min", "--data-dir", str(tmp_path / "data"))
    assert code == 2 and "only 5min bars stored" in err


def test_data_synth_over_a_stored_range_is_refused_then_replaced_with_counts(tmp_path: Path) -> None:
    code, first, _ = synth(tmp_path, "--days", "3", "--start", "2025-01-06")
    assert code == 0 and first["replaced"] == 0 and first["added"] == first["rows"] == first["generated"]
    before = BarStore(tmp_path).read("MES", "1min")
    code, _, err = synth(tmp_path, "--days", "3", "--start", "2025-01-07", "--seed", "8")
    assert code == 2
    assert "2025-01-07 00:00:00 UTC to 2025-01-08 21:59:00 UTC" in err and "--replace" in err
    assert BarStore(tmp_path).read("MES", "1min").equals(before)  # nothing written
    code, second, _ = synth(tmp_path, "--days", "3", "--start", "2025-01-07", "--seed", "8", "--replace")
    assert code == 0
    stored_in_range = int((before.ts >= _ns("2025-01-07")).sum())  # the new range runs past the old end
    assert stored_in_range > 0
    assert second["replaced"] == stored_in_range
    assert second["added"] == second["generated"] - stored_in_range
    assert second["rows"] == len(before) + second["added"]
    assert len(BarStore(tmp_path).read("MES", "1min")) == second["rows"]


def _ns(day: str) -> int:
    return datetime_to_ns(datetime.fromisoformat(day).replace(tzinfo=UTC))


def test_data_synth_days_counts_trading_sessions_and_help_says_so(tmp_path: Path) -> None:
    # Friday 2025-01-10, then the weekend: three sessions end on Tuesday the 14th, not Sunday the 12th
    code, summary, _ = synth(tmp_path, "--days", "3", "--start", "2025-01-10")
    assert code == 0
    assert summary["sessions"] == 3
    assert summary["last"].startswith("2025-01-14 ")
    frame = BarStore(tmp_path).read("MES", "1min")
    days = {ns_to_datetime(int(t)).date() for t in frame.ts}
    assert max(days).isoformat() == "2025-01-14"
    _, out, _ = invoke("data", "synth", "--help")
    assert "Trading sessions" in out and "Calendar days" not in out


def test_data_list_marks_a_damaged_file_and_the_other_symbols_still_work(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert synth(data, "--days", "2")[0] == 0
    assert synth(data, "--days", "2", "-s", "MNQ")[0] == 0
    damaged = BarStore(data).path("MNQ", "1min")
    with damaged.open("r+b") as handle:
        handle.seek(damaged.stat().st_size // 2)
        handle.write(bytes(range(16)))
    code, out, _ = invoke("data", "list", "--data-dir", str(data), "--json")
    assert code == 0
    rows = {r["symbol"]: r for r in json.loads(out)}
    assert rows["MES"]["status"] == "verified" and rows["MES"]["problem"] is None
    assert rows["MNQ"]["status"] == "damaged" and str(damaged) in rows["MNQ"]["problem"]
    code, out, _ = invoke("data", "list", "--data-dir", str(data))
    assert code == 0 and f"damaged: {damaged}" in " ".join(out.split())
    code, _, err = invoke("backtest", "-s", "MES", "--data-dir", str(data), "--out", str(tmp_path / "o"))
    assert code == 0, err
    code, _, err = invoke("backtest", "-s", "MNQ", "--data-dir", str(data), "--out", str(tmp_path / "o"))
    assert code == 2 and str(damaged) in " ".join(err.split())


def test_listing_commands_create_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IBOT_DATA_DIR", raising=False)
    code, _, err = invoke("data", "list", "--data-dir", str(tmp_path / "typo"))
    assert code == 2 and "--data-dir" in err and "does not exist" in err
    code, _, err = invoke("orders", "--db", f"sqlite:///{tmp_path}/new/records.sqlite")
    assert code == 2 and "new/records.sqlite" in " ".join(err.split())
    code, _, err = invoke("orders")
    assert code == 2 and "ibot_orders.sqlite" in err
    code, out, _ = invoke("data", "list")  # the default store, not there yet: empty, and still not created
    assert code == 0 and "empty" in out
    assert list(tmp_path.iterdir()) == []


def test_orders_and_fills_show_labelled_utc_times_and_the_chart_reads_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/records.sqlite"
    records = OrderRecords(url)
    records.migrate()
    mes = catalog.contract("MES", 2025, 3)
    t0 = _ns("2025-03-05") + (14 * 3600 + 30 * 60) * 1_000_000_000
    try:
        request = OrderRequest(mes.local_symbol, Side.BUY, 1, OrderType.LMT, limit_price=5000.25)
        records.record_new(request, ts=t0, instrument=mes, client_order_id="c1", ib_order_id=7)
        records.record_fill(
            "c1", exec_id="e1", ts=t0 + 5_000_000_000, side=Side.BUY, quantity=1, price=5000.25,
            symbol=mes.local_symbol, commission=0.62,
        )  # fmt: skip
    finally:
        records.close()
    code, out, err = invoke("orders", "--db", url, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["orders"][0]["created"] == "2025-03-05 14:30:00 UTC"
    assert summary["fills"][0]["time"] == "2025-03-05 14:30:05 UTC"
    code, out, _ = invoke("orders", "--db", url)
    assert "2025-03-05 14:30:05 UTC" in out
    code, out, _ = invoke("data", "synth", "--data-dir", str(tmp_path / "d"), "--days", "1", "--json")
    assert json.loads(out)["first"].endswith(" UTC")
    code, out, _ = invoke("data", "list", "--data-dir", str(tmp_path / "d"), "--json")
    assert json.loads(out)[0]["first"].endswith(" UTC") and json.loads(out)[0]["last"].endswith(" UTC")
    bars = [(t0 + i * 60_000_000_000, 5000.0, 5001.0, 4999.0, 5000.5, 10.0) for i in range(3)]
    chart = write_live_chart(
        {**summary, "bars": bars, "symbol": "MES", "bar": "1min", "strategy": "x", "simulated": True},
        tmp_path / "chart.png",
    )
    assert chart.stat().st_size > 0


def test_version_and_dash_h_everywhere_and_no_type_tags_in_help() -> None:
    code, out, _ = invoke("--version")
    assert code == 0 and out.strip() == f"ibot {version('ibot')}"
    commands = [[], ["contracts"], ["backtest"], ["strategies"], ["sim"], ["run"], ["orders"], ["demo"],
                ["data"], ["data", "synth"], ["data", "list"]]  # fmt: skip
    for command in commands:
        code, short, _ = invoke(*command, "-h")
        _, long, _ = invoke(*command, "--help")
        assert code == 0 and short == long and "Usage" in short, command
        assert not re.search(r"<(bool|int|float|str|path|text|int range|float range)>", short), command


def test_contracts_symbols_by_commas_and_repetition() -> None:
    code, out, _ = invoke(
        "contracts", "--asof", "2026-11-22", "--months", "1", "--json", "-s", "MES,mnq", "-s", "MES"
    )
    assert code == 0
    assert [r["local_symbol"] for r in json.loads(out)["contracts"]] == ["MESZ6", "MNQZ6"]

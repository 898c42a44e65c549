"""The `ibot` command end to end, in-process through Typer's runner, on real files in a temp dir."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ibot.cli.main import app
from ibot.model import catalog

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

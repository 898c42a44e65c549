"""`ibot data continuous` and `ibot backtest --continuous` end to end, in-process through Typer's runner:
the series and its rolls as JSON, and one clear sentence with exit status 2 for every bad input."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from continuous_fixtures import write_months
from typer.testing import CliRunner

from ibot.cli.main import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    write_months(root, "MES", date(2024, 1, 2), date(2024, 9, 30), bar="1h", seed=5)
    return root


def test_data_continuous_json_lists_the_series_and_its_rolls(data: Path) -> None:
    code, out, err = invoke("data", "continuous", "--bar", "1h", "--data-dir", str(data), "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["action"] == "built" and payload["adjust"] == "backward-spread"
    assert [(r["from_contract"], r["to_contract"]) for r in payload["rolls"]] == [
        ("MESH4", "MESM4"),
        ("MESM4", "MESU4"),
        ("MESU4", "MESZ4"),
    ]
    assert payload["contracts"] == ["MESH4", "MESM4", "MESU4", "MESZ4"]
    assert "MESZ4 rolls on 2024-12-16" in payload["note"]  # MESH5 is not stored
    assert Path(payload["path"]).exists()
    code, out, _ = invoke("data", "continuous", "--bar", "1h", "--data-dir", str(data), "--json")
    assert code == 0 and json.loads(out)["action"] == "unchanged"


def test_backtest_continuous_prints_the_rolls(data: Path, tmp_path: Path) -> None:
    code, out, err = invoke(
        "backtest", "--continuous", "--from", "2024-01", "--to", "2024-08", "--bar", "1h",
        "--strategy", "sma_reversal", "--data-dir", str(data), "--out", str(tmp_path), "--no-chart",
    )  # fmt: skip
    assert code == 0, err
    assert "MESH4 -> MESM4" in out and "MESM4 -> MESU4" in out


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (("data", "continuous", "--adjust", "sideways"), "--adjust 'sideways' is not an adjustment"),
        (("data", "continuous", "--symbol", "SPY"), "SPY is a stock, not a futures product"),
        (("data", "continuous", "--bar", "1h"), "no per-contract 1h bars of MES are stored"),
        (
            ("backtest", "--continuous", "--from", "2025-06", "--to", "2024-01"),
            "--from 2025-06 is after --to",
        ),
        (
            ("backtest", "--continuous", "--from", "2024-13", "--to", "2025-01"),
            "--from '2024-13' is not a month",
        ),
        (("backtest", "--continuous", "--to", "2025-01"), "--continuous needs --from"),
        (("backtest", "--from", "2025-02", "--to", "2025-01"), "--from 2025-02 is after --to 2025-01"),
        (
            (
                "backtest",
                "--continuous",
                "--from",
                "2024-01",
                "--to",
                "2024-06",
                "--adjust",
                "backward-ratio",
            ),
            "backward-ratio cannot be backtested",
        ),
        (
            ("backtest", "--continuous", "--from", "2024-01", "--to", "2024-06", "--adjust", "up"),
            "--adjust 'up' is not an adjustment",
        ),
        (
            ("backtest", "--continuous", "--from", "2024-01", "--to", "2024-06"),
            "MESH4 (202403) has no 5min bars",
        ),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(args: tuple[str, ...], sentence: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out_dir = ("--out", str(tmp_path / "o")) if args[0] == "backtest" else ()
    code, out, err = invoke(*args, "--data-dir", str(empty), *out_dir)
    assert code == 2, (out, err)
    text = " ".join(err.split())
    assert text.startswith("error: ") and sentence in text, text
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()  # refused before anything was created


def test_from_and_to_without_continuous_bound_the_stored_bars(tmp_path: Path) -> None:
    """On stored (or synthesized) bars, --from/--to keep the bars of those days only: months or days."""
    base = ["backtest", "--strategy", "sma_reversal", "--bar", "5min", "--days", "20", "--no-chart", "--json"]
    base += ["--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    whole = runner.invoke(app, base)
    assert whole.exit_code == 0, whole.output
    part = runner.invoke(app, [*base, "--from", "2025-01-13", "--to", "2025-01-17"])
    assert part.exit_code == 0, part.output
    w, p = json.loads(whole.stdout), json.loads(part.stdout)
    assert p["start"] >= "2025-01-13 00:00:00 UTC" and p["end"] < "2025-01-18 00:00:00 UTC"
    assert w["start"] < p["start"] and p["end"] < w["end"]

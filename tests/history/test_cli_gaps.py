"""`ibot history gaps`, `ibot history update` (the daily job over `[history]` of ibot.toml) and bad input:
one sentence naming what was wrong, exit 2, nothing created."""

from __future__ import annotations

import json
import socket
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ibot.cli.main import app
from ibot.data.store import SCHEMA, BarStore
from ibot.exchange.hours import listed_hours_for
from ibot.model import catalog

from .conftest import SCALE, Sim

runner = CliRunner()


def _drop(store: BarStore, key: str, start: int, end: int, keep_every: int = 0) -> None:
    """Remove the bars of [start, end) from a stored series (keep every n-th when `keep_every`)."""
    frame = store.read(key, "1min")
    inside = (frame.ts >= start) & (frame.ts < end)
    if keep_every:
        inside &= np.arange(len(frame)) % keep_every != 0
    columns = [pa.array(getattr(frame, n)[~inside]) for n in ("ts", "open", "high", "low", "close", "volume")]
    pq.write_table(pa.Table.from_arrays(columns, schema=SCHEMA), store.path(key, "1min"))


def test_the_gap_report_names_missing_and_thin_sessions_per_contract(sim: Sim) -> None:
    assert sim.download(start=date(2024, 12, 16), end=date(2024, 12, 20)).to_dict()["complete"]
    hours = listed_hours_for(catalog.get_instrument("MES"))
    store = sim.store()
    _drop(store, "MESH5", *hours.session_open_close(date(2024, 12, 18)))
    _drop(store, "MESH5", *hours.session_open_close(date(2024, 12, 19)), keep_every=2)
    out = runner.invoke(app, ["history", "gaps", "--symbol", "MES", "--data-dir", str(sim.data), "--json"])
    assert out.exit_code == 0, out.output
    report = {c["key"]: c for c in json.loads(out.stdout)["contracts"]}
    assert set(report) == {"MESZ4", "MESH5"}
    assert report["MESZ4"]["gaps"] == [] and report["MESZ4"]["sessions"] == 5
    gaps = [(g["day"], g["kind"], g["bars"], g["expected"]) for g in report["MESH5"]["gaps"]]
    assert gaps == [("2024-12-18", "missing", 0, 1380), ("2024-12-19", "thin", 690, 1380)]
    text = runner.invoke(app, ["history", "gaps", "--symbol", "MES", "--data-dir", str(sim.data)])
    assert "MESZ4: 5 complete sessions" in text.stdout and "no gaps" in text.stdout
    assert "MESH5" in text.stdout and "2 sessions lack bars" in text.stdout


def test_update_runs_the_configured_symbols_and_only_fetches_what_is_missing(
    sim: Sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ibot.toml").write_text(
        '[history]\nsymbols = ["MES"]\nbars = ["1 min"]\nstart = "2025-03-03"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TWS_API_PORT", str(sim.port))
    args = ["history", "update", "--data-dir", str(sim.data), "--pacing-scale", str(SCALE), "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    d = json.loads(first.stdout)
    assert set(d["bars_stored"]) == {"MESH5", "MESM5"} and d["requests_sent"] == 6  # 3 sessions each
    again = json.loads(runner.invoke(app, args).stdout)
    assert again["requests_sent"] == 2, again  # only today's sessions, still open, are asked again
    assert again["violations_seen"] == 0  # the first run's requests count: IB paces the session


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--symbol", "XYZ", "--from", "2024-01-02"], "unknown symbol 'XYZ'"),
        (["--from", "2024-13-01"], "'2024-13-01' is not a date"),
        (["--from", "2024-03-01", "--to", "2024-01-01"], "--to 2024-01-01 is before --from 2024-03-01"),
        (["--from", "2024-03-01", "--bar", "4 mins"], "is not a bar size IB serves"),
        (["--from", "2024-03-01", "--what", "PRICE"], "--what 'PRICE' is not one of"),
        (["--from", "1999-03-01"], "outside the years the catalog covers"),
        ([], "--from"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(args: list[str], said: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = runner.invoke(app, ["history", "download", "--data-dir", str(data), *args])
    assert out.exit_code == 2, out.output
    assert said in " ".join(out.output.split())
    assert "Traceback" not in out.output and not data.exists()


def test_an_unreachable_ib_and_a_wrong_data_dir_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _closed_port()
    monkeypatch.setenv("TWS_API_PORT", str(port))
    args = ["history", "download", "--from", "2024-12-16", "--connect-timeout", "0.5"]
    out = runner.invoke(app, [*args, "--data-dir", str(tmp_path / "data")])
    assert out.exit_code == 2 and f"cannot reach TWS / IB Gateway at 127.0.0.1:{port}" in out.output
    assert "Traceback" not in out.output
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    out = runner.invoke(app, [*args, "--data-dir", str(a_file)])
    assert out.exit_code == 2 and "is a file, not a directory" in out.output
    out = runner.invoke(app, ["history", "gaps", "--data-dir", str(tmp_path / "missing")])
    assert out.exit_code == 2 and "does not exist" in out.output


def test_a_request_ib_refuses_for_good_ends_with_exit_2_naming_it(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWS_API_PORT", str(sim.port))
    args = ["history", "download", "--from", "2022-06-06", "--to", "2022-06-07", "--data-dir", str(sim.data)]
    out = runner.invoke(app, [*args, "--pacing-scale", str(SCALE)])
    assert out.exit_code == 2, out.output
    assert "MESM2: IB knows no contract" in " ".join(out.output.split())
    assert "MESU2" in out.stdout  # the other month was downloaded and is listed

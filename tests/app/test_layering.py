"""The application layer's promise to every surface: it prints nothing and draws nothing. No module of
ibot.app imports rich, matplotlib, plotly, typer or FastAPI, calls print() or asyncio.run(), or writes to
stdout/stderr; importing the services loads none of the display libraries."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import ibot.app

APP = Path(ibot.app.__file__).parent
DISPLAY = {"rich", "matplotlib", "plotly", "typer", "fastapi", "uvicorn"}
MODULES = sorted(APP.glob("*.py"))


def _problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt | ast.expr):
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        found += [f"line {node.lineno}: imports {n}" for n in names if n.split(".")[0] in DISPLAY]
        if isinstance(node, ast.Call):
            call = ast.unparse(node.func)
            if call in {"print", "asyncio.run", "sys.stdout.write", "sys.stderr.write"}:
                found.append(f"line {node.lineno}: calls {call}()")
    return found


def test_the_app_package_has_its_service_modules() -> None:
    names = {p.stem for p in MODULES}
    assert {"data", "backtest", "records", "strategies", "progress", "live"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_app_module_prints_draws_or_runs_its_own_loop(path: Path) -> None:
    assert _problems(path) == []


def test_the_checker_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import asyncio\nfrom rich.table import Table\nprint(1)\nasyncio.run(f())\n")
    assert _problems(bad) == [
        "line 2: imports rich.table", "line 3: calls print()", "line 4: calls asyncio.run()"
    ]  # fmt: skip


def test_importing_the_services_loads_no_display_library() -> None:
    code = (
        "import sys, ibot.app.data, ibot.app.backtest, ibot.app.records, ibot.app.strategies, "
        f"ibot.app.progress; print(sorted(m for m in {sorted(DISPLAY)!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

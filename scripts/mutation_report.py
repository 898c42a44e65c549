"""Mutation scores of the money-guarding OMS code, per module, from mutmut 3's results (`make mutation`).

`--scope` prints the mutant-name globs `mutmut run` is given: risk.py and states.py whole, the submit,
reconcile, execution and kill-switch paths of manager.py, and the fill, commission and position bookkeeping
of records.py (mutmut 3 mutates whole files; a run is limited to functions by these names). Without it,
reads the run's results (`<dir>/mutants/src/ibot/oms/*.py.meta`), prints killed / total per module and every
surviving mutant, and exits 1 when a survivor in scope is not listed as equivalent in tests/oms/MUTANTS.md
(a line starting "- `<mutant name>`"). Mutants outside the scope are not run and not counted.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from collections import Counter
from pathlib import Path

# "ǁ" (mutmut's class separator) is matched by "?" so that the globs stay ASCII.
SCOPE: dict[str, list[str]] = {
    "risk.py": ["ibot.oms.risk.*"],
    "states.py": ["ibot.oms.states.*"],
    "manager.py": [
        f"ibot.oms.manager.x?OrderManager?{name}*"
        for name in (
            "submit",
            "_recorded_before",
            "reconcile",
            "_reconcile_orders",
            "_compare_positions",
            "_adopt_position",
            "_on_execution",
            "_apply_execution",
            "_counted_differences",
            "_known_execution",
            "_apply_commission",
            "_change",
            "kill",
        )
    ],
    "records.py": [
        "ibot.oms.records.x_broker_amount*",
        "ibot.oms.records.x__price*",
        "ibot.oms.records.x__fill_record*",
        "ibot.oms.records.x__commission_update*",
        "ibot.oms.records.x_fill_differences*",
        "ibot.oms.records.x__write_change*",
        "ibot.oms.records.x?_DriverTransaction?change*",
        "ibot.oms.records.x?OrderRecords?record_fill*",
        "ibot.oms.records.x?OrderRecords?commission_change*",
        "ibot.oms.records.x?OrderRecords?fills*",
        "ibot.oms.records.x?OrderRecords?executions*",
        "ibot.oms.records.x?OrderRecords?positions*",
    ],
}

# mutmut 3's exit codes (mutmut.stats.status_by_exit_code); anything else is "suspicious".
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped"}
STATUS.update({36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout"})
STATUS[37] = "type check"
DETECTED = {"killed", "timeout"}

EQUIVALENT_LINE = re.compile(r"^- `([^`]+)`")


def in_scope(module: str, name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, glob) for glob in SCOPE[module])


def status(code: int | None) -> str:
    return "not checked" if code is None else STATUS.get(code, "suspicious")


def equivalents(listing: Path) -> set[str]:
    """Mutant names listed as equivalent or harmless in MUTANTS.md."""
    if not listing.exists():
        return set()
    lines = listing.read_text(encoding="utf-8").splitlines()
    return {m.group(1) for line in lines if (m := EQUIVALENT_LINE.match(line))}


def report(run_dir: Path, listing: Path, modules: list[str]) -> int:
    """Print per-module scores and the survivors; 1 when a survivor in scope is not listed as equivalent
    (a mutant no test runs counts as a survivor), or when the run did not check every mutant in scope."""
    listed = equivalents(listing)
    unexplained: list[str] = []
    survivors_seen: set[str] = set()
    print(f"{'module':<12} {'killed':>7} {'total':>6} {'score':>7}  survivors (listed equivalent)  other")
    for module in modules:
        meta = run_dir / "mutants" / "src" / "ibot" / "oms" / f"{module}.meta"
        if not meta.exists():
            print(f"{module:<12} no results at {meta}: run `make mutation` first")
            unexplained.append(module)
            continue
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        counts: Counter[str] = Counter()
        survived: list[str] = []
        for name, code in sorted(codes.items()):
            if not in_scope(module, name):
                continue
            st = status(code)
            counts[st] += 1
            if st in ("survived", "no tests"):
                survived.append(name)
            elif st not in DETECTED:
                unexplained.append(f"{name} ({st})")
        total = sum(counts.values())
        killed = sum(counts[s] for s in DETECTED)
        explained = [n for n in survived if n in listed]
        survivors_seen.update(survived)
        other = ", ".join(f"{s} {n}" for s, n in sorted(counts.items()) if s not in DETECTED | {"survived"})
        score = f"{100 * killed / total:.1f}%" if total else "-"
        row = f"{module:<12} {killed:>7} {total:>6} {score:>7}  {len(survived):>9} ({len(explained)})"
        print(f"{row:<62} {other}")
        unexplained += [n for n in survived if n not in listed]
    mine = tuple(f"ibot.oms.{m[:-3]}." for m in modules)
    for name in sorted(n for n in listed - survivors_seen if n.startswith(mine)):
        print(f"  listed in {listing.name} but not surviving now (remove it): {name}")
    if unexplained:
        print(f"\n{len(unexplained)} mutant(s) surviving unexplained (not in {listing}) or not checked:")
        for name in unexplained:
            print(f"  {name}")
        print(f"see one: cd {run_dir} && {Path.cwd() / '.venv/bin/mutmut'} show '<name>'")
        return 1
    print("\nevery surviving mutant is listed as equivalent or harmless in", listing)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", default="out/mutation", type=Path, help="where mutmut ran")
    parser.add_argument("--scope", action="store_true", help="print the mutant-name globs for `mutmut run`")
    parser.add_argument("--modules", default=" ".join(SCOPE), help="e.g. 'risk.py states.py' (default: all)")
    parser.add_argument("--equivalent", type=Path, default=Path("tests/oms/MUTANTS.md"))
    args = parser.parse_args(argv)
    modules = args.modules.split()
    unknown = [m for m in modules if m not in SCOPE]
    if unknown:
        parser.error(f"--modules: {' '.join(unknown)} not among {' '.join(SCOPE)}")
    if args.scope:
        print(" ".join(glob for m in modules for glob in SCOPE[m]))
        return 0
    return report(args.run_dir, args.equivalent, modules)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # the reader went away (`| head`): no traceback
        sys.stderr.close()
        sys.exit(1)

"""Fault scripts for `ibot sim --fault AT:KIND[:ARG]`: the same faults tests call, on a timetable.

AT is seconds of wall time after the simulator starts. KIND is one of the names in FAULT_KINDS, e.g.
``30:drop``, ``60:lost``, ``65:restored:kept`` (1102) / ``65:restored:lost`` (1101), ``90:farm:2103``,
``100:competing``, ``120:reject:201``, ``130:inactive``, ``140:late_cancel``, ``150:delay_commissions:5``,
``160:restart:300`` (a restart window of 300 market seconds), ``170:restart:300:1`` (and roll
nextValidId back to 1); historical data: ``10:hist_timeout:3`` (the next 3 requests never answered),
``hist_no_data[:N]``, ``hist_165[:N]``, ``hist_no_permission[:SYMBOL]``, ``hist_permission[:SYMBOL]``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ibot.model.errors import ParameterError
from ibot.sim.faults import Faults

log = logging.getLogger("ibot.sim")


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(f"fault {what}: {text!r} is not a number") from None
    if math.isnan(value) or value < 0:
        raise ParameterError(f"fault {what}: {text!r} must be a number >= 0")
    return value


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ParameterError(f"fault {what}: {text!r} is not a whole number") from None


def _count(args: Sequence[str]) -> int:
    count = _int(args[0], "count") if args else 1
    if count < 1:
        raise ParameterError(f"fault count: {count} must be 1 or more")
    return count


def _drop(f: Faults, args: Sequence[str]) -> None:
    f.drop(_int(args[0], "drop client id") if args else None)


def _restored(f: Faults, args: Sequence[str]) -> None:
    mode = args[0] if args else "kept"
    if mode not in ("kept", "lost"):
        raise ParameterError(f"fault restored: {mode!r} must be 'kept' (1102) or 'lost' (1101)")
    f.connectivity_restored(data_kept=mode == "kept")


def _restart(f: Faults, args: Sequence[str]) -> None:
    seconds = _float(args[0], "restart seconds") if args else 300.0
    next_id = _int(args[1], "restart next valid id") if len(args) > 1 else None
    f.restart(seconds, next_valid_id=next_id)


FAULT_KINDS: dict[str, tuple[int, Callable[[Faults, Sequence[str]], None]]] = {
    # name: (max number of arguments, action)
    "drop": (1, _drop),
    "lost": (0, lambda f, a: f.connectivity_lost()),
    "restored": (1, _restored),
    "farm": (1, lambda f, a: f.farm(_int(a[0], "farm code") if a else 2103)),
    "competing": (1, lambda f, a: f.competing_session(_int(a[0], "competing client id") if a else None)),
    "competing_off": (0, lambda f, a: f.competing_session(None, on=False)),
    "reject": (1, lambda f, a: f.reject_next_order(_int(a[0], "reject code") if a else 201)),
    "inactive": (0, lambda f, a: f.inactivate_next_order()),
    "late_cancel": (0, lambda f, a: f.late_cancel_next()),
    "delay_commissions": (1, lambda f, a: f.delay_commissions(_float(a[0], "delay seconds") if a else None)),
    "release_commissions": (0, lambda f, a: f.release_commissions()),
    "restart": (2, _restart),
    # historical data: the next N requests never answered / with no data / preceded by a 165 message; the
    # permissions of one product's history (all without SYMBOL) taken away or given back
    "hist_timeout": (1, lambda f, a: f.history_unanswered(_count(a))),
    "hist_no_data": (1, lambda f, a: f.history_no_data(_count(a))),
    "hist_165": (1, lambda f, a: f.history_query_message(count=_count(a))),
    "hist_no_permission": (1, lambda f, a: f.history_permissions(a[0] if a else None)),
    "hist_permission": (1, lambda f, a: f.history_permissions(a[0] if a else None, granted=True)),
    # combo (BAG) orders refused with 201, or accepted again
    "refuse_combos": (0, lambda f, a: f.refuse_combos()),
    "accept_combos": (0, lambda f, a: f.refuse_combos(on=False)),
}


@dataclass(frozen=True, slots=True)
class ScheduledFault:
    at_s: float
    kind: str
    args: tuple[str, ...]

    def apply(self, faults: Faults) -> None:
        log.info("fault script: t+%gs %s %s", self.at_s, self.kind, " ".join(self.args))
        FAULT_KINDS[self.kind][1](faults, self.args)


def parse_fault(spec: str) -> ScheduledFault:
    """`AT:KIND[:ARG...]` into a ScheduledFault; errors name the spec and what is wrong with it."""
    parts = [p.strip() for p in spec.split(":")]
    if len(parts) < 2 or not parts[1]:
        raise ParameterError(f"fault {spec!r} must look like AT:KIND[:ARG], e.g. 30:drop")
    at = _float(parts[0], f"{spec!r} time")
    kind, args = parts[1].lower(), tuple(parts[2:])
    if kind not in FAULT_KINDS:
        known = ", ".join(sorted(FAULT_KINDS))
        raise ParameterError(f"fault {spec!r}: unknown kind {kind!r}; known: {known}")
    if len(args) > FAULT_KINDS[kind][0]:
        raise ParameterError(f"fault {spec!r}: {kind} takes at most {FAULT_KINDS[kind][0]} argument(s)")
    # Check argument types now, not when the timer fires.
    for i, arg in enumerate(args):
        if kind in ("farm", "reject", "drop", "competing") or (kind == "restart" and i == 1):
            _int(arg, f"{spec!r} argument")
        elif kind in ("hist_timeout", "hist_no_data", "hist_165"):
            _count((arg,))
        elif kind in ("delay_commissions", "restart"):
            _float(arg, f"{spec!r} argument")
        elif kind == "restored" and arg not in ("kept", "lost"):
            raise ParameterError(f"fault {spec!r}: {arg!r} must be 'kept' (1102) or 'lost' (1101)")
    return ScheduledFault(at, kind, args)


def schedule(faults: Faults, script: Sequence[ScheduledFault]) -> list[asyncio.TimerHandle]:
    """Arm every fault of `script` on the running loop; returns the timer handles (cancel to disarm)."""
    loop = asyncio.get_running_loop()
    return [loop.call_later(f.at_s, f.apply, faults) for f in script]

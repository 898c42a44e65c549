"""The search space comes from the strategy's declared parameters; `--param` narrows, picks or fixes them,
and every bad spec is one sentence naming the spec."""

from __future__ import annotations

import optuna
import pytest

from ibot.model.errors import ParameterError
from ibot.optimize.space import Dimension, SearchSpace, build_space
from ibot.strategies.ma_breakout import MaBreakout
from ibot.strategies.sma_reversal import SmaReversal

P = MaBreakout.params


def dims(space: SearchSpace) -> dict[str, Dimension]:
    return {d.name: d for d in space.dimensions}


def test_without_ranges_every_declared_parameter_is_searched_except_the_position_size() -> None:
    space = build_space("ma_breakout", P)
    d = dims(space)
    assert [x.name for x in space.dimensions] == [p.name for p in P]
    assert d["quantity"] == Dimension("quantity", "fixed", value=1)
    assert d["breakout_bars"] == Dimension("breakout_bars", "int", low=2, high=50, log=False)
    assert d["sma_period"].kind == "int" and d["sma_period"].log  # 2..500 spans 250x
    assert d["entry_filter"] == Dimension("entry_filter", "choice", choices=("breakout", "slope"))
    assert "quantity" not in space.searched and len(space.searched) == len(P) - 1


def test_ranges_pick_the_space_and_the_rest_keep_their_defaults_or_fixed_values() -> None:
    space = build_space(
        "ma_breakout",
        P,
        ["breakout_bars=5:10", "limit_offset_ticks=0:3", "entry_filter=slope", "sma_period=5|9|20"],
    )
    d = dims(space)
    assert space.searched == ["sma_period", "breakout_bars", "limit_offset_ticks"]
    assert d["breakout_bars"] == Dimension("breakout_bars", "int", low=5, high=10)
    assert d["sma_period"] == Dimension("sma_period", "choice", choices=(5, 9, 20))
    assert d["entry_filter"].value == "slope" and not d["entry_filter"].searched
    assert d["max_trades_per_day"].value == 12 and not d["max_trades_per_day"].searched
    assert d["breakout_bars"].describe() == "5 .. 10" and d["sma_period"].describe() == "5|9|20"


def test_the_space_round_trips_through_study_attrs_and_suggests_full_parameter_sets() -> None:
    space = build_space("ma_breakout", P, ["breakout_bars=5:10", "entry_filter=breakout|slope"])
    again = SearchSpace.from_dict(space.to_dict())
    assert again == space
    study = optuna.create_study()
    trial = study.ask()
    params = again.suggest(trial)
    assert set(params) == {p.name for p in P}
    assert 5 <= params["breakout_bars"] <= 10 and params["entry_filter"] in ("breakout", "slope")
    assert set(trial.params) == {"breakout_bars", "entry_filter"}  # Optuna records only the searched ones
    assert again.complete(trial.params) == params
    MaBreakout(**params)  # a valid parameter set for the strategy


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("nope=1:3", ["--param nope=1:3", "declares no parameter 'nope'", "breakout_bars"]),
        ("breakout_bars=1:10", ["--param breakout_bars=1:10", "below its minimum 2"]),
        ("breakout_bars=5:99", ["--param breakout_bars=5:99", "above its maximum 50"]),
        ("breakout_bars=9:5", ["--param breakout_bars=9:5", "low end 9 is above the high end 5"]),
        ("breakout_bars=a:5", ["--param breakout_bars=a:5", "not a valid int"]),
        ("entry_filter=a:b", ["--param entry_filter=a:b", "takes breakout|slope, not a range"]),
        ("entry_filter=breakout|zigzag", ["entry_filter", "'zigzag' is not one of breakout, slope"]),
        ("breakout_bars", ["--param 'breakout_bars' must look like name=low:high"]),
        ("=3", ["must look like name=low:high"]),
    ],
)
def test_a_bad_param_is_one_sentence_naming_it(spec: str, words: list[str]) -> None:
    with pytest.raises(ParameterError) as err:
        build_space("ma_breakout", P, [spec])
    message = str(err.value)
    assert "\n" not in message
    for w in words:
        assert w in message


def test_a_name_given_twice_and_a_space_with_nothing_to_search_are_refused() -> None:
    with pytest.raises(ParameterError, match=r"--param breakout_bars=6: breakout_bars is already given"):
        build_space("ma_breakout", P, ["breakout_bars=5:8", "breakout_bars=6"])
    with pytest.raises(ParameterError, match="nothing to search"):
        build_space("sma_reversal", SmaReversal.params, ["sma_period=9"])
    fixed = build_space("sma_reversal", SmaReversal.params, ["sma_period=9:9", "quantity=1:3"])
    assert dims(fixed)["sma_period"] == Dimension("sma_period", "fixed", value=9)
    assert fixed.searched == ["quantity"]  # named, the position size is searched like any other

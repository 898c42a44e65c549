"""IB settings: seed 000's client-id plan, seed 004's environment variables, validation that names the key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ibot.brokers.ib.config import (
    ClientIdOutOfRangeError,
    ClientIdPlan,
    ClientIdRange,
    ClientRole,
    IBSettings,
    RestartWindow,
    load_ib_settings,
)
from ibot.config import ConfigError
from ibot.model.market import datetime_to_ns


def test_defaults_follow_the_seed_client_id_plan() -> None:
    s = IBSettings()
    assert s.host == "127.0.0.1"
    expected = {
        ClientRole.ACCOUNT_SUMMARY: (10, 10),
        ClientRole.ORDER_MANAGER: (1000, 1999),
        ClientRole.DATA_REALTIME: (20, 20),
        ClientRole.DATA_HISTORICAL: (21, 21),
        ClientRole.STRATEGY: (50, 70),
        ClientRole.TRADINGVIEW: (8000, 8999),
        ClientRole.TESTS: (9000, 9999),
    }
    assert {role: (r.first, r.last) for role, r in s.client_ids.items()} == expected
    assert s.client_id_for(ClientRole.STRATEGY) == 50


def test_an_explicit_client_id_must_be_inside_its_roles_range() -> None:
    assert IBSettings(role=ClientRole.STRATEGY, client_id=55).client_id_for(ClientRole.STRATEGY) == 55
    with pytest.raises(ValueError, match=r"client id 20 is outside the strategy range 50\.\.70"):
        IBSettings(role=ClientRole.STRATEGY, client_id=20)
    with pytest.raises(ClientIdOutOfRangeError, match=r"order_manager range 1000\.\.1999"):
        IBSettings().client_ids.check(ClientRole.ORDER_MANAGER, 999)


def test_overlapping_or_reversed_ranges_are_refused() -> None:
    with pytest.raises(ValueError, match="data_realtime and data_historical overlap"):
        ClientIdPlan.model_validate({"data_realtime": [20, 55]})
    with pytest.raises(ValueError, match="ends before it starts"):
        ClientIdRange(first=10, last=5)
    plan = ClientIdPlan.model_validate({"tests": 9500, "strategy": {"first": 60, "last": 62}})
    assert (plan.tests.first, plan.tests.last, plan.strategy.last) == (9500, 9500, 62)


def test_next_id_wraps_inside_the_range() -> None:
    r = ClientIdRange.of(50, 52)
    assert [r.after(50), r.after(51), r.after(52)] == [51, 52, 50]
    assert 52 in r and 53 not in r and len(r) == 3


def test_toml_then_seed_004_environment_variables(tmp_path: Path) -> None:
    toml = tmp_path / "ibot.toml"
    toml.write_text(
        '[ib]\nhost = "10.0.0.5"\nport = 4002\nrole = "strategy"\nclient_ids.strategy = [60, 65]\n'
    )
    from_file = load_ib_settings(toml, env={})
    assert (from_file.host, from_file.port, from_file.client_id_for(ClientRole.STRATEGY)) == (
        "10.0.0.5",
        4002,
        60,
    )
    env = {
        "TWS_API_ADDR": "gw.local",
        "TWS_API_PORT": "4001",
        "TWS_API_CLIENTID": "63",
        "TWS_GATEWAY_NAME": "g1",
    }
    s = load_ib_settings(toml, env=env)
    assert (s.host, s.port, s.client_id, s.gateway_name) == ("gw.local", 4001, 63, "g1")


def test_bad_values_name_the_variable_or_key(tmp_path: Path) -> None:
    toml = tmp_path / "ibot.toml"
    toml.write_text("[ib]\nport = 70000\n")
    with pytest.raises(ConfigError, match=r"\[ib\]\.port"):
        load_ib_settings(toml, env={})
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="TWS_API_PORT"):
        load_ib_settings(empty, env={"TWS_API_PORT": "seven"})
    with pytest.raises(ConfigError, match=r"TWS_API_CLIENTID.*outside the order_manager range"):
        load_ib_settings(empty, env={"TWS_API_CLIENTID": "7"})
    with pytest.raises(ConfigError, match=r"restart_window\.tz"):
        load_ib_settings(empty, env={}, overrides={"restart_window": {"tz": "Mars/Base"}})


def test_the_account_code_is_masked_in_repr_and_logs() -> None:
    s = IBSettings(account="DU1234567")
    assert "DU1234567" not in repr(s) and "DU1234567" not in str(s)
    assert "DU1234567" not in s.describe() and s.masked_account == "DU*****67"


def test_restart_window_spans_midnight_in_new_york() -> None:
    w = RestartWindow(start="23:45", minutes=30, tz="America/New_York")  # type: ignore[arg-type]
    inside = datetime_to_ns(datetime(2025, 3, 6, 5, 0, tzinfo=UTC))  # 00:00 EST
    end = w.end_if_inside(inside)
    assert end == datetime_to_ns(datetime(2025, 3, 6, 5, 15, tzinfo=UTC))
    assert not w.contains(datetime_to_ns(datetime(2025, 3, 6, 5, 15, tzinfo=UTC)))
    assert not w.contains(datetime_to_ns(datetime(2025, 3, 6, 4, 44, tzinfo=UTC)))
    assert not RestartWindow(enabled=False).contains(inside)

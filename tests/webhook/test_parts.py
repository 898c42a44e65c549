"""The door's pure parts: TradingView tickers through the roll calendar, the secret kept out of every text,
the idempotency key, the settings' refusals."""

from __future__ import annotations

from datetime import date

import pytest

from ibot.config import ConfigError
from ibot.webhook.alerts import REDACTED, redact_secret
from ibot.webhook.handler import alert_key
from ibot.webhook.schema import TradingViewAlert, parse_alert
from ibot.webhook.settings import TRADINGVIEW_ADDRESSES, load_webhook_settings
from ibot.webhook.tickers import UnknownTickerError, instrument_for_ticker

ASOF = date(2025, 3, 5)  # MESH5 is the front month (ibot rolls it on 2025-03-17)


@pytest.mark.parametrize(
    ("ticker", "key"),
    [
        ("MES1!", "MESH5"),
        ("MES2!", "MESM5"),
        ("mes1!", "MESH5"),
        ("CME_MINI:MES1!", "MESH5"),
        ("MESZ2026", "MESZ6"),
        ("MESZ6", "MESZ6"),
        ("M2K1!", "M2KH5"),
        ("AAPL", "AAPL"),
        ("NASDAQ:AAPL", "AAPL"),
    ],
)
def test_tradingview_tickers_name_the_roll_calendars_months(ticker: str, key: str) -> None:
    assert instrument_for_ticker(ticker, ASOF).key == key


def test_after_the_roll_date_1_is_the_next_month() -> None:
    assert instrument_for_ticker("MES1!", date(2025, 3, 17)).key == "MESM5"


@pytest.mark.parametrize("ticker", ["FOO", "FOO1!", "MESZ2020", ":MES", "MES13!", "", "CME MINI:MES1!"])
def test_unknown_tickers_are_refused_naming_them(ticker: str) -> None:
    with pytest.raises(UnknownTickerError) as err:
        instrument_for_ticker(ticker, ASOF)
    assert ticker.strip()[:10] in str(err.value)


def test_the_secret_is_redacted_from_json_text_and_escaped_keys() -> None:
    secret = "s3cret-value-123"
    assert secret not in redact_secret('{"secret": "s3cret-value-123", "a": 1}', secret)
    assert REDACTED in redact_secret('{"\\u0073ecret": "guess-guess-guess"}', secret)
    broken = '{"secret": "guess-guess-guess"\n "ticker": "MES1!"'  # not JSON: redacted by pattern
    assert "guess-guess-guess" not in redact_secret(broken, secret)
    assert secret not in redact_secret(f"reason {secret} here", secret)


def test_the_key_is_the_id_else_the_values_and_time_without_the_secret() -> None:
    def key(**fields: object) -> str:
        body = {"ticker": "MES1!", "order": "MKT", "action": "buy", "quantity": 1, **fields}
        return alert_key(body, parse_alert(TradingViewAlert.model_validate(body)))

    assert key(id="a", secret="x" * 12) == key(id="a", quantity=2)
    assert key(timenow="2025-01-01T00:00:00Z") != key(timenow="2025-01-01T00:00:01Z")
    assert key(secret="x" * 12) == key(secret="y" * 12)


def test_settings_never_show_the_secret_and_refuse_a_short_one() -> None:
    settings = load_webhook_settings(
        env={"IBOT_WEBHOOK_SECRET": "long-enough-secret"}, overrides={"allow": "tradingview"}
    )
    assert "long-enough-secret" not in repr(settings) and "long-enough-secret" not in str(settings)
    assert settings.allow == TRADINGVIEW_ADDRESSES
    with pytest.raises(ConfigError, match="at least 12") as err:
        load_webhook_settings(env={"IBOT_WEBHOOK_SECRET": "short1"})
    assert "short1" not in str(err.value)
    with pytest.raises(ConfigError, match="no secret"):
        load_webhook_settings(env={}).require_secret()

"""The TradingView webhook door (seed 000): alerts in through HTTP, orders out through the node's intake."""

from __future__ import annotations

from ibot.webhook.alerts import AlertRecord, AlertStore, AlertVerdict
from ibot.webhook.app import ALERT_PATH, WebhookDoor, WebhookError, create_app
from ibot.webhook.settings import TRADINGVIEW_ADDRESSES, WebhookSettings, load_webhook_settings

__all__ = [
    "ALERT_PATH",
    "TRADINGVIEW_ADDRESSES",
    "AlertRecord",
    "AlertStore",
    "AlertVerdict",
    "WebhookDoor",
    "WebhookError",
    "WebhookSettings",
    "create_app",
    "load_webhook_settings",
]

"""alerts: every request to the TradingView webhook, accepted or not, committed before it is answered.

A row says where the alert came from, when (wall clock and market time), its body with the secret redacted,
its idempotency key, what the door answered (HTTP status, verdict, the field or limit named) and the client
order id it made. `state` is "pending" until the order intake has processed it: a restart processes what a
crash left pending, once (the client order id comes from the key and the OMS never sends one twice).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_ts", sa.BigInteger(), nullable=False),
        sa.Column("source_address", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("ticket", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_idempotency_key", "alerts", ["idempotency_key"])
    op.create_index("ix_alerts_verdict", "alerts", ["verdict"])
    op.create_index("ix_alerts_client_order_id", "alerts", ["client_order_id"])
    op.create_index("ix_alerts_state", "alerts", ["state"])


def downgrade() -> None:
    for column in ("state", "client_order_id", "verdict", "idempotency_key"):
        op.drop_index(f"ix_alerts_{column}", table_name="alerts")
    op.drop_table("alerts")

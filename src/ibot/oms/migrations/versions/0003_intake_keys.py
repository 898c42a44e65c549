"""intake_keys: the idempotency keys of the order intake (ibot.oms.intake), one row per key.

Every order that does not come from a strategy (webhook, CLI, gateway, REPL) carries an idempotency key. The
intake claims it here, atomically on the primary key, before the order is recorded and sent: a retried or
replayed ticket within the window (default 10 minutes of market time) places nothing twice, across restarts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "intake_keys",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("claimed_ts", sa.BigInteger(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_intake_keys"),
    )


def downgrade() -> None:
    op.drop_table("intake_keys")

"""fill_conflicts: executions whose exec id was already recorded with different content, kept aside.

An execution id names one execution forever (IB's never repeat). One that comes again with another order,
side, quantity, price or time is an integrity error: the records keep the first in `fills` and this one here,
for a person to inspect (`ibot orders`), never merged.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _money() -> sa.types.TypeEngine[Decimal]:
    """Exact decimal: NUMERIC(24, 10), or text on SQLite (as ibot.oms.records.ExactDecimal stores it)."""
    return sa.Numeric(24, 10).with_variant(sa.String(48), "sqlite")


def upgrade() -> None:
    op.create_table(
        "fill_conflicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("exec_id", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("ib_order_id", sa.BigInteger(), nullable=True),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("price", _money(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("commission", _money(), nullable=True),
        sa.Column("realized_pnl", _money(), nullable=True),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("differences", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fill_conflicts"),
    )
    op.create_index("ix_fill_conflicts_exec_id", "fill_conflicts", ["exec_id"])


def downgrade() -> None:
    op.drop_index("ix_fill_conflicts_exec_id", table_name="fill_conflicts")
    op.drop_table("fill_conflicts")

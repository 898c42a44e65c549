"""Initial schema: orders, order_events, fills, oms_counters.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _money() -> sa.types.TypeEngine[Decimal]:
    """Exact decimal: NUMERIC(24, 10), or text on SQLite (as ibot.oms.records.ExactDecimal stores it)."""
    return sa.Numeric(24, 10).with_variant(sa.String(48), "sqlite")


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("ib_order_id", sa.BigInteger(), nullable=True),
        sa.Column("perm_id", sa.BigInteger(), nullable=True),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("local_symbol", sa.String(32), nullable=False),
        sa.Column("sec_type", sa.String(8), nullable=False),
        sa.Column("exchange", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("con_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(4), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("order_type", sa.String(8), nullable=False),
        sa.Column("limit_price", _money(), nullable=True),
        sa.Column("stop_price", _money(), nullable=True),
        sa.Column("tif", sa.String(4), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("parent_client_order_id", sa.String(64), nullable=False),
        sa.Column("oca_group", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("filled", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("avg_fill_price", _money(), nullable=True),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.Column("updated_ts", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("last_message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("client_order_id", name="uq_orders_client_order_id"),
    )
    op.create_index("ix_orders_ib_order_id", "orders", ["ib_order_id"])
    op.create_index("ix_orders_perm_id", "orders", ["perm_id"])
    op.create_index("ix_orders_symbol", "orders", ["symbol"])
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_index("ix_orders_created_ts", "orders", ["created_ts"])

    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", _when(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("filled", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("avg_fill_price", _money(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_order_id"],
            ["orders.client_order_id"],
            name="fk_order_events_client_order_id_orders",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_order_events"),
    )
    op.create_index("ix_order_events_client_order_id", "order_events", ["client_order_id"])

    op.create_table(
        "fills",
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
        sa.Column("recorded_at", _when(), nullable=False),
        sa.Column("commission", _money(), nullable=True),
        sa.Column("commission_final", sa.Boolean(), nullable=False),
        sa.Column("realized_pnl", _money(), nullable=True),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_order_id"],
            ["orders.client_order_id"],
            name="fk_fills_client_order_id_orders",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_fills"),
        sa.UniqueConstraint("exec_id", name="uq_fills_exec_id"),
    )
    op.create_index("ix_fills_client_order_id", "fills", ["client_order_id"])
    op.create_index("ix_fills_ts", "fills", ["ts"])

    counters = op.create_table(
        "oms_counters",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_oms_counters"),
    )
    # The highest broker order id ever used: the row exists from the start so it can be locked for update.
    op.bulk_insert(counters, [{"name": "last_order_id", "value": 0}])


def downgrade() -> None:
    op.drop_table("oms_counters")
    op.drop_index("ix_fills_ts", table_name="fills")
    op.drop_index("ix_fills_client_order_id", table_name="fills")
    op.drop_table("fills")
    op.drop_index("ix_order_events_client_order_id", table_name="order_events")
    op.drop_table("order_events")
    for name in ("created_ts", "status", "symbol", "perm_id", "ib_order_id"):
        op.drop_index(f"ix_orders_{name}", table_name="orders")
    op.drop_table("orders")

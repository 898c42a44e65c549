"""rolls: one row per position roll (the decision its orders share), written before its first order.

Its orders' client ids start with the roll id; `state` says how far the roll got (planned, combo, legs,
moving, done, failed), `moved` the working orders of the old month to place again on the new one. A restart
finishes every roll not done (ibot.engine.roll).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rolls",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("roll_id", sa.String(40), nullable=False),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("product", sa.String(16), nullable=False),
        sa.Column("from_key", sa.String(32), nullable=False),
        sa.Column("to_key", sa.String(32), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("moved", sa.Text(), nullable=False),
        sa.Column("spread", sa.Numeric(24, 10).with_variant(sa.String(48), "sqlite"), nullable=True),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.Column("updated_ts", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rolls")),
        sa.UniqueConstraint("roll_id", name=op.f("uq_rolls_roll_id")),
    )
    op.create_index(op.f("ix_rolls_state"), "rolls", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_rolls_state"), table_name="rolls")
    op.drop_table("rolls")

"""demands.tier_mask (ListDemands: any line of a tier) and the list order index

Revision ID: 0002
Revises: 0001
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("demands") as batch:
        batch.add_column(sa.Column("tier_mask", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_demands_order", "demands", ["delivery_day", "top_tier", "submitted_at", "id"])
    conn = op.get_bind()
    for row in conn.execute(sa.text("SELECT id, data FROM demands")).all():
        data = row.data if isinstance(row.data, dict) else json.loads(row.data)
        mask = sum({1 << int(line["tier"]) for line in data["lines"]})
        conn.execute(sa.text("UPDATE demands SET tier_mask = :m WHERE id = :i"), {"m": mask, "i": row.id})


def downgrade() -> None:
    op.drop_index("ix_demands_order", table_name="demands")
    with op.batch_alter_table("demands") as batch:
        batch.drop_column("tier_mask")

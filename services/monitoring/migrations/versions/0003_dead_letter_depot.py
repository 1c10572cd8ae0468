"""ingest dead letters: the depot they name, for ListIngestDeadLetters' filter

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 23:30:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('ingest_rejects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('depot', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_ingest_rejects_depot', ['depot', 'received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ingest_rejects', schema=None) as batch_op:
        batch_op.drop_index('ix_ingest_rejects_depot')
        batch_op.drop_column('depot')

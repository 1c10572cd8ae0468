"""keyed ledger chain: a hash scheme per ledger line, the last unkeyed seq on the head

Lines already written keep their plain SHA-256 hashes (scheme 'sha256'); every line written from
now on is signed with HMAC-SHA256 under SUPPLY_LEDGER_KEY ('hmac-sha256'). ledger_head records
the last seq that may be unkeyed, so the verifier refuses an unkeyed line after it (ADR 0007).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 23:30:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('ledger') as batch_op:
        batch_op.add_column(sa.Column('scheme', sa.String(length=20), nullable=True))
    op.execute("UPDATE ledger SET scheme = 'sha256'")
    with op.batch_alter_table('ledger') as batch_op:
        batch_op.alter_column('scheme', existing_type=sa.String(length=20), nullable=False)
    with op.batch_alter_table('ledger_head') as batch_op:
        batch_op.add_column(sa.Column('unkeyed_through', sa.BigInteger(), nullable=False,
                                      server_default='0'))
    op.execute("UPDATE ledger_head SET unkeyed_through = seq")


def downgrade() -> None:
    """Keyed lines then no longer verify under 0001's code: downgrade only a ledger with none."""
    with op.batch_alter_table('ledger_head') as batch_op:
        batch_op.drop_column('unkeyed_through')
    with op.batch_alter_table('ledger') as batch_op:
        batch_op.drop_column('scheme')

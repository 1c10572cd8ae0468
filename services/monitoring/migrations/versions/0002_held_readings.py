"""held readings of unregistered zones; zones by zone id

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('held_readings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('zone_key', sa.String(length=140), nullable=False),
    sa.Column('sensor_key', sa.String(length=200), nullable=False),
    sa.Column('depot', sa.String(length=64), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('sensor', sa.String(length=64), nullable=False),
    sa.Column('gateway', sa.String(length=64), nullable=True),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('temp_c', sa.Float(), nullable=False),
    sa.Column('rh', sa.Float(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('held_readings', schema=None) as batch_op:
        batch_op.create_index('ix_held_readings_zone', ['zone_key', 'ts'], unique=False)
        batch_op.create_index('ix_held_readings_sensor', ['sensor_key', 'ts'], unique=False)
    with op.batch_alter_table('zones', schema=None) as batch_op:
        batch_op.create_index('ix_zones_zone', ['zone'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('zones', schema=None) as batch_op:
        batch_op.drop_index('ix_zones_zone')
    with op.batch_alter_table('held_readings', schema=None) as batch_op:
        batch_op.drop_index('ix_held_readings_sensor')
        batch_op.drop_index('ix_held_readings_zone')
    op.drop_table('held_readings')

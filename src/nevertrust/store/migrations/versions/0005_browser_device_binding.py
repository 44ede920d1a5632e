"""Browsers bound to devices: a passkey may be a device's platform credential, and a
session opened with it carries that device; the bind ceremony's challenge carries the
device it was started for; a device remembers its newest bind proof (replay guard).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_DEVICE_COLUMN = ("webauthn_credentials", "sessions", "auth_challenges")


def upgrade() -> None:
    for table in _DEVICE_COLUMN:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("device_id", sa.String(length=40), nullable=True))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("last_bind_iat", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("last_bind_iat")
    for table in reversed(_DEVICE_COLUMN):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("device_id")

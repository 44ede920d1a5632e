"""Device trust: devices, enrolment tokens, compliance policies, the device CA; access rules
that also require a compliant device.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_rules") as batch:
        batch.add_column(
            sa.Column(
                "require_compliant_device", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=True),
        sa.Column("ownership", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.String(length=300), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("certificate_serial", sa.String(length=40), nullable=False),
        sa.Column("certificate_expires_at", sa.DateTime(), nullable=False),
        sa.Column("posture", sa.Text(), nullable=True),
        sa.Column("last_report_at", sa.DateTime(), nullable=True),
        sa.Column("last_report_iat", sa.BigInteger(), nullable=True),
        sa.Column("last_report_jti", sa.String(length=200), nullable=True),
        sa.Column("enrolled_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_devices_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
    )
    op.create_index("ix_devices_user_id", "devices", ["user_id"], unique=False)
    op.create_table(
        "device_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_device_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_device_tokens")),
    )
    op.create_table(
        "device_policies",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("platform", name=op.f("pk_device_policies")),
    )
    op.create_table(
        "device_authority",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("certificate", sa.Text(), nullable=False),
        sa.Column("private_key_enc", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_authority")),
    )


def downgrade() -> None:
    op.drop_table("device_authority")
    op.drop_table("device_policies")
    op.drop_table("device_tokens")
    op.drop_index("ix_devices_user_id", table_name="devices")
    op.drop_table("devices")
    with op.batch_alter_table("access_rules") as batch:
        batch.drop_column("require_compliant_device")

"""provenance columns: images.file_name, loras.metrics, jobs.result

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("file_name", sa.String(length=512), nullable=True))
    with op.batch_alter_table("loras") as batch:
        batch.add_column(sa.Column("metrics", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("result", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("result")
    with op.batch_alter_table("loras") as batch:
        batch.drop_column("metrics")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("file_name")

"""index dataset_items by (character_id, image_id, removed_in)

A new dataset version looks up the live rows of the images it changes; without this index that
lookup scanned every live item of the character (O(dataset size) instead of O(changed items)).
benchmarks/registry_scale.py measures it.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_dataset_items_image", "dataset_items", ["character_id", "image_id", "removed_in"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_dataset_items_image", table_name="dataset_items")

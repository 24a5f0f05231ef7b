"""Tags as columns, for filters: title, artist, album, genre (text) and track (number), read
from the ``tags`` JSON that earlier releases stored (duration, rate and channels were columns
already). Files indexed before tracks were read get theirs when they are indexed again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import re
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_TEXT = ("title", "artist", "album", "genre")


def _track(value) -> int | None:
    m = re.match(r"\s*(\d+)", str(value)) if value is not None else None
    return int(m.group(1)) if m and int(m.group(1)) < 2**31 else None


def upgrade() -> None:
    with op.batch_alter_table("files") as batch:
        for name in _TEXT:
            batch.add_column(sa.Column(name, sa.String(), nullable=True))
        batch.add_column(sa.Column("track", sa.Integer(), nullable=True))
        batch.create_index("ix_files_artist", ["artist"], unique=False)
        batch.create_index("ix_files_genre", ["genre"], unique=False)
    files = sa.table("files", sa.column("id", sa.Integer), sa.column("tags", sa.JSON), *(sa.column(n, sa.String) for n in _TEXT),
                     sa.column("track", sa.Integer))
    conn = op.get_bind()
    rows = []
    for file_id, tags in conn.execute(sa.select(files.c.id, files.c.tags)):
        tags = tags or {}
        if any(tags.get(n) for n in (*_TEXT, "track")):
            rows.append({"_id": file_id, **{n: tags.get(n) or None for n in _TEXT}, "track": _track(tags.get("track"))})
    if rows:
        values = {n: sa.bindparam(n) for n in (*_TEXT, "track")}
        conn.execute(sa.update(files).where(files.c.id == sa.bindparam("_id")).values(**values), rows)


def downgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.drop_index("ix_files_genre")
        batch.drop_index("ix_files_artist")
        for name in ("track", *reversed(_TEXT)):
            batch.drop_column(name)

"""Alembic environment: runs on the connection audio2vec hands over (``config.attributes``)."""

from alembic import context
from sqlalchemy import create_engine

from search_engine.catalog import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # the alembic command line: -x url=...
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    connection = create_engine(url).connect()

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

"""Alembic environment: hotwash passes its own connection in ``config.attributes``."""

from alembic import context

from hotwash.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - hotwash always passes one
    raise RuntimeError("hotwash migrations run through hotwash.store.migrate(), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

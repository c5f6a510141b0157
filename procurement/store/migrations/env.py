"""Alembic environment: migrations run on the connection the app hands over (async engine)."""

from alembic import context

from procurement.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("Run migrations through the app (Store.migrate), which passes a connection.")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

"""Alembic environment of the demo: online and offline (``--sql``) migrations."""

from __future__ import annotations

from logging.config import fileConfig

import alembic_versioning  # noqa: F401  (registers op.update_end_transaction_ids, op.update_mod_flags)
from alembic import context
from sqlalchemy import engine_from_config, pool

import models

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name)

# The app's metadata, version and transaction tables included: offline, the operations
# describe the version tables from it since there is no database to reflect.
target_metadata = models.Base.metadata


def run_migrations_offline() -> None:
    """Emit the migrations as a SQL script, values written inline."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a connection to ``sqlalchemy.url``."""
    section = config.get_section(config.config_ini_section, {})
    engine = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

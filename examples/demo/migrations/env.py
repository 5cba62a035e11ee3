"""Alembic environment of the demo: online and offline (``--sql``) migrations, and autogenerate.

``alembic revision --autogenerate`` and ``alembic check`` compare the models with the database
as usual and, through the ``alembic_versioning`` plugin, the version tables with the live ones:
drift becomes ``versioning.backfill_versions(...)``, ``versioning.update_end_transaction_ids(...)``,
``versioning.update_mod_flags(...)`` (and, opted in, ``versioning.vacuum_versions(...)``) in the
migration, with ``from alembic_versioning import op as versioning`` (the typed spelling: the
``render`` option of ``[alembic_versioning]`` in alembic.ini switches to ``op.backfill_versions``).
"""

from __future__ import annotations

from logging.config import fileConfig

import models
from alembic import context
from sqlalchemy import engine_from_config, pool

import alembic_versioning  # noqa: F401  (registers op.update_end_transaction_ids & co.)

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name)

# The app's metadata, version and transaction tables included: offline, the operations
# describe the version tables from it since there is no database to reflect; autogenerate
# finds the versioned pairs in it through Continuum's versioning manager.
target_metadata = models.Base.metadata

#: Alembic's own comparators plus the version-table drift checks of alembic_versioning.
AUTOGENERATE_PLUGINS = ["alembic.autogenerate.*", "alembic_versioning.*"]

#: The drift checks' options, also read from an [alembic_versioning] section of alembic.ini; a key
#: given here wins over that section, even at its default, so only what env.py means to decide goes
#: here. E.g. {"vacuum": True} would also look for futile versions, whose repair deletes history.
VERSIONING_OPTIONS: dict[str, object] = {}


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
    """Run the migrations, or compare the models and histories, on a connection to ``sqlalchemy.url``."""
    section = config.get_section(config.config_ini_section, {})
    engine = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            autogenerate_plugins=AUTOGENERATE_PLUGINS,
            alembic_versioning=VERSIONING_OPTIONS,
            compare_type=True,
            compare_server_default=True,
            # SQLite alters tables by copying them: generated schema changes go in batch blocks.
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

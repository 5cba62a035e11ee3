"""Autogenerate support: find version-table drift and write the repairs into migrations.

- :mod:`.compare`: the one comparator, registered by :func:`alembic_versioning.plugin.setup`;
- :mod:`.targets` and :mod:`.discovery`: which versioned tables it compares;
- :mod:`.drift`: the checks in the database; :mod:`.predicted`: the repairs a migration's schema
  changes imply; :mod:`.unversioned`: tables no longer versioned;
- :mod:`.hierarchies`: one repair per joined-table inheritance hierarchy;
- :mod:`.leave_out`: repairs that could only fail, left out;
- :mod:`.factory`: the ops as autogenerate emits them; :mod:`.render`: their Python in scripts;
- :mod:`.options`: the plugin's settings.
"""

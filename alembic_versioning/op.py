"""The operations as typed functions, for migration scripts that type checkers check.

Alembic adds ``op.backfill_versions`` & co. to ``alembic.op`` at run time, so mypy and pyright
see no such attributes (and check none of their arguments). This module holds the same
operations as plain functions, with the full signature of each::

    import sqlalchemy as sa
    from alembic import op
    from alembic_versioning import op as versioning

    def upgrade() -> None:
        op.add_column("article_version", sa.Column("score_mod", sa.Boolean(), nullable=True))
        versioning.backfill_versions("article", primary_key=["id"])

Each function calls the operation on the current migration's ``op`` (``op.backfill_versions(...)``),
so it runs exactly as the ``op.`` spelling does, online and offline, and fails the same way
outside a migration. Autogenerate writes this spelling by default (the ``render`` option).

The signatures are not written here: each function is derived from the classmethod that
registers the operation (``BackfillVersionsOp.backfill_versions`` and so on, in
``alembic_versioning.operations``), minus its ``operations`` argument, for type checkers
(a ``ParamSpec``) and at run time (``inspect.signature``, ``help()``) alike. A parameter added
to an operation's classmethod is a parameter of its function here, with nothing else to edit.
Import it aliased (``as versioning``): it would otherwise hide Alembic's own ``op``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Concatenate, ParamSpec

from alembic import op as _alembic_op
from alembic.operations import Operations

from .model import Naming
from .operations import (
    BackfillVersionsOp,
    NamingOptions,
    UpdateEndTransactionIdsOp,
    UpdateModFlagsOp,
    VacuumVersionsOp,
)

__all__ = ["backfill_versions", "update_end_transaction_ids", "update_mod_flags", "vacuum_versions"]

_P = ParamSpec("_P")


def signature(method: Callable[..., object]) -> inspect.Signature:
    """Return the signature of ``method`` (an op's registering classmethod) without ``operations``.

    Its ``**naming`` is spelled out as the keyword-only naming options (default: Continuum's), as
    type checkers read ``**naming: Unpack[NamingOptions]``."""
    parameters = list(inspect.signature(method).parameters.values())[1:]  # cls is bound: drop operations
    spelled = []
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            spelled += [
                inspect.Parameter(
                    name, inspect.Parameter.KEYWORD_ONLY, default=getattr(Naming(), name), annotation="str"
                )
                for name in NamingOptions.__annotations__
            ]
        else:
            spelled.append(parameter)
    return inspect.Signature(spelled, return_annotation="None")


def _on_current_op(method: Callable[Concatenate[Operations, _P], None]) -> Callable[_P, None]:
    """Return the function that calls ``method``'s operation on the current migration's ``op``.

    It has ``method``'s parameters minus ``operations``. A ``ParamSpec`` carries them: for type
    checkers the function takes exactly what the classmethod takes."""
    name = method.__name__

    def operation(*args: _P.args, **kwargs: _P.kwargs) -> None:
        getattr(_alembic_op, name)(*args, **kwargs)

    operation.__name__ = operation.__qualname__ = name
    operation.__module__ = __name__
    # register_operation moved the classmethod's docstring to the Operations method it made
    operation.__doc__ = getattr(Operations, name).__doc__
    operation.__signature__ = signature(method)  # type: ignore[attr-defined]
    return operation


backfill_versions = _on_current_op(BackfillVersionsOp.backfill_versions)
update_end_transaction_ids = _on_current_op(UpdateEndTransactionIdsOp.update_end_transaction_ids)
update_mod_flags = _on_current_op(UpdateModFlagsOp.update_mod_flags)
vacuum_versions = _on_current_op(VacuumVersionsOp.vacuum_versions)

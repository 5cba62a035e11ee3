"""Who and what a generated backfill records: the ``transaction`` and ``meta`` options, values read
from the environment at upgrade time, and the default ``comment`` naming the revision.

Values are rendered as Python the generated script evaluates when it runs: a value given as
``{"env": "DEPLOY_USER"}`` (optionally with ``"default"``) as ``os.environ.get('DEPLOY_USER')``, the
comment as ``'alembic revision ' + revision`` (the module variable every revision file defines).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from alembic.util import CommandError

from ..catalog import metadata_table
from ..operations import BackfillVersionsOp, LeftOutOp, Repair, RepairOnDowngradeOp
from ..record import META_TABLE

#: The values an attribution option may hold, besides ``{"env": ...}``.
SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class FromEnvironment:
    """A value the generated script reads from the environment variable ``name`` at upgrade time
    (``default`` where it is not set)."""

    name: str
    default: Any = None

    def __repr__(self) -> str:
        default = "" if self.default is None else f", {self.default!r}"
        return f"os.environ.get({self.name!r}{default})"


class RevisionComment:
    """The default ``comment``: ``alembic revision <id>``, the id read from the revision file's
    ``revision`` variable when the script runs (the renderer does not know it)."""

    def __repr__(self) -> str:
        return "'alembic revision ' + revision"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RevisionComment)

    def __hash__(self) -> int:
        return hash(RevisionComment)


def attribution_values(option: str, value: Any) -> dict[str, Any]:
    """Return the ``transaction`` or ``meta`` option (``option``), checked.

    It is a mapping of names to scalars or ``{"env": NAME, "default": scalar}``; in the ini file,
    that mapping as JSON."""
    example = f'{option} = {{"deployed_by": {{"env": "DEPLOY_USER"}}}}'
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise CommandError(
                f"alembic_versioning option {option!r}: {value!r} is not JSON; write a JSON object, e.g. {example}."
            ) from None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and k for k in value):
        raise CommandError(f"alembic_versioning option {option!r} takes a mapping of names, e.g. {example}.")
    if option == "transaction" and "id" in value:
        raise CommandError("alembic_versioning option 'transaction' cannot set 'id': it comes from the database.")
    return {key: _value(option, key, v, example) for key, v in value.items()}


def _value(option: str, key: str, value: Any, example: str) -> Any:
    if isinstance(value, Mapping):
        name, default = value.get("env"), value.get("default")
        if set(value) - {"env", "default"} or not isinstance(name, str) or not name or not isinstance(default, SCALARS):
            raise CommandError(
                f"alembic_versioning option {option!r}, {key!r}: {dict(value)!r} is no environment lookup; "
                f'write {{"env": "NAME"}} or {{"env": "NAME", "default": "..."}}, e.g. {example}.'
            )
        return FromEnvironment(name, default)
    if not isinstance(value, SCALARS):
        raise CommandError(
            f"alembic_versioning option {option!r}, {key!r}: {value!r} is neither a string, a number, a boolean "
            f'nor {{"env": "NAME"}}, e.g. {example}.'
        )
    return value


def uses_environment(op: BackfillVersionsOp) -> bool:
    """Whether ``op``'s rendered call reads the environment (its script needs ``import os``)."""
    return any(isinstance(v, FromEnvironment) for v in (*op.transaction.values(), *op.meta.values()))


def attribute(
    ops: Iterable[Repair | RepairOnDowngradeOp],
    transaction: Mapping[str, Any],
    meta: Mapping[str, Any],
    metadata: Any,
    missing: set[tuple[str | None, str]],
) -> None:
    """Give each backfill among ``ops`` the ``transaction`` values and the ``meta`` keys.

    A backfill gets the ``meta`` keys (after the default comment naming the revision) only where
    its transaction table has a ``transaction_meta`` table: in the target ``metadata``, and not
    among the tables ``missing`` where the op runs."""
    for found in ops:
        op = found.repair if isinstance(found, (LeftOutOp, RepairOnDowngradeOp)) else found
        if not isinstance(op, BackfillVersionsOp):
            continue
        op.transaction = {**transaction, **op.transaction}
        schema, _ = op.naming.transaction_location(op.schema)
        if metadata_table(metadata, META_TABLE, schema) is not None and (schema, META_TABLE) not in missing:
            op.meta = {"comment": RevisionComment(), **meta, **op.meta}

"""Renderers: the operations as Python in generated migration scripts."""

from __future__ import annotations

import textwrap
from typing import Any

from alembic.autogenerate.render import renderers

from ..comments import one_line
from ..operations import (
    BackfillVersionsOp,
    LeftOutOp,
    RepairOnDowngradeOp,
    UpdateEndTransactionIdsOp,
    UpdateModFlagsOp,
    VacuumVersionsOp,
    VersionedTableOp,
)
from .attribution import uses_environment
from .options import RenderMode, options_for

#: The import of the ``op.`` spellings (``render = "op"`` or ``"op-type-ignore"``).
IMPORT = "import alembic_versioning  # noqa: F401  (registers op.backfill_versions & co.)"
#: The import of the typed spelling (``render = "typed"``, the default): the module's name in scripts.
TYPED_IMPORT = "from alembic_versioning import op as versioning"
TYPED_PREFIX = "versioning."
#: After each call of the ``op-type-ignore`` spelling.
TYPE_IGNORE = "  # type: ignore[attr-defined]"


def render_versioned_table_op(autogen_context: Any, op: VersionedTableOp) -> list[str]:
    """Return the lines of the op's call, after a comment saying what autogenerate found.

    - The call is ``versioning.<name>('<table>', ...)``, or ``op.<name>(...)``, by the ``render``
      option; every non-default argument is explicit.
    - Names in the comment are escaped (see :func:`~alembic_versioning.comments.one_line`).
    - The imports the call needs are added to the script."""
    render = options_for(autogen_context).render
    autogen_context.imports.add(TYPED_IMPORT if render == "typed" else IMPORT)
    if isinstance(op, BackfillVersionsOp) and uses_environment(op):
        autogen_context.imports.add("import os")
    call = _call(autogen_context, op, render)
    return [f"# {one_line(op.finding)}", call] if op.finding else [call]


def _call(autogen_context: Any, op: VersionedTableOp, render: RenderMode) -> str:
    """The call of ``op`` with its arguments, the strategy last, in the ``render`` spelling (see
    :data:`~.options.RENDER_MODES`)."""
    kwargs = op.arguments()
    if "strategy" in kwargs:  # last: it describes the table as of this revision, after its columns
        kwargs["strategy"] = kwargs.pop("strategy")
    arguments = ", ".join([repr(op.table_name), *(f"{k}={v!r}" for k, v in kwargs.items())])
    if render == "typed":
        return f"{TYPED_PREFIX}{op.op_name}({arguments})"
    call = f"{autogen_context.opts.get('alembic_module_prefix', 'op.')}{op.op_name}({arguments})"
    return call + TYPE_IGNORE if render == "op-type-ignore" else call


for _op_class in (BackfillVersionsOp, UpdateEndTransactionIdsOp, UpdateModFlagsOp, VacuumVersionsOp):
    renderers.dispatch_for(_op_class)(render_versioned_table_op)


@renderers.dispatch_for(RepairOnDowngradeOp)
def render_repair_on_downgrade(autogen_context: Any, op: RepairOnDowngradeOp) -> list[str]:
    """Nothing to do on upgrade: a ``pass`` saying what the downgrade will repair."""
    return [f"pass  # on downgrade, once the schema is back: {op.repair.op_name}({op.repair.table_name!r})"]


@renderers.dispatch_for(LeftOutOp)
def render_left_out(autogen_context: Any, op: LeftOutOp) -> list[str]:
    """Comments saying what was found, why the repair is left out and (with ``show_repair``) the
    repair itself, then ``pass``: nothing runs."""
    found = f"{op.repair.finding}: " if op.repair.finding else ""
    text = one_line(f"{found}left out by alembic-versioning, as {op.why}")
    lines = textwrap.wrap(text, 96, break_long_words=False, break_on_hyphens=False)
    if op.show_repair:
        lines.append(_call(autogen_context, op.repair, options_for(autogen_context).render))
    return [*(f"# {line}" for line in lines), "pass"]

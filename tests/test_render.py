"""Exact rendered Python of every op kind, as autogenerate writes it into a migration script.

In the style of Alembic's own ``tests/test_autogen_render.py``: each op is rendered through
Alembic's renderer dispatch (``render_op_text``) with an :class:`AutogenContext`, and the whole
text is compared. Importing :mod:`alembic_versioning` registers the renderers.
"""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import render_op_text, render_python_code
from alembic.autogenerate.api import AutogenContext
from alembic.migration import MigrationContext
from alembic.operations.ops import DowngradeOps, UpgradeOps
from alembic.util import CommandError
from sqlalchemy.engine.default import DefaultDialect

from alembic_versioning import (
    BackfillVersionsOp,
    LeftOutOp,
    Naming,
    RepairOnDowngradeOp,
    UpdateEndTransactionIdsOp,
    UpdateModFlagsOp,
    VacuumVersionsOp,
    VersionedTable,
    VersionedTableOp,
)
from alembic_versioning.autogenerate.factory import make_op
from alembic_versioning.operations import VersionedDataOp

IMPORT = "import alembic_versioning  # noqa: F401  (registers op.backfill_versions & co.)"
TYPED_IMPORT = "from alembic_versioning import op as versioning"


def autogen_context(**opts: Any) -> AutogenContext:
    """An autogenerate context as Alembic's render tests build it (``opts`` override the prefixes)."""
    context = MigrationContext.configure(
        dialect=DefaultDialect(),
        opts={"sqlalchemy_module_prefix": "sa.", "alembic_module_prefix": "op.", **opts},
    )
    return AutogenContext(context)


def lines(*text: str) -> str:
    """Rendered lines, one argument each."""
    return "\n".join(text)


def render(op: Any, **opts: Any) -> str:
    """``op`` rendered as autogenerate renders it into a script."""
    return render_op_text(autogen_context(**opts), op)


# --- each op with default naming -------------------------------------------------------------


def test_update_end_transaction_ids_default() -> None:
    """update_end_transaction_ids with nothing but the table name."""
    assert render(UpdateEndTransactionIdsOp("article")) == "versioning.update_end_transaction_ids('article')"


def test_update_mod_flags_default() -> None:
    """update_mod_flags with nothing but the table name."""
    assert render(UpdateModFlagsOp("article")) == "versioning.update_mod_flags('article')"


def test_backfill_versions_default() -> None:
    """backfill_versions with nothing but the table name."""
    assert render(BackfillVersionsOp("article")) == "versioning.backfill_versions('article')"


def test_vacuum_versions_default() -> None:
    """vacuum_versions with nothing but the table name."""
    assert render(VacuumVersionsOp("article")) == "versioning.vacuum_versions('article')"


def test_default_values_are_left_out() -> None:
    """Arguments given at their default values render nothing."""
    op = BackfillVersionsOp(
        "article",
        schema=None,
        naming=Naming(),
        transaction={},
        meta={},
        entity_names=(),
        native_versioning=None,
        joined=(),
    )
    assert render(op) == "versioning.backfill_versions('article')"
    flags = UpdateModFlagsOp("article", insert_flags="keep", keep_true=False)
    assert render(flags) == "versioning.update_mod_flags('article')"
    assert render(VacuumVersionsOp("article", ignore_columns=[])) == "versioning.vacuum_versions('article')"


# --- naming options --------------------------------------------------------------------------


#: A value other than Continuum's default for each naming option, in Naming's field order, and the
#: keyword argument it renders as.
OTHER_NAMING = [
    ("version_table_format", "%s_history", "version_table_format='%s_history'"),
    ("transaction_column_name", "tx", "transaction_column_name='tx'"),
    ("end_transaction_column_name", "end_tx", "end_transaction_column_name='end_tx'"),
    ("operation_type_column_name", "op", "operation_type_column_name='op'"),
    ("mod_suffix", "_changed", "mod_suffix='_changed'"),
    ("transaction_table", "audit.tx", "transaction_table='audit.tx'"),
    ("transaction_sequence", "audit.tx_seq", "transaction_sequence='audit.tx_seq'"),
]


@pytest.mark.parametrize(("option", "value", "argument"), OTHER_NAMING)
def test_each_naming_option(option: str, value: str, argument: str) -> None:
    """Each naming option that differs from Continuum's default renders as its keyword argument."""
    op = UpdateEndTransactionIdsOp("article", naming=Naming(**{option: value}))
    assert render(op) == f"versioning.update_end_transaction_ids('article', {argument})"


ALL_NAMING = Naming(**{option: value for option, value, _ in OTHER_NAMING})
ALL_NAMING_ARGUMENTS = ", ".join(argument for _, _, argument in OTHER_NAMING)


@pytest.mark.parametrize(
    "op_class",
    [UpdateEndTransactionIdsOp, UpdateModFlagsOp, BackfillVersionsOp, VacuumVersionsOp],
)
def test_all_naming_options_and_schema(op_class: type[VersionedTableOp]) -> None:
    """Every op renders schema, then all naming options in Naming's field order."""
    op = op_class("article", schema="app", naming=ALL_NAMING)
    assert render(op) == f"versioning.{op.op_name}('article', schema='app', {ALL_NAMING_ARGUMENTS})"


def test_schema() -> None:
    """schema renders right after the table name."""
    assert render(VacuumVersionsOp("article", schema="app")) == "versioning.vacuum_versions('article', schema='app')"


# --- arguments common to all ops -------------------------------------------------------------


def test_primary_key() -> None:
    """primary_key renders as a list, whatever sequence it was given as."""
    op = UpdateEndTransactionIdsOp("article", primary_key=("tenant_id", "id"))
    assert render(op) == "versioning.update_end_transaction_ids('article', primary_key=['tenant_id', 'id'])"


def test_empty_primary_key() -> None:
    """primary_key=[] (an association table without a key) is rendered, not dropped as a default."""
    op = UpdateEndTransactionIdsOp("article_tag", primary_key=[])
    assert render(op) == "versioning.update_end_transaction_ids('article_tag', primary_key=[])"


@pytest.mark.parametrize("strategy", ["validity", "subquery"])
def test_strategy(strategy: str) -> None:
    """strategy renders as given."""
    op = UpdateModFlagsOp("article", strategy=strategy)  # type: ignore[arg-type]
    assert render(op) == f"versioning.update_mod_flags('article', strategy={strategy!r})"


def test_strategy_renders_last() -> None:
    """strategy comes after every other argument, columns and naming options included."""
    op = UpdateModFlagsOp(
        "article",
        ["title"],
        schema="app",
        primary_key=["id"],
        strategy="subquery",
        naming=Naming(mod_suffix="_changed"),
        keep_true=True,
    )
    assert render(op) == (
        "versioning.update_mod_flags('article', schema='app', primary_key=['id'], mod_suffix='_changed', "
        "columns=['title'], keep_true=True, strategy='subquery')"
    )


# --- update_mod_flags ------------------------------------------------------------------------


def test_update_mod_flags_columns() -> None:
    """update_mod_flags' columns render as a keyword list."""
    op = UpdateModFlagsOp("article", ("title", "body"))
    assert render(op) == "versioning.update_mod_flags('article', columns=['title', 'body'])"


@pytest.mark.parametrize("insert_flags", ["non_null", "all"])
def test_update_mod_flags_insert_flags(insert_flags: str) -> None:
    """A non-default insert_flags renders."""
    op = UpdateModFlagsOp("article", insert_flags=insert_flags)  # type: ignore[arg-type]
    assert render(op) == f"versioning.update_mod_flags('article', insert_flags={insert_flags!r})"


def test_update_mod_flags_keep_true() -> None:
    """keep_true=True renders."""
    assert (
        render(UpdateModFlagsOp("article", keep_true=True)) == "versioning.update_mod_flags('article', keep_true=True)"
    )


# --- backfill_versions and vacuum_versions ---------------------------------------------------


@pytest.mark.parametrize("op_class", [BackfillVersionsOp, VacuumVersionsOp])
def test_columns_and_mod_columns(op_class: type[VersionedDataOp]) -> None:
    """columns and mod_columns render as keyword lists, columns first."""
    op = op_class("article", columns=("title", "body"), mod_columns=("title",))
    assert render(op) == f"versioning.{op.op_name}('article', columns=['title', 'body'], mod_columns=['title'])"


@pytest.mark.parametrize("op_class", [BackfillVersionsOp, VacuumVersionsOp])
def test_joined_list(op_class: type[VersionedDataOp]) -> None:
    """joined given as table names renders as a list."""
    op = op_class("document", joined=("article", "report"))
    assert render(op) == f"versioning.{op.op_name}('document', joined=['article', 'report'])"


@pytest.mark.parametrize("op_class", [BackfillVersionsOp, VacuumVersionsOp])
def test_joined_mapping(op_class: type[VersionedDataOp]) -> None:
    """joined given as a mapping renders as a dict of lists."""
    op = op_class(
        "document",
        joined={"article": {"primary_key": ("id",), "columns": ("body",), "mod_columns": ("body",)}, "report": {}},
    )
    assert render(op) == (
        f"versioning.{op.op_name}('document', joined={{'article': {{'primary_key': ['id'], 'columns': ['body'], "
        "'mod_columns': ['body']}, 'report': {}})"
    )


def test_joined_mapping_saying_nothing_renders_as_list() -> None:
    """A joined mapping that describes no table renders as the list of its names."""
    op = BackfillVersionsOp("document", joined={"article": {}, "report": {}})
    assert render(op) == "versioning.backfill_versions('document', joined=['article', 'report'])"


def test_backfill_versions_transaction_and_meta() -> None:
    """transaction and meta render as dicts."""
    op = BackfillVersionsOp("article", transaction={"user_id": 7, "remote_addr": "10.0.0.1"}, meta={"why": "backfill"})
    assert render(op) == (
        "versioning.backfill_versions('article', transaction={'user_id': 7, 'remote_addr': '10.0.0.1'}, "
        "meta={'why': 'backfill'})"
    )


def test_backfill_versions_entity_names() -> None:
    """entity_names renders as a list."""
    op = BackfillVersionsOp("article", entity_names=("Article", "Post"))
    assert render(op) == "versioning.backfill_versions('article', entity_names=['Article', 'Post'])"


@pytest.mark.parametrize("native", [True, False])
def test_backfill_versions_native_versioning(native: bool) -> None:
    """native_versioning renders when told, True or False."""
    op = BackfillVersionsOp("article", native_versioning=native)
    assert render(op) == f"versioning.backfill_versions('article', native_versioning={native})"


def test_backfill_versions_every_argument() -> None:
    """backfill_versions with every argument: their order in the rendered call."""
    op = BackfillVersionsOp(
        "article",
        schema="app",
        primary_key=["id"],
        columns=["title"],
        mod_columns=["title"],
        joined={"document": {"primary_key": ["id"], "columns": ["body"]}},
        transaction={"user_id": 7},
        meta={"why": "backfill"},
        entity_names=["Article"],
        native_versioning=False,
        strategy="validity",
        naming=Naming(mod_suffix="_changed"),
    )
    assert render(op) == (
        "versioning.backfill_versions('article', schema='app', primary_key=['id'], mod_suffix='_changed', "
        "columns=['title'], mod_columns=['title'], joined={'document': {'primary_key': ['id'], 'columns': ['body']}}, "
        "transaction={'user_id': 7}, meta={'why': 'backfill'}, entity_names=['Article'], native_versioning=False, "
        "strategy='validity')"
    )


def test_vacuum_versions_ignore_columns() -> None:
    """ignore_columns renders as a list, after columns."""
    op = VacuumVersionsOp("article", columns=["title", "updated_at"], ignore_columns=("updated_at",))
    assert (
        render(op)
        == "versioning.vacuum_versions('article', columns=['title', 'updated_at'], ignore_columns=['updated_at'])"
    )


# --- the finding comment, generated ops, reverse() -------------------------------------------


def test_finding_comment_above_op() -> None:
    """An op's finding renders as a comment line above the call."""
    op = UpdateEndTransactionIdsOp("article")
    op.finding = "3 versions whose end id is not the next version's transaction id"
    assert render(op) == lines(
        "# 3 versions whose end id is not the next version's transaction id",
        "versioning.update_end_transaction_ids('article')",
    )


ARTICLE = VersionedTable(
    "article",
    schema="app",
    primary_key=("id",),
    columns=("title", "body"),
    mod_columns=("title",),
    entity_names=("Article",),
)


def test_generated_update_end_transaction_ids() -> None:
    """An autogenerated update_end_transaction_ids names the key and strategy explicitly."""
    op = make_op(UpdateEndTransactionIdsOp, ARTICLE, "2 versions whose end id is not the next version's transaction id")
    assert render(op) == lines(
        "# 2 versions whose end id is not the next version's transaction id",
        "versioning.update_end_transaction_ids('article', schema='app', primary_key=['id'], strategy='validity')",
    )


def test_generated_update_mod_flags() -> None:
    """An autogenerated update_mod_flags names the flagged columns as its columns."""
    op = make_op(UpdateModFlagsOp, ARTICLE, "1 version missing mod flags its data shows", keep_true=True)
    assert render(op) == lines(
        "# 1 version missing mod flags its data shows",
        "versioning.update_mod_flags('article', schema='app', primary_key=['id'], columns=['title'], keep_true=True, "
        "strategy='validity')",
    )


def test_generated_backfill_versions() -> None:
    """An autogenerated backfill_versions names columns, mod columns and entity names."""
    op = make_op(BackfillVersionsOp, ARTICLE, "1 live row without a current version")
    assert render(op) == lines(
        "# 1 live row without a current version",
        "versioning.backfill_versions('article', schema='app', primary_key=['id'], columns=['title', 'body'], "
        "mod_columns=['title'], entity_names=['Article'], strategy='validity')",
    )


#: A table of a single-table inheritance hierarchy under the NullDeletePlugin.
TEXT_ITEM = VersionedTable(
    "text_item",
    primary_key=("id",),
    columns=("discriminator", "name", "title"),
    mod_columns=("discriminator", "name", "title"),
    subclass_columns={"name": ("article",), "title": ("blog_post", 3)},
    discriminator="discriminator",
    null_delete=True,
)


def test_generated_delete_shape() -> None:
    """An autogenerated backfill_versions says how Continuum writes DELETE versions (NULLs, the
    subclass columns' flags), update_mod_flags the subclass columns; vacuum_versions neither."""
    subclass = "subclass_columns={'name': ['article'], 'title': ['blog_post', 3]}, discriminator='discriminator'"
    columns = "columns=['discriminator', 'name', 'title']"
    assert render(make_op(BackfillVersionsOp, TEXT_ITEM, "")) == (
        f"versioning.backfill_versions('text_item', primary_key=['id'], {columns}, "
        f"mod_columns=['discriminator', 'name', 'title'], null_delete=True, {subclass}, strategy='validity')"
    )
    assert render(make_op(UpdateModFlagsOp, TEXT_ITEM, "", keep_true=True)) == (
        f"versioning.update_mod_flags('text_item', primary_key=['id'], {columns}, keep_true=True, {subclass}, "
        "strategy='validity')"
    )
    assert "subclass" not in render(make_op(VacuumVersionsOp, TEXT_ITEM, ""))


def test_generated_association_backfill() -> None:
    """An autogenerated backfill_versions of an association table says so; with subclass columns
    but no discriminator, they render as a list."""
    link = VersionedTable("article_tag", primary_key=("article_id", "tag_id"), association=True)
    assert render(make_op(BackfillVersionsOp, link, "")) == (
        "versioning.backfill_versions('article_tag', primary_key=['article_id', 'tag_id'], columns=[], mod_columns=[], "
        "association=True, strategy='validity')"
    )
    level = VersionedTable("first_level", primary_key=("id",), columns=("level2",), subclass_columns={"level2": ()})
    assert "subclass_columns=['level2'], strategy=" in render(make_op(BackfillVersionsOp, level, ""))


def test_generated_vacuum_versions() -> None:
    """An autogenerated vacuum_versions names columns and mod columns."""
    table = VersionedTable("article", primary_key=("id",), columns=("title",), strategy="subquery")
    op = make_op(VacuumVersionsOp, table, "4 futile versions (identical to the previous one)")
    assert render(op) == lines(
        "# 4 futile versions (identical to the previous one)",
        "versioning.vacuum_versions('article', primary_key=['id'], columns=['title'], mod_columns=[], "
        "strategy='subquery')",
    )


def test_generated_with_naming() -> None:
    """An autogenerated op carries the table's non-default naming."""
    table = VersionedTable("article", naming=Naming(version_table_format="%s_history"), primary_key=("id",))
    op = make_op(UpdateEndTransactionIdsOp, table, "")
    assert render(op) == (
        "versioning.update_end_transaction_ids('article', primary_key=['id'], version_table_format='%s_history', "
        "strategy='validity')"
    )


def test_reverse_renders_downgrade_comment() -> None:
    """An op's reverse is the same call under a downgrade comment, its finding replaced."""
    op = UpdateModFlagsOp("article", ["title"], keep_true=True)
    op.finding = "1 version missing mod flags its data shows"
    assert render(op.reverse()) == lines(
        "# downgrade: update_mod_flags again, which changes nothing while the history is correct",
        "versioning.update_mod_flags('article', columns=['title'], keep_true=True)",
    )


def test_reverse_leaves_op_alone() -> None:
    """reverse() copies: the upgrade op keeps its own finding."""
    op = VacuumVersionsOp("article")
    op.finding = "1 futile version (identical to the previous one)"
    op.reverse()
    assert render(op) == lines(
        "# 1 futile version (identical to the previous one)", "versioning.vacuum_versions('article')"
    )


# --- LeftOutOp -------------------------------------------------------------------------------


def left_out_backfill(finding: str | None = "1 live row without a current version") -> BackfillVersionsOp:
    op = BackfillVersionsOp("article", primary_key=["id"], columns=["title"])
    op.finding = finding
    return op


NO_TRANSACTION_TABLE = (
    "its transaction table 'transaction' does not exist; create Continuum's transaction table, "
    "or write the backfill by hand naming one with transaction_table=..."
)


def test_left_out_shows_repair() -> None:
    """A left-out op: finding and reason as comments wrapped at 96 characters, the call commented out, pass."""
    op = LeftOutOp(left_out_backfill(), NO_TRANSACTION_TABLE)
    assert render(op) == lines(
        "# 1 live row without a current version: left out by alembic-versioning, as its transaction table",
        "# 'transaction' does not exist; create Continuum's transaction table, or write the backfill by",
        "# hand naming one with transaction_table=...",
        "# versioning.backfill_versions('article', primary_key=['id'], columns=['title'])",
        "pass",
    )


def test_left_out_without_repair() -> None:
    """show_repair=False: the comments and pass, no commented call."""
    op = LeftOutOp(left_out_backfill(), "its tables are written by native versioning", show_repair=False)
    assert render(op) == lines(
        "# 1 live row without a current version: left out by alembic-versioning, as its tables are written",
        "# by native versioning",
        "pass",
    )


def test_left_out_without_finding() -> None:
    """A left-out op without a finding starts with the reason."""
    op = LeftOutOp(left_out_backfill(None), "no room", show_repair=False)
    assert render(op) == lines("# left out by alembic-versioning, as no room", "pass")


def test_left_out_keeps_long_words_whole() -> None:
    """A word longer than the line (a qualified name) is not broken, nor split at hyphens."""
    name = "a-very-long-schema-name." + "x" * 90
    op = LeftOutOp(left_out_backfill(None), f"{name} does not exist", show_repair=False)
    assert render(op) == lines("# left out by alembic-versioning, as", f"# {name}", "# does not exist", "pass")


def test_left_out_commented_call_is_not_wrapped() -> None:
    """The commented-out call stays on one line however long it is, so it can be uncommented."""
    repair = BackfillVersionsOp("article", columns=[f"column_{i}" for i in range(12)])
    op = LeftOutOp(repair, "no room")
    columns = ", ".join(f"'column_{i}'" for i in range(12))
    assert render(op) == lines(
        "# left out by alembic-versioning, as no room",
        f"# versioning.backfill_versions('article', columns=[{columns}])",
        "pass",
    )


def test_left_out_reverse() -> None:
    """A left-out op's reverse is left out too, its finding under 'downgrade:'."""
    op = LeftOutOp(left_out_backfill(), "no room").reverse()
    assert render(op) == lines(
        "# downgrade: 1 live row without a current version: left out by alembic-versioning, as no room",
        "# versioning.backfill_versions('article', primary_key=['id'], columns=['title'])",
        "pass",
    )


def test_left_out_reverse_without_finding() -> None:
    """The reverse of a left-out op without a finding says 'downgrade'."""
    op = LeftOutOp(left_out_backfill(None), "no room", show_repair=False).reverse()
    assert render(op) == lines("# downgrade: left out by alembic-versioning, as no room", "pass")


def test_left_out_reverse_keeps_show_repair_and_original() -> None:
    """The reverse keeps show_repair and leaves the upgrade's op alone."""
    op = LeftOutOp(left_out_backfill(), "no room", show_repair=False)
    reverse = op.reverse()
    assert (reverse.show_repair, reverse.why) == (False, "no room")
    assert op.repair.finding == "1 live row without a current version"


# --- RepairOnDowngradeOp ---------------------------------------------------------------------


CHAIN_BACK = "end_transaction_id is back, empty: rebuild the validity chain"


def test_repair_on_downgrade() -> None:
    """Nothing runs on upgrade: a pass saying what the downgrade repairs."""
    repair = make_op(UpdateEndTransactionIdsOp, ARTICLE, CHAIN_BACK)
    assert render(RepairOnDowngradeOp(repair)) == (
        "pass  # on downgrade, once the schema is back: update_end_transaction_ids('article')"
    )


def test_repair_on_downgrade_reverse() -> None:
    """Its reverse is the repair itself, rendered under the repair's own finding."""
    repair = make_op(UpdateEndTransactionIdsOp, ARTICLE, CHAIN_BACK)
    op = RepairOnDowngradeOp(repair)
    assert op.reverse() is repair
    assert render(op.reverse()) == lines(
        "# end_transaction_id is back, empty: rebuild the validity chain",
        "versioning.update_end_transaction_ids('article', schema='app', primary_key=['id'], strategy='validity')",
    )


def test_repair_on_downgrade_in_script_body() -> None:
    """In a script, the upgrade holds only the pass line; the downgrade, the repair."""
    repair = UpdateModFlagsOp("article", ["title"], insert_flags="non_null")
    repair.finding = "mod flag(s) for title are back, false: recompute them"
    upgrade = UpgradeOps(ops=[RepairOnDowngradeOp(repair)])
    assert render_python_code(upgrade) == lines(
        "# ### commands auto generated by Alembic - please adjust! ###",
        "    pass  # on downgrade, once the schema is back: update_mod_flags('article')",
        "    # ### end Alembic commands ###",
    )
    assert render_python_code(upgrade.reverse()) == lines(
        "# ### commands auto generated by Alembic - please adjust! ###",
        "    # mod flag(s) for title are back, false: recompute them",
        "    versioning.update_mod_flags('article', columns=['title'], insert_flags='non_null')",
        "    # ### end Alembic commands ###",
    )


# --- imports, prefixes and the render option -------------------------------------------------

ALL_OPS = [
    UpdateEndTransactionIdsOp("article"),
    UpdateModFlagsOp("article"),
    BackfillVersionsOp("article"),
    VacuumVersionsOp("article"),
]


def op_render(render_mode: str) -> dict[str, Any]:
    """Autogenerate options choosing the spelling, as env.py passes them."""
    return {"alembic_versioning": {"render": render_mode}}


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: op.op_name)
def test_op_adds_typed_import(op: VersionedTableOp) -> None:
    """By default an op adds the import of the typed functions, and nothing else."""
    context = autogen_context()
    assert render_op_text(context, op) == f"versioning.{op.op_name}('article')"
    assert context.imports == {TYPED_IMPORT}


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: op.op_name)
def test_op_spelling_adds_registering_import(op: VersionedTableOp) -> None:
    """render="op": ``op.<name>(...)`` and the import that registers the operations."""
    context = autogen_context(**op_render("op"))
    assert render_op_text(context, op) == f"op.{op.op_name}('article')"
    assert context.imports == {IMPORT}


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: op.op_name)
def test_op_type_ignore_spelling(op: VersionedTableOp) -> None:
    """render="op-type-ignore": the op. call with the comment that silences type checkers."""
    context = autogen_context(**op_render("op-type-ignore"))
    assert render_op_text(context, op) == f"op.{op.op_name}('article')  # type: ignore[attr-defined]"
    assert context.imports == {IMPORT}


def test_op_type_ignore_after_finding_and_arguments() -> None:
    """The ignore comment ends the call's line, after every argument; the finding stays above."""
    op = UpdateModFlagsOp("article", ["title"], keep_true=True, strategy="subquery")
    op.finding = "1 version missing mod flags its data shows"
    assert render(op, **op_render("op-type-ignore")) == lines(
        "# 1 version missing mod flags its data shows",
        "op.update_mod_flags('article', columns=['title'], keep_true=True, strategy='subquery')"
        "  # type: ignore[attr-defined]",
    )


@pytest.mark.parametrize(
    "op",
    [
        LeftOutOp(BackfillVersionsOp("article"), "no room"),
        RepairOnDowngradeOp(UpdateEndTransactionIdsOp("article")),
    ],
    ids=["left_out", "repair_on_downgrade"],
)
@pytest.mark.parametrize("render_mode", ["typed", "op", "op-type-ignore"])
def test_no_import_without_call(op: Any, render_mode: str) -> None:
    """A left-out op and a repair on downgrade call nothing on upgrade: no import."""
    context = autogen_context(**op_render(render_mode))
    render_op_text(context, op)
    assert context.imports == set()


@pytest.mark.parametrize(
    ("render_mode", "call"),
    [
        ("typed", "versioning.backfill_versions('article')"),
        ("op", "op.backfill_versions('article')"),
        ("op-type-ignore", "op.backfill_versions('article')  # type: ignore[attr-defined]"),
    ],
)
def test_left_out_call_in_each_spelling(render_mode: str, call: str) -> None:
    """The commented-out call of a left-out op is spelled as the live calls are."""
    op = LeftOutOp(BackfillVersionsOp("article"), "no room")
    assert render(op, **op_render(render_mode)) == lines(
        "# left out by alembic-versioning, as no room", f"# {call}", "pass"
    )


def test_unknown_render_option() -> None:
    """An unknown spelling is refused, naming the choices."""
    with pytest.raises(CommandError, match=r"render='mypy': use one of \['typed', 'op', 'op-type-ignore'\]"):
        render(VacuumVersionsOp("article"), **op_render("mypy"))


def test_typed_ignores_alembic_module_prefix() -> None:
    """The typed spelling is the imported module's name, whatever Alembic's prefix."""
    assert render(VacuumVersionsOp("article"), alembic_module_prefix="alembic_op.") == (
        "versioning.vacuum_versions('article')"
    )


def test_alembic_module_prefix() -> None:
    """The op. spellings use the context's alembic_module_prefix."""
    assert render(VacuumVersionsOp("article"), alembic_module_prefix="alembic_op.", **op_render("op")) == (
        "alembic_op.vacuum_versions('article')"
    )


def test_alembic_module_prefix_in_left_out_call() -> None:
    """The commented-out call of a left-out op uses the prefix too."""
    op = LeftOutOp(BackfillVersionsOp("article"), "no room")
    assert render(op, alembic_module_prefix="alembic_op.", **op_render("op-type-ignore")) == lines(
        "# left out by alembic-versioning, as no room",
        "# alembic_op.backfill_versions('article')  # type: ignore[attr-defined]",
        "pass",
    )


def test_render_python_code_without_migration_context() -> None:
    """render_python_code() without a migration context renders the default spelling."""
    downgrade = DowngradeOps(ops=[UpdateEndTransactionIdsOp("article")])
    assert render_python_code(downgrade, alembic_module_prefix="alembic_op.") == lines(
        "# ### commands auto generated by Alembic - please adjust! ###",
        "    versioning.update_end_transaction_ids('article')",
        "    # ### end Alembic commands ###",
    )

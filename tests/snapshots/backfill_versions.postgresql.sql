-- backfill_versions on postgresql, table article (id; title with a mod flag, body), validity strategy.
-- Compared by tests/test_constructs.py; UPDATE_SNAPSHOTS=1 rewrites it.

DO $av_guard$ BEGIN IF to_regclass('"transaction_id_seq"') IS NULL THEN RAISE EXCEPTION USING MESSAGE = 'backfill_versions(''article'') takes the new transaction id from the sequence ''transaction_id_seq'', which does not exist on the search path; render the script again with transaction_sequence=... naming the sequence the transaction table''s ids come from.'; END IF; END $av_guard$;

CREATE TEMPORARY TABLE IF NOT EXISTS _av_backfill_record (
	id BIGINT
)
 ON COMMIT DELETE ROWS;

DROP TABLE IF EXISTS pg_temp._av_backfill_pending;

DROP TABLE IF EXISTS pg_temp._av_backfill_transaction;

CREATE TEMPORARY TABLE _av_backfill_pending AS SELECT coalesce(article.id, latest.id) AS id, CASE WHEN (article.id IS NOT NULL) THEN article.title ELSE latest.title END AS title, CASE WHEN (article.id IS NOT NULL) THEN article.body ELSE latest.body END AS body, CASE WHEN (article.id IS NULL) THEN 2 WHEN (latest.transaction_id IS NULL) THEN 0 WHEN (latest.operation_type = 2) THEN 0 ELSE 1 END AS _av_operation, latest.transaction_id AS _av_latest_tx, latest._av_latest_row, latest.operation_type AS _av_latest_op, latest.title AS _av_latest_0, latest.body AS _av_latest_1
FROM article FULL OUTER JOIN (SELECT DISTINCT ON (article_version.id) article_version.id AS id, article_version.title AS title, article_version.body AS body, article_version.transaction_id AS transaction_id, article_version.end_transaction_id AS end_transaction_id, article_version.operation_type AS operation_type, article_version.title_mod AS title_mod, article_version.ctid AS _av_latest_row
FROM article_version
WHERE true ORDER BY article_version.id, article_version.transaction_id DESC) AS latest ON article.id = latest.id
WHERE article.id IS NULL AND latest.operation_type != 2 OR article.id IS NOT NULL AND (latest.transaction_id IS NULL OR latest.operation_type = 2 OR article.title IS DISTINCT FROM latest.title OR article.body IS DISTINCT FROM latest.body);

ANALYZE _av_backfill_pending (id, _av_latest_tx);

CREATE TEMPORARY TABLE _av_backfill_transaction (
	id BIGINT
);

INSERT INTO _av_backfill_transaction (id) SELECT coalesce((SELECT max(_av_backfill_record.id) AS max_1
FROM _av_backfill_record
WHERE _av_backfill_record.id >= coalesce((SELECT max(transaction.id) AS max_2
FROM transaction), _av_backfill_record.id) AND _av_backfill_record.id >= coalesce((SELECT max(article_version.transaction_id) AS max_3
FROM article_version), _av_backfill_record.id)), nextval('transaction_id_seq')) AS anon_1
WHERE EXISTS (SELECT *
FROM _av_backfill_pending);

DO $av_guard$ BEGIN IF EXISTS (SELECT *
FROM _av_backfill_transaction
WHERE NOT (EXISTS (SELECT *
FROM _av_backfill_record
WHERE _av_backfill_record.id = _av_backfill_transaction.id)) AND (_av_backfill_transaction.id <= (SELECT max(transaction.id) AS max_1
FROM transaction) OR _av_backfill_transaction.id <= (SELECT max(article_version.transaction_id) AS max_2
FROM article_version)) OR (EXISTS (SELECT *
FROM _av_backfill_record
WHERE _av_backfill_record.id = _av_backfill_transaction.id)) AND _av_backfill_transaction.id < (SELECT max(article_version.transaction_id) AS max_2
FROM article_version)) THEN RAISE EXCEPTION USING MESSAGE = 'backfill_versions(''article''): the transaction id ''transaction_id_seq'' gives is not above every transaction id of transaction, article_version, so the new versions would be dated before, or filed under, existing transactions. Move the sequence past them and run it again: SELECT setval(''transaction_id_seq'', greatest((SELECT max(id) FROM transaction), (SELECT max(transaction_id) FROM article_version)));'; END IF; END $av_guard$;

INSERT INTO transaction (id, issued_at) SELECT _av_backfill_transaction.id, (now() AT TIME ZONE 'utc') AS anon_1
FROM _av_backfill_transaction
WHERE NOT (EXISTS (SELECT *
FROM transaction
WHERE transaction.id = _av_backfill_transaction.id));

DELETE FROM _av_backfill_record WHERE _av_backfill_record.id != (SELECT _av_backfill_transaction.id
FROM _av_backfill_transaction);

INSERT INTO _av_backfill_record (id) SELECT _av_backfill_transaction.id
FROM _av_backfill_transaction
WHERE NOT (EXISTS (SELECT *
FROM _av_backfill_record
WHERE _av_backfill_record.id = _av_backfill_transaction.id));

UPDATE article_version SET end_transaction_id=(SELECT _av_backfill_transaction.id
FROM _av_backfill_transaction) WHERE article_version.ctid = ANY(ARRAY(SELECT _av_backfill_pending._av_latest_row
FROM _av_backfill_pending
WHERE _av_backfill_pending._av_latest_tx IS NULL OR _av_backfill_pending._av_latest_tx != (SELECT _av_backfill_transaction.id
FROM _av_backfill_transaction))) AND (EXISTS (SELECT *
FROM _av_backfill_transaction));

UPDATE article_version SET title=_av_backfill_pending.title, body=_av_backfill_pending.body, end_transaction_id=NULL, operation_type=CASE WHEN (_av_backfill_pending._av_operation = 2) THEN 2 WHEN (_av_backfill_pending._av_latest_op = 0) THEN 0 ELSE 1 END, title_mod=(_av_backfill_pending._av_operation = 2 OR article_version.title_mod OR _av_backfill_pending.title IS DISTINCT FROM _av_backfill_pending._av_latest_0) FROM _av_backfill_pending WHERE article_version.id = _av_backfill_pending.id AND article_version.transaction_id = _av_backfill_pending._av_latest_tx AND _av_backfill_pending._av_latest_tx = (SELECT _av_backfill_transaction.id
FROM _av_backfill_transaction);

INSERT INTO article_version (id, title, body, transaction_id, operation_type, title_mod) SELECT _av_backfill_pending.id, _av_backfill_pending.title, _av_backfill_pending.body, (SELECT _av_backfill_transaction.id
FROM _av_backfill_transaction) AS anon_1, _av_backfill_pending._av_operation, CASE WHEN (_av_backfill_pending._av_operation = 2) THEN true WHEN (_av_backfill_pending._av_operation = 1) THEN _av_backfill_pending.title IS DISTINCT FROM _av_backfill_pending._av_latest_0 ELSE _av_backfill_pending.title IS NOT NULL END AS anon_2
FROM _av_backfill_pending
WHERE (_av_backfill_pending._av_latest_tx IS NULL OR _av_backfill_pending._av_latest_tx != (SELECT _av_backfill_transaction.id
FROM _av_backfill_transaction)) AND (EXISTS (SELECT *
FROM _av_backfill_transaction));

DROP TABLE _av_backfill_transaction;

DROP TABLE _av_backfill_pending;

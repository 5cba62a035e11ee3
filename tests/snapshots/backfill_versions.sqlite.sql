-- backfill_versions on sqlite, table article (id; title with a mod flag, body), validity strategy.
-- Compared by tests/test_constructs.py; UPDATE_SNAPSHOTS=1 rewrites it.

-- no sequence: new transaction ids follow the largest taken;

CREATE TEMPORARY TABLE IF NOT EXISTS _av_backfill_record (
	id INTEGER
);

DROP TABLE IF EXISTS temp._av_backfill_pending;

DROP TABLE IF EXISTS temp._av_backfill_transaction;

CREATE TEMPORARY TABLE _av_backfill_pending AS SELECT article.id, article.title, article.body, CASE WHEN (latest.transaction_id IS NULL) THEN 0 WHEN (latest.operation_type = 2) THEN 0 ELSE 1 END AS _av_operation, latest.transaction_id AS _av_latest_tx, latest._av_latest_row, latest.operation_type AS _av_latest_op, latest.title AS _av_latest_0, latest.body AS _av_latest_1
FROM article LEFT OUTER JOIN (SELECT article_version.id AS id, article_version.title AS title, article_version.body AS body, article_version.transaction_id AS transaction_id, article_version.end_transaction_id AS end_transaction_id, article_version.operation_type AS operation_type, article_version.title_mod AS title_mod, NULL AS _av_latest_row
FROM article_version
WHERE article_version.transaction_id = (SELECT max(other.transaction_id) AS max_1
FROM article_version AS other
WHERE other.id = article_version.id) = 1 ORDER BY article_version.id, article_version.transaction_id DESC) AS latest ON article.id = latest.id
WHERE latest.transaction_id IS NULL OR latest.operation_type = 2 OR article.title IS NOT latest.title = 1 OR article.body IS NOT latest.body = 1 UNION ALL SELECT latest.id, latest.title, latest.body, 2 AS _av_operation, latest.transaction_id AS _av_latest_tx, latest._av_latest_row, latest.operation_type AS _av_latest_op, latest.title AS _av_latest_0, latest.body AS _av_latest_1
FROM (SELECT article_version.id AS id, article_version.title AS title, article_version.body AS body, article_version.transaction_id AS transaction_id, article_version.end_transaction_id AS end_transaction_id, article_version.operation_type AS operation_type, article_version.title_mod AS title_mod, NULL AS _av_latest_row
FROM article_version
WHERE article_version.transaction_id = (SELECT max(other.transaction_id) AS max_1
FROM article_version AS other
WHERE other.id = article_version.id) = 1 ORDER BY article_version.id, article_version.transaction_id DESC) AS latest
WHERE latest.operation_type != 2 AND NOT (EXISTS (SELECT *
FROM article
WHERE article.id = latest.id));

ANALYZE _av_backfill_pending;

CREATE TEMPORARY TABLE _av_backfill_transaction (
	id INTEGER
);

INSERT INTO _av_backfill_transaction (id) SELECT coalesce((SELECT max(_av_backfill_record.id) AS max_1
FROM _av_backfill_record
WHERE _av_backfill_record.id >= coalesce((SELECT max("transaction".id) AS max_2
FROM "transaction"), _av_backfill_record.id) AND _av_backfill_record.id >= coalesce((SELECT max(article_version.transaction_id) AS max_3
FROM article_version), _av_backfill_record.id)), (SELECT coalesce(max(highest.id), 0) + 1 AS anon_2
FROM (SELECT max("transaction".id) AS id
FROM "transaction" UNION ALL SELECT max(article_version.transaction_id) AS id
FROM article_version) AS highest)) AS anon_1
WHERE EXISTS (SELECT *
FROM _av_backfill_pending);

-- new transaction ids follow the largest taken: no sequence to check;

INSERT INTO "transaction" (id, issued_at) SELECT _av_backfill_transaction.id, strftime('%Y-%m-%d %H:%M:%f', 'now') || '000' AS anon_1
FROM _av_backfill_transaction
WHERE NOT (EXISTS (SELECT *
FROM "transaction"
WHERE "transaction".id = _av_backfill_transaction.id));

DELETE FROM _av_backfill_record WHERE _av_backfill_record.id != (SELECT _av_backfill_transaction.id
FROM _av_backfill_transaction);

INSERT INTO _av_backfill_record (id) SELECT _av_backfill_transaction.id
FROM _av_backfill_transaction
WHERE NOT (EXISTS (SELECT *
FROM _av_backfill_record
WHERE _av_backfill_record.id = _av_backfill_transaction.id));

UPDATE article_version SET end_transaction_id=(SELECT _av_backfill_transaction.id
FROM _av_backfill_transaction) FROM _av_backfill_pending WHERE article_version.id = _av_backfill_pending.id AND article_version.transaction_id = _av_backfill_pending._av_latest_tx AND (_av_backfill_pending._av_latest_tx IS NULL OR _av_backfill_pending._av_latest_tx != (SELECT _av_backfill_transaction.id
FROM _av_backfill_transaction)) AND (EXISTS (SELECT *
FROM _av_backfill_transaction));

UPDATE article_version SET title=_av_backfill_pending.title, body=_av_backfill_pending.body, end_transaction_id=NULL, operation_type=CASE WHEN (_av_backfill_pending._av_operation = 2) THEN 2 WHEN (_av_backfill_pending._av_latest_op = 0) THEN 0 ELSE 1 END, title_mod=(_av_backfill_pending._av_operation = 2 OR article_version.title_mod = 1 OR _av_backfill_pending.title IS NOT _av_backfill_pending._av_latest_0 = 1) FROM _av_backfill_pending WHERE article_version.id = _av_backfill_pending.id AND article_version.transaction_id = _av_backfill_pending._av_latest_tx AND _av_backfill_pending._av_latest_tx = (SELECT _av_backfill_transaction.id
FROM _av_backfill_transaction);

INSERT INTO article_version (id, title, body, transaction_id, operation_type, title_mod) SELECT _av_backfill_pending.id, _av_backfill_pending.title, _av_backfill_pending.body, (SELECT _av_backfill_transaction.id
FROM _av_backfill_transaction) AS anon_1, _av_backfill_pending._av_operation, CASE WHEN (_av_backfill_pending._av_operation = 2) THEN 1 WHEN (_av_backfill_pending._av_operation = 1) THEN _av_backfill_pending.title IS NOT _av_backfill_pending._av_latest_0 ELSE _av_backfill_pending.title IS NOT NULL END AS anon_2
FROM _av_backfill_pending
WHERE (_av_backfill_pending._av_latest_tx IS NULL OR _av_backfill_pending._av_latest_tx != (SELECT _av_backfill_transaction.id
FROM _av_backfill_transaction)) AND (EXISTS (SELECT *
FROM _av_backfill_transaction));

DROP TABLE _av_backfill_transaction;

DROP TABLE _av_backfill_pending;

-- vacuum_versions on postgresql, table article (id; title with a mod flag, body), validity strategy.
-- Compared by tests/test_constructs.py; UPDATE_SNAPSHOTS=1 rewrites it.

DROP TABLE IF EXISTS pg_temp._av_futile;

CREATE TEMPORARY TABLE _av_futile AS SELECT marked.id, marked.transaction_id, marked._av_previous_tx, marked.end_transaction_id
FROM (SELECT previous.id AS id, previous.title AS title, previous.body AS body, previous.transaction_id AS transaction_id, previous.end_transaction_id AS end_transaction_id, previous.operation_type AS operation_type, previous.title_mod AS title_mod, previous._av_previous_tx AS _av_previous_tx, CASE WHEN (previous.operation_type = 1 AND previous._av_previous_op IS NOT NULL AND previous._av_previous_op != 2 AND NOT previous.title IS DISTINCT FROM previous._av_previous_0 AND NOT previous.body IS DISTINCT FROM previous._av_previous_1 AND previous.title_mod IS NOT true) THEN 1 ELSE 0 END AS _av_futile
FROM (SELECT article_version.id AS id, article_version.title AS title, article_version.body AS body, article_version.transaction_id AS transaction_id, article_version.end_transaction_id AS end_transaction_id, article_version.operation_type AS operation_type, article_version.title_mod AS title_mod, lag(article_version.transaction_id) OVER (PARTITION BY article_version.id ORDER BY article_version.transaction_id) AS _av_previous_tx, lag(article_version.operation_type) OVER (PARTITION BY article_version.id ORDER BY article_version.transaction_id) AS _av_previous_op, lag(article_version.title) OVER (PARTITION BY article_version.id ORDER BY article_version.transaction_id) AS _av_previous_0, lag(article_version.body) OVER (PARTITION BY article_version.id ORDER BY article_version.transaction_id) AS _av_previous_1
FROM article_version) AS previous) AS marked
WHERE marked._av_futile = 1;

ANALYZE _av_futile;

UPDATE article_version SET end_transaction_id=runs._av_run_end FROM (SELECT grouped.id AS id, grouped._av_start AS _av_start, grouped._av_previous_tx AS _av_survivor_tx, last_value(grouped.end_transaction_id) OVER (PARTITION BY grouped.id, grouped._av_group ORDER BY grouped.transaction_id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS _av_run_end
FROM (SELECT starts.id AS id, starts.transaction_id AS transaction_id, starts._av_previous_tx AS _av_previous_tx, starts.end_transaction_id AS end_transaction_id, starts._av_start AS _av_start, sum(starts._av_start) OVER (PARTITION BY starts.id ORDER BY starts.transaction_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS _av_group
FROM (SELECT _av_futile.id AS id, _av_futile.transaction_id AS transaction_id, _av_futile._av_previous_tx AS _av_previous_tx, _av_futile.end_transaction_id AS end_transaction_id, CASE WHEN lag(_av_futile.transaction_id) OVER (PARTITION BY _av_futile.id ORDER BY _av_futile.transaction_id) IS DISTINCT FROM _av_futile._av_previous_tx THEN 1 ELSE 0 END AS _av_start
FROM _av_futile) AS starts) AS grouped) AS runs WHERE article_version.id = runs.id AND article_version.transaction_id = runs._av_survivor_tx AND runs._av_start = 1 AND article_version.end_transaction_id IS DISTINCT FROM runs._av_run_end;

DELETE FROM article_version USING _av_futile WHERE article_version.id = _av_futile.id AND article_version.transaction_id = _av_futile.transaction_id;

DROP TABLE _av_futile;

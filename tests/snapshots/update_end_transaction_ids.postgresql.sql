-- update_end_transaction_ids on postgresql, table article (id; title with a mod flag, body), validity strategy.
-- Compared by tests/test_constructs.py; UPDATE_SNAPSHOTS=1 rewrites it.

UPDATE article_version SET end_transaction_id=linked._av_expected_end FROM (SELECT chain.id AS id, chain.transaction_id AS transaction_id, chain._av_next_tx AS _av_expected_end
FROM (SELECT article_version.id AS id, article_version.transaction_id AS transaction_id, article_version.end_transaction_id AS end_transaction_id, article_version.operation_type AS operation_type, lead(article_version.transaction_id) OVER (PARTITION BY article_version.id ORDER BY article_version.transaction_id) AS _av_next_tx
FROM article_version) AS chain
WHERE chain.end_transaction_id IS DISTINCT FROM chain._av_next_tx) AS linked WHERE article_version.id = linked.id AND article_version.transaction_id = linked.transaction_id;

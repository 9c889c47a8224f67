-- memgpt-migrate drops the full-text indexes this migration created (recorded in
-- __memgpt_store_owned_indexes) before it runs this file.
DELETE FROM __memgpt_store_owned_indexes WHERE migration = '2024-01-01-000003_full_text_search';

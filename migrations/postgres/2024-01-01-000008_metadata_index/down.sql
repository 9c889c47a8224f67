-- memgpt-migrate drops the indexes this migration created (recorded in
-- __memgpt_store_owned_indexes) before it runs this file; then the functions go.
DELETE FROM __memgpt_store_owned_indexes WHERE migration = '2024-01-01-000008_metadata_index';
DROP FUNCTION IF EXISTS memgpt_metadata(json);
DROP FUNCTION IF EXISTS memgpt_metadata(jsonb);

-- memgpt-migrate drops the indexes this migration created (those recorded in
-- __memgpt_store_owned_indexes) before it runs this file; an index that existed before
-- `up` (the operator's own) stays.
DROP TABLE IF EXISTS __memgpt_store_owned_indexes;

-- memgpt-migrate drops the indexes this migration created (recorded in
-- __memgpt_store_owned_indexes) before it runs this file; the index over the text alone
-- comes back.
DELETE FROM __memgpt_store_owned_indexes WHERE migration = '2024-01-01-000005_full_text_scope';
CREATE INDEX IF NOT EXISTS memgpt_recall_memory_agent_text_fts_idx ON memgpt_recall_memory_agent USING gin (to_tsvector('english'::regconfig, left(coalesce(text, ''), 200000)));
CREATE INDEX IF NOT EXISTS memgpt_archival_memory_agent_text_fts_idx ON memgpt_archival_memory_agent USING gin (to_tsvector('english'::regconfig, left(coalesce(text, ''), 200000)));
CREATE INDEX IF NOT EXISTS memgpt_passages_text_fts_idx ON memgpt_passages USING gin (to_tsvector('english'::regconfig, left(coalesce(text, ''), 200000)));
CREATE INDEX IF NOT EXISTS memgpt_documents_text_fts_idx ON memgpt_documents USING gin (to_tsvector('english'::regconfig, left(coalesce(text, ''), 200000)));

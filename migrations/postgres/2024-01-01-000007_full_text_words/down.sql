-- memgpt-migrate drops the indexes this migration created (recorded in
-- __memgpt_store_owned_indexes) before it runs this file; migration 000005's index comes
-- back, then the function goes.
DELETE FROM __memgpt_store_owned_indexes WHERE migration = '2024-01-01-000007_full_text_words';
CREATE INDEX IF NOT EXISTS memgpt_recall_memory_agent_text_scope_fts_idx ON memgpt_recall_memory_agent USING gin ((to_tsvector('english'::regconfig, left(coalesce(text, ''), 200000)) || array_to_tsvector(ARRAY['u' || replace(user_id::text, '-', ''), 'a' || replace(coalesce(agent_id::text, ''), '-', '')])));
CREATE INDEX IF NOT EXISTS memgpt_archival_memory_agent_text_scope_fts_idx ON memgpt_archival_memory_agent USING gin ((to_tsvector('english'::regconfig, left(coalesce(text, ''), 200000)) || array_to_tsvector(ARRAY['u' || replace(user_id::text, '-', ''), 'a' || replace(coalesce(agent_id::text, ''), '-', '')])));
CREATE INDEX IF NOT EXISTS memgpt_passages_text_scope_fts_idx ON memgpt_passages USING gin ((to_tsvector('english'::regconfig, left(coalesce(text, ''), 200000)) || array_to_tsvector(ARRAY['u' || replace(user_id::text, '-', ''), 'a' || replace(coalesce(agent_id::text, ''), '-', '')])));
CREATE INDEX IF NOT EXISTS memgpt_documents_text_scope_fts_idx ON memgpt_documents USING gin ((to_tsvector('english'::regconfig, left(coalesce(text, ''), 200000)) || array_to_tsvector(ARRAY['u' || replace(user_id::text, '-', '')])));
DROP FUNCTION IF EXISTS memgpt_text_words(text);

-- The full-text index also holds each row's tenant: the lexeme 'u' and the user id's 32
-- hex digits and, where the table has one, 'a' and the agent's. A search asks for the
-- tenant's lexeme and the words together, so that GIN's fast scan walks the tenant's short
-- posting list and skips through a common word's (docs/BENCHMARKS.md, W4 query_text),
-- instead of recomputing every tenant row's tsvector or reading the word's whole list.
-- The index over the text alone (migration 000003) is dropped; down builds it again.
INSERT INTO __memgpt_store_owned_indexes (name, migration)
SELECT v.name, '2024-01-01-000005_full_text_scope' FROM (VALUES ('memgpt_recall_memory_agent_text_scope_fts_idx'), ('memgpt_archival_memory_agent_text_scope_fts_idx'), ('memgpt_passages_text_scope_fts_idx'), ('memgpt_documents_text_scope_fts_idx')) AS v(name)
WHERE to_regclass(v.name) IS NULL
ON CONFLICT (name) DO NOTHING;
CREATE INDEX IF NOT EXISTS memgpt_recall_memory_agent_text_scope_fts_idx ON memgpt_recall_memory_agent USING gin ((to_tsvector('english'::regconfig, left(coalesce(text, ''), 200000)) || array_to_tsvector(ARRAY['u' || replace(user_id::text, '-', ''), 'a' || replace(coalesce(agent_id::text, ''), '-', '')])));
DROP INDEX IF EXISTS memgpt_recall_memory_agent_text_fts_idx;
CREATE INDEX IF NOT EXISTS memgpt_archival_memory_agent_text_scope_fts_idx ON memgpt_archival_memory_agent USING gin ((to_tsvector('english'::regconfig, left(coalesce(text, ''), 200000)) || array_to_tsvector(ARRAY['u' || replace(user_id::text, '-', ''), 'a' || replace(coalesce(agent_id::text, ''), '-', '')])));
DROP INDEX IF EXISTS memgpt_archival_memory_agent_text_fts_idx;
CREATE INDEX IF NOT EXISTS memgpt_passages_text_scope_fts_idx ON memgpt_passages USING gin ((to_tsvector('english'::regconfig, left(coalesce(text, ''), 200000)) || array_to_tsvector(ARRAY['u' || replace(user_id::text, '-', ''), 'a' || replace(coalesce(agent_id::text, ''), '-', '')])));
DROP INDEX IF EXISTS memgpt_passages_text_fts_idx;
CREATE INDEX IF NOT EXISTS memgpt_documents_text_scope_fts_idx ON memgpt_documents USING gin ((to_tsvector('english'::regconfig, left(coalesce(text, ''), 200000)) || array_to_tsvector(ARRAY['u' || replace(user_id::text, '-', '')])));
DROP INDEX IF EXISTS memgpt_documents_text_fts_idx;

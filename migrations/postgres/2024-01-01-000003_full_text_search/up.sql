-- Full-text search: a GIN expression index per table over the first 200,000 characters of
-- the text (a tsvector holds at most 1 MiB, which a longer text of distinct words would
-- exceed, making the record unstorable; 200,000 characters can never exceed it, see
-- docs/COMPATIBILITY.md). Matched by queries of the form
-- to_tsvector('english', left(coalesce(text, ''), 200000)) @@ plainto_tsquery('english', $1).
CREATE TABLE IF NOT EXISTS __memgpt_store_owned_indexes (
    name text PRIMARY KEY,
    migration text NOT NULL
);
INSERT INTO __memgpt_store_owned_indexes (name, migration)
SELECT v.name, '2024-01-01-000003_full_text_search' FROM (VALUES ('memgpt_recall_memory_agent_text_fts_idx'), ('memgpt_archival_memory_agent_text_fts_idx'), ('memgpt_passages_text_fts_idx'), ('memgpt_documents_text_fts_idx')) AS v(name)
WHERE to_regclass(v.name) IS NULL
ON CONFLICT (name) DO NOTHING;
CREATE INDEX IF NOT EXISTS memgpt_recall_memory_agent_text_fts_idx ON memgpt_recall_memory_agent USING gin (to_tsvector('english'::regconfig, left(coalesce(text, ''), 200000)));
CREATE INDEX IF NOT EXISTS memgpt_archival_memory_agent_text_fts_idx ON memgpt_archival_memory_agent USING gin (to_tsvector('english'::regconfig, left(coalesce(text, ''), 200000)));
CREATE INDEX IF NOT EXISTS memgpt_passages_text_fts_idx ON memgpt_passages USING gin (to_tsvector('english'::regconfig, left(coalesce(text, ''), 200000)));
CREATE INDEX IF NOT EXISTS memgpt_documents_text_fts_idx ON memgpt_documents USING gin (to_tsvector('english'::regconfig, left(coalesce(text, ''), 200000)));

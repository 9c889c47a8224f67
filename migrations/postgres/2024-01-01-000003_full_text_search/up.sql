-- Full-text search: a GIN expression index per table, matched by queries of the form
-- to_tsvector('english', coalesce(text, '')) @@ websearch_to_tsquery('english', $1).
CREATE INDEX IF NOT EXISTS memgpt_recall_memory_agent_text_fts_idx ON memgpt_recall_memory_agent USING gin (to_tsvector('english'::regconfig, coalesce(text, '')));
CREATE INDEX IF NOT EXISTS memgpt_archival_memory_agent_text_fts_idx ON memgpt_archival_memory_agent USING gin (to_tsvector('english'::regconfig, coalesce(text, '')));
CREATE INDEX IF NOT EXISTS memgpt_passages_text_fts_idx ON memgpt_passages USING gin (to_tsvector('english'::regconfig, coalesce(text, '')));
CREATE INDEX IF NOT EXISTS memgpt_documents_text_fts_idx ON memgpt_documents USING gin (to_tsvector('english'::regconfig, coalesce(text, '')));

-- Every index of the seed: single-column user_id, agent_id, created_at, role,
-- tool_call_id, data_source, doc_id; composite (user_id, agent_id), (user_id, created_at
-- DESC), (agent_id, created_at DESC), (role, created_at DESC), wherever the table has the
-- columns. The created_at composites end in id, the tie-breaker of the stable
-- (created_at, id) order, so keyset pages are read in index order with no sort.
-- IF NOT EXISTS: also applies to a database MemGPT created (it had no secondary index).
-- Which of these indexes this migration creates (rather than finds, made by the operator
-- or by MemGPT): `migrate down` drops only those.
CREATE TABLE IF NOT EXISTS __memgpt_store_owned_indexes (
    name text PRIMARY KEY,
    migration text NOT NULL
);
INSERT INTO __memgpt_store_owned_indexes (name, migration)
SELECT v.name, '2024-01-01-000002_create_indexes' FROM (VALUES
    ('memgpt_recall_memory_agent_user_id_idx'),
    ('memgpt_recall_memory_agent_agent_id_idx'),
    ('memgpt_recall_memory_agent_created_at_idx'),
    ('memgpt_recall_memory_agent_role_idx'),
    ('memgpt_recall_memory_agent_tool_call_id_idx'),
    ('memgpt_recall_memory_agent_user_id_agent_id_idx'),
    ('memgpt_recall_memory_agent_user_id_created_at_idx'),
    ('memgpt_recall_memory_agent_agent_id_created_at_idx'),
    ('memgpt_recall_memory_agent_role_created_at_idx'),
    ('memgpt_archival_memory_agent_user_id_idx'),
    ('memgpt_archival_memory_agent_agent_id_idx'),
    ('memgpt_archival_memory_agent_created_at_idx'),
    ('memgpt_archival_memory_agent_data_source_idx'),
    ('memgpt_archival_memory_agent_doc_id_idx'),
    ('memgpt_archival_memory_agent_user_id_agent_id_idx'),
    ('memgpt_archival_memory_agent_user_id_created_at_idx'),
    ('memgpt_archival_memory_agent_agent_id_created_at_idx'),
    ('memgpt_passages_user_id_idx'),
    ('memgpt_passages_agent_id_idx'),
    ('memgpt_passages_created_at_idx'),
    ('memgpt_passages_data_source_idx'),
    ('memgpt_passages_doc_id_idx'),
    ('memgpt_passages_user_id_agent_id_idx'),
    ('memgpt_passages_user_id_created_at_idx'),
    ('memgpt_passages_agent_id_created_at_idx'),
    ('memgpt_documents_user_id_idx'),
    ('memgpt_documents_created_at_idx'),
    ('memgpt_documents_data_source_idx'),
    ('memgpt_documents_user_id_created_at_idx')
) AS v(name)
WHERE to_regclass(v.name) IS NULL
ON CONFLICT (name) DO NOTHING;
CREATE INDEX IF NOT EXISTS memgpt_recall_memory_agent_user_id_idx ON memgpt_recall_memory_agent (user_id);
CREATE INDEX IF NOT EXISTS memgpt_recall_memory_agent_agent_id_idx ON memgpt_recall_memory_agent (agent_id);
CREATE INDEX IF NOT EXISTS memgpt_recall_memory_agent_created_at_idx ON memgpt_recall_memory_agent (created_at);
CREATE INDEX IF NOT EXISTS memgpt_recall_memory_agent_role_idx ON memgpt_recall_memory_agent (role);
CREATE INDEX IF NOT EXISTS memgpt_recall_memory_agent_tool_call_id_idx ON memgpt_recall_memory_agent (tool_call_id);
CREATE INDEX IF NOT EXISTS memgpt_recall_memory_agent_user_id_agent_id_idx ON memgpt_recall_memory_agent (user_id, agent_id);
CREATE INDEX IF NOT EXISTS memgpt_recall_memory_agent_user_id_created_at_idx ON memgpt_recall_memory_agent (user_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS memgpt_recall_memory_agent_agent_id_created_at_idx ON memgpt_recall_memory_agent (agent_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS memgpt_recall_memory_agent_role_created_at_idx ON memgpt_recall_memory_agent (role, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS memgpt_archival_memory_agent_user_id_idx ON memgpt_archival_memory_agent (user_id);
CREATE INDEX IF NOT EXISTS memgpt_archival_memory_agent_agent_id_idx ON memgpt_archival_memory_agent (agent_id);
CREATE INDEX IF NOT EXISTS memgpt_archival_memory_agent_created_at_idx ON memgpt_archival_memory_agent (created_at);
CREATE INDEX IF NOT EXISTS memgpt_archival_memory_agent_data_source_idx ON memgpt_archival_memory_agent (data_source);
CREATE INDEX IF NOT EXISTS memgpt_archival_memory_agent_doc_id_idx ON memgpt_archival_memory_agent (doc_id);
CREATE INDEX IF NOT EXISTS memgpt_archival_memory_agent_user_id_agent_id_idx ON memgpt_archival_memory_agent (user_id, agent_id);
CREATE INDEX IF NOT EXISTS memgpt_archival_memory_agent_user_id_created_at_idx ON memgpt_archival_memory_agent (user_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS memgpt_archival_memory_agent_agent_id_created_at_idx ON memgpt_archival_memory_agent (agent_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS memgpt_passages_user_id_idx ON memgpt_passages (user_id);
CREATE INDEX IF NOT EXISTS memgpt_passages_agent_id_idx ON memgpt_passages (agent_id);
CREATE INDEX IF NOT EXISTS memgpt_passages_created_at_idx ON memgpt_passages (created_at);
CREATE INDEX IF NOT EXISTS memgpt_passages_data_source_idx ON memgpt_passages (data_source);
CREATE INDEX IF NOT EXISTS memgpt_passages_doc_id_idx ON memgpt_passages (doc_id);
CREATE INDEX IF NOT EXISTS memgpt_passages_user_id_agent_id_idx ON memgpt_passages (user_id, agent_id);
CREATE INDEX IF NOT EXISTS memgpt_passages_user_id_created_at_idx ON memgpt_passages (user_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS memgpt_passages_agent_id_created_at_idx ON memgpt_passages (agent_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS memgpt_documents_user_id_idx ON memgpt_documents (user_id);
CREATE INDEX IF NOT EXISTS memgpt_documents_created_at_idx ON memgpt_documents (created_at);
CREATE INDEX IF NOT EXISTS memgpt_documents_data_source_idx ON memgpt_documents (data_source);
CREATE INDEX IF NOT EXISTS memgpt_documents_user_id_created_at_idx ON memgpt_documents (user_id, created_at DESC, id DESC);

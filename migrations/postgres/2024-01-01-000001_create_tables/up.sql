-- The tables of MemGPT 0.3.x, with its column types: uuid, varchar, json (not jsonb),
-- timestamptz, and vector(4096) holding embeddings zero-padded to 4096 with the true
-- dimension in embedding_dim. Where the pgvector extension is not available the embedding
-- column is real[] instead and vector search reports itself unavailable.
-- IF NOT EXISTS: the migration also applies to a database MemGPT created.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS vector;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'memgpt-store: no privilege to create extension vector; vector search disabled';
        END;
    END IF;
END $$;

DO $$
DECLARE
    emb text := CASE WHEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')
                     THEN 'vector(4096)' ELSE 'real[]' END;
BEGIN
    EXECUTE format('CREATE TABLE IF NOT EXISTS memgpt_recall_memory_agent (
        id uuid PRIMARY KEY,
        user_id uuid NOT NULL,
        agent_id uuid NOT NULL,
        role varchar NOT NULL,
        text varchar,
        model varchar,
        name varchar,
        tool_calls json,
        tool_call_id varchar,
        embedding %s,
        embedding_dim bigint,
        embedding_model varchar,
        created_at timestamptz
    )', emb);
    EXECUTE format('CREATE TABLE IF NOT EXISTS memgpt_archival_memory_agent (
        id uuid PRIMARY KEY,
        user_id uuid NOT NULL,
        text varchar,
        doc_id uuid,
        agent_id uuid,
        data_source varchar,
        embedding %s,
        embedding_dim bigint,
        embedding_model varchar,
        metadata_ json,
        created_at timestamptz
    )', emb);
    EXECUTE format('CREATE TABLE IF NOT EXISTS memgpt_passages (
        id uuid PRIMARY KEY,
        user_id uuid NOT NULL,
        text varchar,
        doc_id uuid,
        agent_id uuid,
        data_source varchar,
        embedding %s,
        embedding_dim bigint,
        embedding_model varchar,
        metadata_ json,
        created_at timestamptz
    )', emb);
END $$;

CREATE TABLE IF NOT EXISTS memgpt_documents (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    text varchar,
    data_source varchar,
    metadata_ json,
    created_at timestamptz
);

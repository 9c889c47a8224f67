-- The tables of MemGPT 0.3.x. Recall memory keeps MemGPT's own SQLite encoding (uuid as
-- 36-character text, created_at as 'YYYY-MM-DD HH:MM:SS.ffffff', embeddings as base64 of
-- float32 bytes) so that a MemGPT-created file is read and written as it is. Archival
-- memory, passages and documents are new on SQLite: their embeddings are raw
-- little-endian float32 bytes of the true dimension, for fast exact vector search.
-- IF NOT EXISTS: the migration also applies to a database MemGPT created.
CREATE TABLE IF NOT EXISTS memgpt_recall_memory_agent (
    id CHAR(36) NOT NULL,
    user_id CHAR(36) NOT NULL,
    agent_id CHAR(36) NOT NULL,
    role VARCHAR NOT NULL,
    text VARCHAR,
    model VARCHAR,
    name VARCHAR,
    tool_calls JSON,
    tool_call_id VARCHAR,
    embedding BLOB,
    embedding_dim BIGINT,
    embedding_model VARCHAR,
    created_at DATETIME,
    PRIMARY KEY (id)
);
CREATE TABLE IF NOT EXISTS memgpt_archival_memory_agent (
    id CHAR(36) NOT NULL,
    user_id CHAR(36) NOT NULL,
    text VARCHAR,
    doc_id CHAR(36),
    agent_id CHAR(36),
    data_source VARCHAR,
    embedding BLOB,
    embedding_dim BIGINT,
    embedding_model VARCHAR,
    metadata_ JSON,
    created_at DATETIME,
    PRIMARY KEY (id)
);
CREATE TABLE IF NOT EXISTS memgpt_passages (
    id CHAR(36) NOT NULL,
    user_id CHAR(36) NOT NULL,
    text VARCHAR,
    doc_id CHAR(36),
    agent_id CHAR(36),
    data_source VARCHAR,
    embedding BLOB,
    embedding_dim BIGINT,
    embedding_model VARCHAR,
    metadata_ JSON,
    created_at DATETIME,
    PRIMARY KEY (id)
);
CREATE TABLE IF NOT EXISTS memgpt_documents (
    id CHAR(36) NOT NULL,
    user_id CHAR(36) NOT NULL,
    text VARCHAR,
    data_source VARCHAR,
    metadata_ JSON,
    created_at DATETIME,
    PRIMARY KEY (id)
);

ALTER TABLE memgpt_archival_memory_agent DROP COLUMN IF EXISTS embedding_compact;
ALTER TABLE memgpt_passages DROP COLUMN IF EXISTS embedding_compact;

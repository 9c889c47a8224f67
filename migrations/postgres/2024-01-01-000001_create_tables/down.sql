DROP TABLE IF EXISTS memgpt_recall_memory_agent;
DROP TABLE IF EXISTS memgpt_archival_memory_agent;
DROP TABLE IF EXISTS memgpt_passages;
DROP TABLE IF EXISTS memgpt_documents;
-- The vector extension is left installed: other schemas may use it.

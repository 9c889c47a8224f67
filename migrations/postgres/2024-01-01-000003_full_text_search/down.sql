DROP INDEX IF EXISTS memgpt_recall_memory_agent_text_fts_idx;
DROP INDEX IF EXISTS memgpt_archival_memory_agent_text_fts_idx;
DROP INDEX IF EXISTS memgpt_passages_text_fts_idx;
DROP INDEX IF EXISTS memgpt_documents_text_fts_idx;

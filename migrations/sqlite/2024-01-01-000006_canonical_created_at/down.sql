-- The triggers go; rows already rewritten keep the canonical text of the same instant.
DROP TRIGGER IF EXISTS memgpt_recall_memory_agent_created_at_ai;
DROP TRIGGER IF EXISTS memgpt_recall_memory_agent_created_at_au;
DROP TRIGGER IF EXISTS memgpt_archival_memory_agent_created_at_ai;
DROP TRIGGER IF EXISTS memgpt_archival_memory_agent_created_at_au;
DROP TRIGGER IF EXISTS memgpt_passages_created_at_ai;
DROP TRIGGER IF EXISTS memgpt_passages_created_at_au;
DROP TRIGGER IF EXISTS memgpt_documents_created_at_ai;
DROP TRIGGER IF EXISTS memgpt_documents_created_at_au;

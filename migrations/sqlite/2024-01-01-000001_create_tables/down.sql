DROP TABLE IF EXISTS memgpt_recall_memory_agent;
DROP TABLE IF EXISTS memgpt_archival_memory_agent;
DROP TABLE IF EXISTS memgpt_passages;
DROP TABLE IF EXISTS memgpt_documents;

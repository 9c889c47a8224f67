-- Full-text search: an FTS5 index over each table's text, kept in step by triggers
-- (external content on the rowid), porter stemming over unicode61 with diacritics folded.
-- The 'rebuild' indexes rows that exist already (a MemGPT-created database).
CREATE VIRTUAL TABLE IF NOT EXISTS memgpt_recall_memory_agent_fts USING fts5(
    text, content='memgpt_recall_memory_agent', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS memgpt_recall_memory_agent_fts_ai AFTER INSERT ON memgpt_recall_memory_agent BEGIN
    INSERT INTO memgpt_recall_memory_agent_fts(rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER IF NOT EXISTS memgpt_recall_memory_agent_fts_ad AFTER DELETE ON memgpt_recall_memory_agent BEGIN
    INSERT INTO memgpt_recall_memory_agent_fts(memgpt_recall_memory_agent_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER IF NOT EXISTS memgpt_recall_memory_agent_fts_au AFTER UPDATE OF text ON memgpt_recall_memory_agent BEGIN
    INSERT INTO memgpt_recall_memory_agent_fts(memgpt_recall_memory_agent_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO memgpt_recall_memory_agent_fts(rowid, text) VALUES (new.rowid, new.text);
END;
INSERT INTO memgpt_recall_memory_agent_fts(memgpt_recall_memory_agent_fts) VALUES ('rebuild');
CREATE VIRTUAL TABLE IF NOT EXISTS memgpt_archival_memory_agent_fts USING fts5(
    text, content='memgpt_archival_memory_agent', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS memgpt_archival_memory_agent_fts_ai AFTER INSERT ON memgpt_archival_memory_agent BEGIN
    INSERT INTO memgpt_archival_memory_agent_fts(rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER IF NOT EXISTS memgpt_archival_memory_agent_fts_ad AFTER DELETE ON memgpt_archival_memory_agent BEGIN
    INSERT INTO memgpt_archival_memory_agent_fts(memgpt_archival_memory_agent_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER IF NOT EXISTS memgpt_archival_memory_agent_fts_au AFTER UPDATE OF text ON memgpt_archival_memory_agent BEGIN
    INSERT INTO memgpt_archival_memory_agent_fts(memgpt_archival_memory_agent_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO memgpt_archival_memory_agent_fts(rowid, text) VALUES (new.rowid, new.text);
END;
INSERT INTO memgpt_archival_memory_agent_fts(memgpt_archival_memory_agent_fts) VALUES ('rebuild');
CREATE VIRTUAL TABLE IF NOT EXISTS memgpt_passages_fts USING fts5(
    text, content='memgpt_passages', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS memgpt_passages_fts_ai AFTER INSERT ON memgpt_passages BEGIN
    INSERT INTO memgpt_passages_fts(rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER IF NOT EXISTS memgpt_passages_fts_ad AFTER DELETE ON memgpt_passages BEGIN
    INSERT INTO memgpt_passages_fts(memgpt_passages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER IF NOT EXISTS memgpt_passages_fts_au AFTER UPDATE OF text ON memgpt_passages BEGIN
    INSERT INTO memgpt_passages_fts(memgpt_passages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO memgpt_passages_fts(rowid, text) VALUES (new.rowid, new.text);
END;
INSERT INTO memgpt_passages_fts(memgpt_passages_fts) VALUES ('rebuild');
CREATE VIRTUAL TABLE IF NOT EXISTS memgpt_documents_fts USING fts5(
    text, content='memgpt_documents', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS memgpt_documents_fts_ai AFTER INSERT ON memgpt_documents BEGIN
    INSERT INTO memgpt_documents_fts(rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER IF NOT EXISTS memgpt_documents_fts_ad AFTER DELETE ON memgpt_documents BEGIN
    INSERT INTO memgpt_documents_fts(memgpt_documents_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER IF NOT EXISTS memgpt_documents_fts_au AFTER UPDATE OF text ON memgpt_documents BEGIN
    INSERT INTO memgpt_documents_fts(memgpt_documents_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO memgpt_documents_fts(rowid, text) VALUES (new.rowid, new.text);
END;
INSERT INTO memgpt_documents_fts(memgpt_documents_fts) VALUES ('rebuild');

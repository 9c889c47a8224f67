-- Back to migration 000005's shape: porter stemming, the letters not spelt out.
DROP TRIGGER IF EXISTS memgpt_recall_memory_agent_fts_ai;
DROP TRIGGER IF EXISTS memgpt_recall_memory_agent_fts_ad;
DROP TRIGGER IF EXISTS memgpt_recall_memory_agent_fts_au;
DROP TABLE IF EXISTS memgpt_recall_memory_agent_fts;
DROP VIEW IF EXISTS memgpt_recall_memory_agent_fts_source;
CREATE VIEW memgpt_recall_memory_agent_fts_source AS SELECT rowid AS rid, substr(text, 1, 200000) AS text, 'u' || replace(user_id, '-', '') || ' a' || replace(coalesce(agent_id, ''), '-', '') AS scope FROM memgpt_recall_memory_agent;
CREATE VIRTUAL TABLE memgpt_recall_memory_agent_fts USING fts5(
    text, scope, content='memgpt_recall_memory_agent_fts_source', content_rowid='rid', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER memgpt_recall_memory_agent_fts_ai AFTER INSERT ON memgpt_recall_memory_agent BEGIN
    INSERT INTO memgpt_recall_memory_agent_fts(rowid, text, scope) VALUES (new.rowid, substr(new.text, 1, 200000), 'u' || replace(new.user_id, '-', '') || ' a' || replace(coalesce(new.agent_id, ''), '-', ''));
END;
CREATE TRIGGER memgpt_recall_memory_agent_fts_ad AFTER DELETE ON memgpt_recall_memory_agent BEGIN
    INSERT INTO memgpt_recall_memory_agent_fts(memgpt_recall_memory_agent_fts, rowid, text, scope) VALUES ('delete', old.rowid, substr(old.text, 1, 200000), 'u' || replace(old.user_id, '-', '') || ' a' || replace(coalesce(old.agent_id, ''), '-', ''));
END;
CREATE TRIGGER memgpt_recall_memory_agent_fts_au AFTER UPDATE OF text, user_id, agent_id ON memgpt_recall_memory_agent BEGIN
    INSERT INTO memgpt_recall_memory_agent_fts(memgpt_recall_memory_agent_fts, rowid, text, scope) VALUES ('delete', old.rowid, substr(old.text, 1, 200000), 'u' || replace(old.user_id, '-', '') || ' a' || replace(coalesce(old.agent_id, ''), '-', ''));
    INSERT INTO memgpt_recall_memory_agent_fts(rowid, text, scope) VALUES (new.rowid, substr(new.text, 1, 200000), 'u' || replace(new.user_id, '-', '') || ' a' || replace(coalesce(new.agent_id, ''), '-', ''));
END;
INSERT INTO memgpt_recall_memory_agent_fts(memgpt_recall_memory_agent_fts) VALUES ('rebuild');
DROP TRIGGER IF EXISTS memgpt_archival_memory_agent_fts_ai;
DROP TRIGGER IF EXISTS memgpt_archival_memory_agent_fts_ad;
DROP TRIGGER IF EXISTS memgpt_archival_memory_agent_fts_au;
DROP TABLE IF EXISTS memgpt_archival_memory_agent_fts;
DROP VIEW IF EXISTS memgpt_archival_memory_agent_fts_source;
CREATE VIEW memgpt_archival_memory_agent_fts_source AS SELECT rowid AS rid, substr(text, 1, 200000) AS text, 'u' || replace(user_id, '-', '') || ' a' || replace(coalesce(agent_id, ''), '-', '') AS scope FROM memgpt_archival_memory_agent;
CREATE VIRTUAL TABLE memgpt_archival_memory_agent_fts USING fts5(
    text, scope, content='memgpt_archival_memory_agent_fts_source', content_rowid='rid', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER memgpt_archival_memory_agent_fts_ai AFTER INSERT ON memgpt_archival_memory_agent BEGIN
    INSERT INTO memgpt_archival_memory_agent_fts(rowid, text, scope) VALUES (new.rowid, substr(new.text, 1, 200000), 'u' || replace(new.user_id, '-', '') || ' a' || replace(coalesce(new.agent_id, ''), '-', ''));
END;
CREATE TRIGGER memgpt_archival_memory_agent_fts_ad AFTER DELETE ON memgpt_archival_memory_agent BEGIN
    INSERT INTO memgpt_archival_memory_agent_fts(memgpt_archival_memory_agent_fts, rowid, text, scope) VALUES ('delete', old.rowid, substr(old.text, 1, 200000), 'u' || replace(old.user_id, '-', '') || ' a' || replace(coalesce(old.agent_id, ''), '-', ''));
END;
CREATE TRIGGER memgpt_archival_memory_agent_fts_au AFTER UPDATE OF text, user_id, agent_id ON memgpt_archival_memory_agent BEGIN
    INSERT INTO memgpt_archival_memory_agent_fts(memgpt_archival_memory_agent_fts, rowid, text, scope) VALUES ('delete', old.rowid, substr(old.text, 1, 200000), 'u' || replace(old.user_id, '-', '') || ' a' || replace(coalesce(old.agent_id, ''), '-', ''));
    INSERT INTO memgpt_archival_memory_agent_fts(rowid, text, scope) VALUES (new.rowid, substr(new.text, 1, 200000), 'u' || replace(new.user_id, '-', '') || ' a' || replace(coalesce(new.agent_id, ''), '-', ''));
END;
INSERT INTO memgpt_archival_memory_agent_fts(memgpt_archival_memory_agent_fts) VALUES ('rebuild');
DROP TRIGGER IF EXISTS memgpt_passages_fts_ai;
DROP TRIGGER IF EXISTS memgpt_passages_fts_ad;
DROP TRIGGER IF EXISTS memgpt_passages_fts_au;
DROP TABLE IF EXISTS memgpt_passages_fts;
DROP VIEW IF EXISTS memgpt_passages_fts_source;
CREATE VIEW memgpt_passages_fts_source AS SELECT rowid AS rid, substr(text, 1, 200000) AS text, 'u' || replace(user_id, '-', '') || ' a' || replace(coalesce(agent_id, ''), '-', '') AS scope FROM memgpt_passages;
CREATE VIRTUAL TABLE memgpt_passages_fts USING fts5(
    text, scope, content='memgpt_passages_fts_source', content_rowid='rid', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER memgpt_passages_fts_ai AFTER INSERT ON memgpt_passages BEGIN
    INSERT INTO memgpt_passages_fts(rowid, text, scope) VALUES (new.rowid, substr(new.text, 1, 200000), 'u' || replace(new.user_id, '-', '') || ' a' || replace(coalesce(new.agent_id, ''), '-', ''));
END;
CREATE TRIGGER memgpt_passages_fts_ad AFTER DELETE ON memgpt_passages BEGIN
    INSERT INTO memgpt_passages_fts(memgpt_passages_fts, rowid, text, scope) VALUES ('delete', old.rowid, substr(old.text, 1, 200000), 'u' || replace(old.user_id, '-', '') || ' a' || replace(coalesce(old.agent_id, ''), '-', ''));
END;
CREATE TRIGGER memgpt_passages_fts_au AFTER UPDATE OF text, user_id, agent_id ON memgpt_passages BEGIN
    INSERT INTO memgpt_passages_fts(memgpt_passages_fts, rowid, text, scope) VALUES ('delete', old.rowid, substr(old.text, 1, 200000), 'u' || replace(old.user_id, '-', '') || ' a' || replace(coalesce(old.agent_id, ''), '-', ''));
    INSERT INTO memgpt_passages_fts(rowid, text, scope) VALUES (new.rowid, substr(new.text, 1, 200000), 'u' || replace(new.user_id, '-', '') || ' a' || replace(coalesce(new.agent_id, ''), '-', ''));
END;
INSERT INTO memgpt_passages_fts(memgpt_passages_fts) VALUES ('rebuild');
DROP TRIGGER IF EXISTS memgpt_documents_fts_ai;
DROP TRIGGER IF EXISTS memgpt_documents_fts_ad;
DROP TRIGGER IF EXISTS memgpt_documents_fts_au;
DROP TABLE IF EXISTS memgpt_documents_fts;
DROP VIEW IF EXISTS memgpt_documents_fts_source;
CREATE VIEW memgpt_documents_fts_source AS SELECT rowid AS rid, substr(text, 1, 200000) AS text, 'u' || replace(user_id, '-', '') AS scope FROM memgpt_documents;
CREATE VIRTUAL TABLE memgpt_documents_fts USING fts5(
    text, scope, content='memgpt_documents_fts_source', content_rowid='rid', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER memgpt_documents_fts_ai AFTER INSERT ON memgpt_documents BEGIN
    INSERT INTO memgpt_documents_fts(rowid, text, scope) VALUES (new.rowid, substr(new.text, 1, 200000), 'u' || replace(new.user_id, '-', ''));
END;
CREATE TRIGGER memgpt_documents_fts_ad AFTER DELETE ON memgpt_documents BEGIN
    INSERT INTO memgpt_documents_fts(memgpt_documents_fts, rowid, text, scope) VALUES ('delete', old.rowid, substr(old.text, 1, 200000), 'u' || replace(old.user_id, '-', ''));
END;
CREATE TRIGGER memgpt_documents_fts_au AFTER UPDATE OF text, user_id ON memgpt_documents BEGIN
    INSERT INTO memgpt_documents_fts(memgpt_documents_fts, rowid, text, scope) VALUES ('delete', old.rowid, substr(old.text, 1, 200000), 'u' || replace(old.user_id, '-', ''));
    INSERT INTO memgpt_documents_fts(rowid, text, scope) VALUES (new.rowid, substr(new.text, 1, 200000), 'u' || replace(new.user_id, '-', ''));
END;
INSERT INTO memgpt_documents_fts(memgpt_documents_fts) VALUES ('rebuild');

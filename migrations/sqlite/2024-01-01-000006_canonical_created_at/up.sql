-- created_at as one text form: 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC, the form SQLAlchemy
-- (MemGPT) and this library write, which sorts as text in time order. Other writers store
-- other forms in the same column -- MemGPT's column default CURRENT_TIMESTAMP
-- 'YYYY-MM-DD HH:MM:SS', ISO tools 'YYYY-MM-DDTHH:MM:SS', 'Z', '+02:00', other fractions --
-- which compare wrongly as text: orders, keyset pages and date windows broke on them.
-- This migration rewrites the existing rows, and triggers rewrite whatever another tool
-- inserts or updates later, so the column holds one form and the created_at indexes keep
-- serving every read by time.
--
-- Accepted (and rewritten as the same instant): 'YYYY-MM-DD' (midnight) and
-- 'YYYY-MM-DD HH:MM[:SS[.f…]]' with ' ' or 'T' between date and time, then optionally
-- 'Z' or '±HH:MM' (converted to UTC), as SQLite's date functions read them; the fraction
-- is carried over digit for digit, padded or cut to 6 (microseconds). Anything else (NULL,
-- numbers, other text, an impossible date such as 2024-02-30 or hour 24) is left as it is
-- and reads back as a typed error naming the column.
--
-- Built-in functions only (strftime, date, substr, ltrim, typeof, GLOB): MemGPT's own
-- Python connection, which registers nothing, runs these triggers too.
--
-- A canonical value fails the WHEN clause at its first test and costs no UPDATE. That test
-- is a cheap shape, '?????????? ????????.' and six digits (a GLOB of '[0-9]' classes at
-- every digit costs 3.6 times as much): among the values the rest of the clause accepts,
-- which have digits, '-' and ':' where a date and time have them, it holds exactly for
-- the canonical ones ('T' at position 11, a shorter fraction followed by 'Z', ' ' or an
-- offset all fail it); a value that passes it without being canonical would not be
-- accepted anyway.
UPDATE memgpt_recall_memory_agent SET created_at = strftime('%Y-%m-%d %H:%M:%S', created_at) || '.' || CASE WHEN substr(created_at, 20, 1) = '.' THEN substr(substr(created_at, 21, length(substr(created_at, 21, 6)) - length(ltrim(substr(created_at, 21, 6), '0123456789'))) || '000000', 1, 6) ELSE '000000' END
    WHERE created_at NOT GLOB '?????????? ????????.[0-9][0-9][0-9][0-9][0-9][0-9]' AND typeof(created_at) = 'text' AND (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' OR created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][ T][0-9][0-9]:[0-9][0-9]*') AND strftime('%Y-%m-%d %H:%M:%S', created_at) IS NOT NULL AND date(substr(created_at, 1, 10), '+0 days') = substr(created_at, 1, 10) AND substr(created_at, 12, 2) < '24';
UPDATE memgpt_archival_memory_agent SET created_at = strftime('%Y-%m-%d %H:%M:%S', created_at) || '.' || CASE WHEN substr(created_at, 20, 1) = '.' THEN substr(substr(created_at, 21, length(substr(created_at, 21, 6)) - length(ltrim(substr(created_at, 21, 6), '0123456789'))) || '000000', 1, 6) ELSE '000000' END
    WHERE created_at NOT GLOB '?????????? ????????.[0-9][0-9][0-9][0-9][0-9][0-9]' AND typeof(created_at) = 'text' AND (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' OR created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][ T][0-9][0-9]:[0-9][0-9]*') AND strftime('%Y-%m-%d %H:%M:%S', created_at) IS NOT NULL AND date(substr(created_at, 1, 10), '+0 days') = substr(created_at, 1, 10) AND substr(created_at, 12, 2) < '24';
UPDATE memgpt_passages SET created_at = strftime('%Y-%m-%d %H:%M:%S', created_at) || '.' || CASE WHEN substr(created_at, 20, 1) = '.' THEN substr(substr(created_at, 21, length(substr(created_at, 21, 6)) - length(ltrim(substr(created_at, 21, 6), '0123456789'))) || '000000', 1, 6) ELSE '000000' END
    WHERE created_at NOT GLOB '?????????? ????????.[0-9][0-9][0-9][0-9][0-9][0-9]' AND typeof(created_at) = 'text' AND (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' OR created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][ T][0-9][0-9]:[0-9][0-9]*') AND strftime('%Y-%m-%d %H:%M:%S', created_at) IS NOT NULL AND date(substr(created_at, 1, 10), '+0 days') = substr(created_at, 1, 10) AND substr(created_at, 12, 2) < '24';
UPDATE memgpt_documents SET created_at = strftime('%Y-%m-%d %H:%M:%S', created_at) || '.' || CASE WHEN substr(created_at, 20, 1) = '.' THEN substr(substr(created_at, 21, length(substr(created_at, 21, 6)) - length(ltrim(substr(created_at, 21, 6), '0123456789'))) || '000000', 1, 6) ELSE '000000' END
    WHERE created_at NOT GLOB '?????????? ????????.[0-9][0-9][0-9][0-9][0-9][0-9]' AND typeof(created_at) = 'text' AND (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' OR created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][ T][0-9][0-9]:[0-9][0-9]*') AND strftime('%Y-%m-%d %H:%M:%S', created_at) IS NOT NULL AND date(substr(created_at, 1, 10), '+0 days') = substr(created_at, 1, 10) AND substr(created_at, 12, 2) < '24';
CREATE TRIGGER IF NOT EXISTS memgpt_recall_memory_agent_created_at_ai AFTER INSERT ON memgpt_recall_memory_agent
    WHEN new.created_at NOT GLOB '?????????? ????????.[0-9][0-9][0-9][0-9][0-9][0-9]' AND typeof(new.created_at) = 'text' AND (new.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' OR new.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][ T][0-9][0-9]:[0-9][0-9]*') AND strftime('%Y-%m-%d %H:%M:%S', new.created_at) IS NOT NULL AND date(substr(new.created_at, 1, 10), '+0 days') = substr(new.created_at, 1, 10) AND substr(new.created_at, 12, 2) < '24'
BEGIN
    UPDATE memgpt_recall_memory_agent SET created_at = strftime('%Y-%m-%d %H:%M:%S', new.created_at) || '.' || CASE WHEN substr(new.created_at, 20, 1) = '.' THEN substr(substr(new.created_at, 21, length(substr(new.created_at, 21, 6)) - length(ltrim(substr(new.created_at, 21, 6), '0123456789'))) || '000000', 1, 6) ELSE '000000' END WHERE rowid = new.rowid;
END;
CREATE TRIGGER IF NOT EXISTS memgpt_recall_memory_agent_created_at_au AFTER UPDATE OF created_at ON memgpt_recall_memory_agent
    WHEN new.created_at NOT GLOB '?????????? ????????.[0-9][0-9][0-9][0-9][0-9][0-9]' AND typeof(new.created_at) = 'text' AND (new.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' OR new.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][ T][0-9][0-9]:[0-9][0-9]*') AND strftime('%Y-%m-%d %H:%M:%S', new.created_at) IS NOT NULL AND date(substr(new.created_at, 1, 10), '+0 days') = substr(new.created_at, 1, 10) AND substr(new.created_at, 12, 2) < '24'
BEGIN
    UPDATE memgpt_recall_memory_agent SET created_at = strftime('%Y-%m-%d %H:%M:%S', new.created_at) || '.' || CASE WHEN substr(new.created_at, 20, 1) = '.' THEN substr(substr(new.created_at, 21, length(substr(new.created_at, 21, 6)) - length(ltrim(substr(new.created_at, 21, 6), '0123456789'))) || '000000', 1, 6) ELSE '000000' END WHERE rowid = new.rowid;
END;
CREATE TRIGGER IF NOT EXISTS memgpt_archival_memory_agent_created_at_ai AFTER INSERT ON memgpt_archival_memory_agent
    WHEN new.created_at NOT GLOB '?????????? ????????.[0-9][0-9][0-9][0-9][0-9][0-9]' AND typeof(new.created_at) = 'text' AND (new.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' OR new.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][ T][0-9][0-9]:[0-9][0-9]*') AND strftime('%Y-%m-%d %H:%M:%S', new.created_at) IS NOT NULL AND date(substr(new.created_at, 1, 10), '+0 days') = substr(new.created_at, 1, 10) AND substr(new.created_at, 12, 2) < '24'
BEGIN
    UPDATE memgpt_archival_memory_agent SET created_at = strftime('%Y-%m-%d %H:%M:%S', new.created_at) || '.' || CASE WHEN substr(new.created_at, 20, 1) = '.' THEN substr(substr(new.created_at, 21, length(substr(new.created_at, 21, 6)) - length(ltrim(substr(new.created_at, 21, 6), '0123456789'))) || '000000', 1, 6) ELSE '000000' END WHERE rowid = new.rowid;
END;
CREATE TRIGGER IF NOT EXISTS memgpt_archival_memory_agent_created_at_au AFTER UPDATE OF created_at ON memgpt_archival_memory_agent
    WHEN new.created_at NOT GLOB '?????????? ????????.[0-9][0-9][0-9][0-9][0-9][0-9]' AND typeof(new.created_at) = 'text' AND (new.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' OR new.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][ T][0-9][0-9]:[0-9][0-9]*') AND strftime('%Y-%m-%d %H:%M:%S', new.created_at) IS NOT NULL AND date(substr(new.created_at, 1, 10), '+0 days') = substr(new.created_at, 1, 10) AND substr(new.created_at, 12, 2) < '24'
BEGIN
    UPDATE memgpt_archival_memory_agent SET created_at = strftime('%Y-%m-%d %H:%M:%S', new.created_at) || '.' || CASE WHEN substr(new.created_at, 20, 1) = '.' THEN substr(substr(new.created_at, 21, length(substr(new.created_at, 21, 6)) - length(ltrim(substr(new.created_at, 21, 6), '0123456789'))) || '000000', 1, 6) ELSE '000000' END WHERE rowid = new.rowid;
END;
CREATE TRIGGER IF NOT EXISTS memgpt_passages_created_at_ai AFTER INSERT ON memgpt_passages
    WHEN new.created_at NOT GLOB '?????????? ????????.[0-9][0-9][0-9][0-9][0-9][0-9]' AND typeof(new.created_at) = 'text' AND (new.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' OR new.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][ T][0-9][0-9]:[0-9][0-9]*') AND strftime('%Y-%m-%d %H:%M:%S', new.created_at) IS NOT NULL AND date(substr(new.created_at, 1, 10), '+0 days') = substr(new.created_at, 1, 10) AND substr(new.created_at, 12, 2) < '24'
BEGIN
    UPDATE memgpt_passages SET created_at = strftime('%Y-%m-%d %H:%M:%S', new.created_at) || '.' || CASE WHEN substr(new.created_at, 20, 1) = '.' THEN substr(substr(new.created_at, 21, length(substr(new.created_at, 21, 6)) - length(ltrim(substr(new.created_at, 21, 6), '0123456789'))) || '000000', 1, 6) ELSE '000000' END WHERE rowid = new.rowid;
END;
CREATE TRIGGER IF NOT EXISTS memgpt_passages_created_at_au AFTER UPDATE OF created_at ON memgpt_passages
    WHEN new.created_at NOT GLOB '?????????? ????????.[0-9][0-9][0-9][0-9][0-9][0-9]' AND typeof(new.created_at) = 'text' AND (new.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' OR new.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][ T][0-9][0-9]:[0-9][0-9]*') AND strftime('%Y-%m-%d %H:%M:%S', new.created_at) IS NOT NULL AND date(substr(new.created_at, 1, 10), '+0 days') = substr(new.created_at, 1, 10) AND substr(new.created_at, 12, 2) < '24'
BEGIN
    UPDATE memgpt_passages SET created_at = strftime('%Y-%m-%d %H:%M:%S', new.created_at) || '.' || CASE WHEN substr(new.created_at, 20, 1) = '.' THEN substr(substr(new.created_at, 21, length(substr(new.created_at, 21, 6)) - length(ltrim(substr(new.created_at, 21, 6), '0123456789'))) || '000000', 1, 6) ELSE '000000' END WHERE rowid = new.rowid;
END;
CREATE TRIGGER IF NOT EXISTS memgpt_documents_created_at_ai AFTER INSERT ON memgpt_documents
    WHEN new.created_at NOT GLOB '?????????? ????????.[0-9][0-9][0-9][0-9][0-9][0-9]' AND typeof(new.created_at) = 'text' AND (new.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' OR new.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][ T][0-9][0-9]:[0-9][0-9]*') AND strftime('%Y-%m-%d %H:%M:%S', new.created_at) IS NOT NULL AND date(substr(new.created_at, 1, 10), '+0 days') = substr(new.created_at, 1, 10) AND substr(new.created_at, 12, 2) < '24'
BEGIN
    UPDATE memgpt_documents SET created_at = strftime('%Y-%m-%d %H:%M:%S', new.created_at) || '.' || CASE WHEN substr(new.created_at, 20, 1) = '.' THEN substr(substr(new.created_at, 21, length(substr(new.created_at, 21, 6)) - length(ltrim(substr(new.created_at, 21, 6), '0123456789'))) || '000000', 1, 6) ELSE '000000' END WHERE rowid = new.rowid;
END;
CREATE TRIGGER IF NOT EXISTS memgpt_documents_created_at_au AFTER UPDATE OF created_at ON memgpt_documents
    WHEN new.created_at NOT GLOB '?????????? ????????.[0-9][0-9][0-9][0-9][0-9][0-9]' AND typeof(new.created_at) = 'text' AND (new.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' OR new.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][ T][0-9][0-9]:[0-9][0-9]*') AND strftime('%Y-%m-%d %H:%M:%S', new.created_at) IS NOT NULL AND date(substr(new.created_at, 1, 10), '+0 days') = substr(new.created_at, 1, 10) AND substr(new.created_at, 12, 2) < '24'
BEGIN
    UPDATE memgpt_documents SET created_at = strftime('%Y-%m-%d %H:%M:%S', new.created_at) || '.' || CASE WHEN substr(new.created_at, 20, 1) = '.' THEN substr(substr(new.created_at, 21, length(substr(new.created_at, 21, 6)) - length(ltrim(substr(new.created_at, 21, 6), '0123456789'))) || '000000', 1, 6) ELSE '000000' END WHERE rowid = new.rowid;
END;

-- Databases migrated before the full-text index covered a prefix of the text: replace an
-- index over the whole text (which fails on a text whose tsvector exceeds 1 MiB) by the
-- index over its first 200,000 characters that migration 000003 now creates.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['memgpt_recall_memory_agent', 'memgpt_archival_memory_agent', 'memgpt_passages', 'memgpt_documents'] LOOP
        IF EXISTS (SELECT 1 FROM pg_indexes
                   WHERE schemaname = current_schema() AND indexname = t || '_text_fts_idx'
                     AND indexdef NOT LIKE '%left(%') THEN
            EXECUTE format('DROP INDEX %I', t || '_text_fts_idx');
        END IF;
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING gin '
                       '(to_tsvector(''english''::regconfig, left(coalesce(text, ''''), 200000)))',
                       t || '_text_fts_idx', t);
    END LOOP;
END $$;

-- Metadata filters (memgpt_core::filter): equality, is_in and contains are containment,
-- `memgpt_metadata(metadata_) @> '{"key": value}'`, served by a GIN index of the
-- column's jsonb form (jsonb_path_ops: containment only, and smaller than jsonb_ops).
-- MemGPT's column is `json`, which takes what `jsonb` refuses: the escape \u0000 and lone
-- UTF-16 surrogates (Python's json.dumps writes "\ud83d" for a broken emoji). Such a value
-- reads as NULL here (matching no metadata test) instead of failing the query, the index
-- build and every later write of it: a value holding a \u escape is converted in a block
-- that catches the conversion's error; any other is converted directly (no
-- subtransaction). One function, calling no other: index builds run it with a search_path
-- of pg_catalog alone. A column an operator changed to jsonb reads as it is.
CREATE OR REPLACE FUNCTION memgpt_metadata(m json) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
BEGIN
    IF strpos(m::text, E'\\u') = 0 THEN
        RETURN m::jsonb;
    END IF;
    BEGIN
        RETURN m::jsonb;
    EXCEPTION WHEN untranslatable_character OR invalid_text_representation THEN
        RETURN NULL;
    END;
END
$fn$;
CREATE OR REPLACE FUNCTION memgpt_metadata(m jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$ SELECT m $fn$;
GRANT EXECUTE ON FUNCTION memgpt_metadata(json) TO PUBLIC;
GRANT EXECUTE ON FUNCTION memgpt_metadata(jsonb) TO PUBLIC;
COMMENT ON FUNCTION memgpt_metadata(json) IS 'A metadata_ value as jsonb (NULL where jsonb cannot hold it), for memgpt-store''s metadata filters and their GIN indexes.';
INSERT INTO __memgpt_store_owned_indexes (name, migration)
SELECT v.name, '2024-01-01-000008_metadata_index' FROM (VALUES ('memgpt_archival_memory_agent_metadata_idx'), ('memgpt_passages_metadata_idx'), ('memgpt_documents_metadata_idx')) AS v(name)
WHERE to_regclass(v.name) IS NULL
ON CONFLICT (name) DO NOTHING;
CREATE INDEX IF NOT EXISTS memgpt_archival_memory_agent_metadata_idx ON memgpt_archival_memory_agent USING gin (memgpt_metadata(metadata_) jsonb_path_ops);
CREATE INDEX IF NOT EXISTS memgpt_passages_metadata_idx ON memgpt_passages USING gin (memgpt_metadata(metadata_) jsonb_path_ops);
CREATE INDEX IF NOT EXISTS memgpt_documents_metadata_idx ON memgpt_documents USING gin (memgpt_metadata(metadata_) jsonb_path_ops);

//! Migration 000007's full-text rule, code point by code point: SQLite's FTS5 tables and
//! PostgreSQL's `memgpt_text_words` cut and fold every character as
//! `memgpt_core::fulltext::words` does (the rule's reference), and the migration re-indexes
//! existing rows on both backends and reverts to migration 000005's indexes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::connection::SimpleConnection;
use diesel::sql_types::{Array, BigInt, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use memgpt_core::fulltext::words;
use memgpt_migrate::{postgres, sqlite, Command};
use memgpt_testing::{TempDatabase, NO_VECTOR_SERVER, VECTOR_SERVER};

/// Every code point but NUL and the surrogates, each between two `q`s (`q…q`, one word or
/// two), in texts of `size` code points: once in code point order (one Unicode block at a
/// time) and once interleaved (each text holding code points of every block).
fn probe_texts(size: usize) -> Vec<String> {
    let all: Vec<char> = (1..=0x10_FFFF).filter_map(char::from_u32).collect();
    let chunk = |cs: &mut dyn Iterator<Item = &char>| -> String {
        cs.map(|c| format!("q{c}q")).collect::<Vec<_>>().join(" ")
    };
    let mut texts: Vec<String> = all.chunks(size).map(|c| chunk(&mut c.iter())).collect();
    let stride = texts.len();
    for k in 0..stride {
        texts.push(chunk(&mut all.iter().skip(k).step_by(stride)));
    }
    texts
}

#[derive(QueryableByName)]
struct Words {
    #[diesel(sql_type = BigInt)]
    i: i64,
    #[diesel(sql_type = Text)]
    words: String,
}

/// Compares each text's words as the database gives them with the reference; names the
/// first differing code points.
fn compare(texts: &[String], got: &[Words]) {
    assert_eq!(got.len(), texts.len());
    let mut wrong = Vec::new();
    for row in got {
        let text = &texts[usize::try_from(row.i).unwrap()];
        let want = words(text);
        let have: Vec<&str> = row.words.split(' ').filter(|w| !w.is_empty()).collect();
        if have != want {
            let at = have
                .iter()
                .zip(&want)
                .find(|(h, w)| h != w)
                .map(|(h, w)| format!("{h:?} where the rule says {w:?}"));
            wrong.push(format!(
                "text {}: {} words, the rule {}; first difference {at:?}",
                row.i,
                have.len(),
                want.len()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{}",
        wrong[..wrong.len().min(5)].join("\n")
    );
}

/// SQLite: the words FTS5 indexes for each text (written through `memgpt_documents`, whose
/// triggers feed its full-text table), in order, are the rule's.
#[test]
fn sqlite_indexes_every_code_point_as_the_rule_says() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rule.db");
    sqlite::run_path(&path, Command::Up).unwrap();
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let texts = probe_texts(512);
    conn.batch_execute("BEGIN").unwrap();
    for (i, t) in texts.iter().enumerate() {
        diesel::sql_query(
            "INSERT INTO memgpt_documents (rowid, id, user_id, text, created_at) \
             VALUES (?, printf('00000000-0000-0000-0000-%012d', ?), \
             '00000000-0000-0000-0000-000000000001', ?, '2024-01-01 00:00:00.000000')",
        )
        .bind::<BigInt, _>(i64::try_from(i).unwrap())
        .bind::<BigInt, _>(i64::try_from(i).unwrap())
        .bind::<Text, _>(t)
        .execute(&mut conn)
        .unwrap();
    }
    conn.batch_execute(
        "COMMIT; \
         CREATE VIRTUAL TABLE temp.words USING fts5vocab(main, memgpt_documents_fts, instance);",
    )
    .unwrap();
    let got: Vec<Words> = diesel::sql_query(
        "SELECT doc AS i, group_concat(term, ' ') AS words FROM \
         (SELECT doc, term FROM temp.words WHERE col = 'text' ORDER BY doc, offset) \
         GROUP BY doc ORDER BY doc",
    )
    .load(&mut conn)
    .unwrap();
    compare(&texts, &got);
}

/// PostgreSQL: `memgpt_text_words` gives the rule's words for each text, on PostgreSQL 18
/// (`C` locale) and on the server without pgvector (PostgreSQL 15, `C.UTF-8`); in texts of
/// 512 code points (the function folds each distinct letter once) and of 32 (it folds the
/// letters as they come).
fn pg_words_are_the_rule(server: &str) {
    let db = TempDatabase::create(server).unwrap();
    postgres::run_url(db.url(), Command::Up).unwrap();
    let mut conn: PgConnection = db.connect().unwrap();
    for size in [512, 32] {
        let texts = probe_texts(size);
        let got: Vec<Words> = diesel::sql_query(
            "SELECT i - 1 AS i, array_to_string(memgpt_text_words(t), ' ') AS words \
             FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i) ORDER BY i",
        )
        .bind::<Array<Text>, _>(&texts)
        .load(&mut conn)
        .unwrap();
        compare(&texts, &got);
    }
}

#[test]
fn postgres_memgpt_text_words_is_the_rule_for_every_code_point() {
    pg_words_are_the_rule(VECTOR_SERVER);
}

#[test]
fn postgres_without_pgvector_memgpt_text_words_is_the_rule_for_every_code_point() {
    pg_words_are_the_rule(NO_VECTOR_SERVER);
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

fn sqlite_match(conn: &mut SqliteConnection, fts_query: &str) -> Vec<String> {
    diesel::sql_query(
        "SELECT text AS name FROM memgpt_recall_memory_agent WHERE rowid IN \
         (SELECT rowid FROM memgpt_recall_memory_agent_fts WHERE memgpt_recall_memory_agent_fts \
         MATCH ?) ORDER BY text",
    )
    .bind::<Text, _>(fts_query)
    .load::<Name>(conn)
    .unwrap()
    .into_iter()
    .map(|n| n.name)
    .collect()
}

/// Rows written before migration 000007 (by MemGPT, or through migration 000005's
/// tokenizer) are indexed under the rule once it runs; reverting it brings back porter
/// stemming and the letters as they were.
#[test]
fn sqlite_migration_000007_reindexes_existing_rows_and_reverts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    sqlite::run_path(&path, Command::Up).unwrap();
    sqlite::run_path(&path, Command::Revert(1)).unwrap();
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    conn.batch_execute(
        "INSERT INTO memgpt_recall_memory_agent (id, user_id, agent_id, role, text, created_at) VALUES \
         ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000000a', \
          '00000000-0000-0000-0000-00000000000b', 'user', 'Die Straße', '2024-01-01 00:00:00.000000'), \
         ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-00000000000a', \
          '00000000-0000-0000-0000-00000000000b', 'user', 'running late', '2024-01-01 00:00:01.000000');",
    )
    .unwrap();
    // Migration 000005: porter stemming, ß kept.
    assert_eq!(sqlite_match(&mut conn, "text:\"run\""), ["running late"]);
    assert!(sqlite_match(&mut conn, "text:\"strasse\"").is_empty());
    let report = sqlite::run_path(&path, Command::Up).unwrap();
    assert_eq!(report.applied, ["20240101000007"]);
    assert!(sqlite_match(&mut conn, "text:\"run\"").is_empty());
    assert_eq!(
        sqlite_match(&mut conn, "text:\"running\""),
        ["running late"]
    );
    assert_eq!(sqlite_match(&mut conn, "text:\"strasse\""), ["Die Straße"]);
    // A later write by another program (MemGPT's own code) goes through the triggers.
    conn.batch_execute(
        "UPDATE memgpt_recall_memory_agent SET text = 'ÆRØ Ø' WHERE id = '00000000-0000-0000-0000-000000000002'",
    )
    .unwrap();
    assert_eq!(sqlite_match(&mut conn, "text:\"aero\""), ["ÆRØ Ø"]);
    assert_eq!(
        sqlite_match(
            &mut conn,
            "scope:\"a0000000000000000000000000000000b\" AND text:\"o\""
        ),
        ["ÆRØ Ø"]
    );
    sqlite::run_path(&path, Command::Revert(1)).unwrap();
    assert_eq!(sqlite_match(&mut conn, "text:\"ærø\""), ["ÆRØ Ø"]);
    assert!(sqlite_match(&mut conn, "text:\"strasse\"").is_empty());
}

fn pg_names(conn: &mut PgConnection, sql: &str) -> Vec<String> {
    let mut v: Vec<String> = diesel::sql_query(sql)
        .load::<Name>(conn)
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    v.sort();
    v
}

const TEXT_INDEXES: &str = "SELECT indexname::text AS name FROM pg_indexes \
    WHERE schemaname = 'public' AND indexname LIKE 'memgpt_%_text_%'";

/// The same on PostgreSQL: rows of a database at migration 000006 are found under the rule
/// through the new index once 000007 runs; reverting it restores migration 000005's index
/// and drops the function.
fn pg_migration_000007(server: &str) {
    let db = TempDatabase::create(server).unwrap();
    postgres::run_url(db.url(), Command::Up).unwrap();
    // 000009, 000008 and 000007.
    postgres::run_url(db.url(), Command::Revert(3)).unwrap();
    let mut conn = db.connect().unwrap();
    let tables = [
        "memgpt_archival_memory_agent",
        "memgpt_documents",
        "memgpt_passages",
        "memgpt_recall_memory_agent",
    ];
    let old: Vec<String> = tables
        .iter()
        .map(|t| format!("{t}_text_scope_fts_idx"))
        .collect();
    assert_eq!(pg_names(&mut conn, TEXT_INDEXES), old);
    conn.batch_execute(
        "INSERT INTO memgpt_recall_memory_agent (id, user_id, agent_id, role, text, created_at) VALUES \
         (gen_random_uuid(), '00000000-0000-0000-0000-00000000000a', \
          '00000000-0000-0000-0000-00000000000b', 'user', 'To be or not to be', now()), \
         (gen_random_uuid(), '00000000-0000-0000-0000-00000000000a', \
          '00000000-0000-0000-0000-00000000000b', 'user', 'CAFÉ', now());",
    )
    .unwrap();
    let report = postgres::run_url(db.url(), Command::Up).unwrap();
    // 000008 (the metadata index) and 000009 were reverted with it, and come back after it.
    assert_eq!(
        report.applied,
        ["20240101000007", "20240101000008", "20240101000009"]
    );
    let new: Vec<String> = tables
        .iter()
        .map(|t| format!("{t}_text_words_idx"))
        .collect();
    assert_eq!(pg_names(&mut conn, TEXT_INDEXES), new);
    conn.batch_execute("SET enable_seqscan = off").unwrap();
    let found = |conn: &mut PgConnection, q: &str| -> Vec<String> {
        diesel::sql_query(
            "SELECT text::text AS name FROM memgpt_recall_memory_agent WHERE \
             array_to_tsvector(memgpt_text_words(left(coalesce(text, ''), 200000)) || \
             ARRAY['u:' || replace(user_id::text, '-', ''), \
             'a:' || replace(coalesce(agent_id::text, ''), '-', '')]) @@ $1::tsquery",
        )
        .bind::<Text, _>(q)
        .load::<Name>(conn)
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect()
    };
    assert_eq!(found(&mut conn, "'to' & 'be'"), ["To be or not to be"]);
    assert_eq!(found(&mut conn, "'cafe'"), ["CAFÉ"]);
    #[derive(QueryableByName)]
    struct PlanLine {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        line: String,
    }
    let plan: Vec<PlanLine> = diesel::sql_query(
        "EXPLAIN SELECT id FROM memgpt_recall_memory_agent WHERE \
         array_to_tsvector(memgpt_text_words(left(coalesce(text, ''), 200000)) || \
         ARRAY['u:' || replace(user_id::text, '-', ''), \
         'a:' || replace(coalesce(agent_id::text, ''), '-', '')]) @@ '''cafe'''::tsquery",
    )
    .load(&mut conn)
    .unwrap();
    let plan = plan
        .into_iter()
        .map(|l| l.line)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        plan.contains("memgpt_recall_memory_agent_text_words_idx"),
        "{plan}"
    );
    postgres::run_url(db.url(), Command::Revert(3)).unwrap();
    assert_eq!(pg_names(&mut conn, TEXT_INDEXES), old);
    assert!(pg_names(
        &mut conn,
        "SELECT proname::text AS name FROM pg_proc WHERE proname = 'memgpt_text_words'"
    )
    .is_empty());
}

#[test]
fn postgres_migration_000007_reindexes_existing_rows_and_reverts() {
    pg_migration_000007(VECTOR_SERVER);
}

#[test]
fn postgres_without_pgvector_migration_000007_reindexes_existing_rows_and_reverts() {
    pg_migration_000007(NO_VECTOR_SERVER);
}

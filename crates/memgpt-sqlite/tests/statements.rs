//! Every statement shape in SQLite's dialect, compared with `tests/golden/statements.txt`
//! (`UPDATE_EXPECT=1 cargo test -p memgpt-sqlite --test statements` rewrites it: expect-test; the shapes come from `memgpt_conformance::statement_shapes`).

use memgpt_conformance::statement_shapes;
use memgpt_sqlite::SqliteStore;

#[test]
fn statement_shapes_match_the_golden_text() {
    expect_test::expect_file!["golden/statements.txt"]
        .assert_eq(&statement_shapes::<SqliteStore>());
}

/// A read with a bound `LIMIT` (a page of `get_all`, of `get_all_paginated`) is prepared
/// once and run again and again with new values: SQLite's planner reads a bare bound
/// `LIMIT ?`, and then every new binding expires the prepared statement — the same text
/// with a bare `LIMIT ?` is the control, re-prepared on every call.
#[test]
#[allow(clippy::unwrap_used, clippy::expect_used)]
fn a_read_with_a_bound_limit_is_not_prepared_again_on_each_call() {
    use memgpt_core::backend::Backend;
    use memgpt_core::statement::Shapes;
    use memgpt_core::{Message, Role, Scope, StorageConnector, TableType};
    use uuid::Uuid;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limit.db");
    let store =
        SqliteStore::open(memgpt_sqlite::SqliteConfig::new(path.display().to_string())).unwrap();
    let agents: Vec<Scope> = (0..3u128)
        .map(|i| Scope::agent(Uuid::from_u128(1), Uuid::from_u128(10 + i)))
        .collect();
    for s in &agents {
        let c = store
            .connector::<Message>(TableType::RecallMemory, *s)
            .unwrap();
        let messages = (0..50).map(|i| {
            Message::builder(s.user_id(), s.agent_id().unwrap(), Role::User)
                .text(format!("message {i}"))
                .build()
                .unwrap()
        });
        c.insert_many(messages, false).unwrap();
    }
    store.optimize().unwrap();
    let table = TableType::RecallMemory;
    let ours = Shapes::<SqliteStore>::new(table, &agents[0], SqliteStore::select(table))
        .recent(&[], Some(20))
        .text;
    assert!(ours.ends_with("LIMIT (? + 0)"), "{ours}");
    let bare = ours.replace("LIMIT (? + 0)", "LIMIT ?");
    drop(store);

    // Prepares `sql` once on a connection of its own (rusqlite's, on the same SQLite),
    // runs it for each agent in turn (user, agent and limit 20 bound anew each time, as a
    // statement cache does) and returns how often SQLite prepared it again.
    let reprepared = |sql: &str| -> i32 {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        for s in agents.iter().cycle().take(6) {
            let (user, agent) = (s.user_id().to_string(), s.agent_id().unwrap().to_string());
            let mut rows = stmt.query(rusqlite::params![user, agent, 20i64]).unwrap();
            let mut n = 0;
            while rows.next().unwrap().is_some() {
                n += 1;
            }
            assert_eq!(n, 20);
        }
        stmt.get_status(rusqlite::StatementStatus::RePrepare)
    };
    assert_eq!(reprepared(&ours), 0, "{ours}");
    assert!(reprepared(&bare) >= 5, "the control: {bare}");
}

/// `query_text` with no limit (W4's) is sorted by SQLite's merge sorter: its statement has
/// no `LIMIT`. The control is the same text with `LIMIT -1`, which SQLite sorts into a
/// B-tree keeping the first rows (`OpenEphemeral`), about a tenth more instructions.
#[test]
#[allow(clippy::unwrap_used)]
fn a_read_with_no_limit_is_sorted_by_the_merge_sorter() {
    use memgpt_core::backend::{Backend, FullText, TextQuery};
    use memgpt_core::statement::Shapes;
    use memgpt_core::{Message, Role, Scope, StorageConnector, TableType};
    use uuid::Uuid;

    // W4's shape in small: agents of 1,000 messages, one in three holding the word, and
    // the planner's statistics (with none, it reads the agent's index in order instead).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sort.db");
    let config = memgpt_sqlite::SqliteConfig::new(path.display().to_string());
    let store = SqliteStore::open(config).unwrap();
    let table = TableType::RecallMemory;
    for a in 0..4u128 {
        let s = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(10 + a));
        let messages = (0..1_000).map(|i| {
            let word = if i % 3 == 0 { "lantern" } else { "window" };
            Message::builder(s.user_id(), s.agent_id().unwrap(), Role::User)
                .text(format!("message {i} by the {word}"))
                .build()
                .unwrap()
        });
        let c = store.connector::<Message>(table, s).unwrap();
        c.insert_many(messages, false).unwrap();
    }
    store.optimize().unwrap();
    drop(store);
    let scope = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(10));
    let shapes = Shapes::<SqliteStore>::new(table, &scope, SqliteStore::select(table));
    let query = TextQuery {
        words: &["lantern"],
        filters: &[],
        limit: None,
        offset: 0,
    };
    let ours = SqliteStore::text_match(&shapes, &query).text;
    assert!(ours.ends_with("ORDER BY created_at, id"), "{ours}");
    let opcodes = |sql: &str| -> Vec<String> {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let nulls = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
        let params = rusqlite::params_from_iter(nulls);
        let rows = stmt.query_map(params, |r| r.get::<_, String>(1)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    let (sorts, control) = (opcodes(&ours), opcodes(&format!("{ours} LIMIT -1")));
    assert!(sorts.iter().any(|op| op == "SorterOpen"), "{sorts:?}");
    assert!(!control.iter().any(|op| op == "SorterOpen"), "{control:?}");
}

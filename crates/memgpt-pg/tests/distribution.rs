//! A distribution key: every statement the connectors send names the tenant's `user_id`,
//! so that the tables can be distributed by `user_id` (Citus, colocated) without a query
//! crossing tenants (docs/SCALING.md). Read from the server itself: `pg_stat_statements`
//! on a server of the test's own records every statement of every call — the COPY path,
//! units of work and the error paths included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{
    Column, CursorRequest, Document, Error, Filter, Message, Passage, Record, Result, Role, Scope,
    StorageConnector, TableType,
};
use memgpt_pg::{PgConfig, PgStore};
use memgpt_testing::OwnServer;
use uuid::Uuid;

#[derive(QueryableByName)]
struct Statement {
    #[diesel(sql_type = Text)]
    query: String,
}

fn message(scope: Scope, text: &str) -> Message {
    Message::builder(scope.user_id(), scope.agent_id().unwrap(), Role::User)
        .text(text)
        .build()
        .unwrap()
}

fn passage(scope: Scope, i: usize) -> Passage {
    let mut b = Passage::builder(scope.user_id(), format!("passage {i} about rivers"))
        .data_source("docs")
        .embedding(vec![i as f32, 1.0, 2.0], "test");
    if let Some(a) = scope.agent_id() {
        b = b.agent_id(a);
    }
    b.build().unwrap()
}

/// Every call of the connector on each table, the bulk path and the error paths.
fn exercise(store: &PgStore) {
    let (u, a) = (Uuid::from_u128(7), Uuid::from_u128(8));
    let agent = Scope::agent(u, a);
    let other = Scope::agent(Uuid::from_u128(9), Uuid::from_u128(10));

    let recall = store
        .connector::<Message>(TableType::RecallMemory, agent)
        .unwrap();
    let first = message(agent, "hello rivers");
    recall.insert(&first).unwrap();
    // The same tenant's id again: replaced (MemGPT's insert is an upsert).
    recall.insert(&first).unwrap();
    let theirs = message(other, "another tenant's");
    store
        .connector::<Message>(TableType::RecallMemory, other)
        .unwrap()
        .insert(&theirs)
        .unwrap();
    let stolen = Message::builder(u, a, Role::User)
        .id(theirs.id())
        .text("same id as theirs")
        .build()
        .unwrap();
    assert!(matches!(
        recall.insert(&stolen),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(recall.insert_many([stolen.clone()], true).is_err());
    recall
        .insert_many(
            (0..20).map(|i| message(agent, &format!("small {i}"))),
            false,
        )
        .unwrap();
    recall
        .insert_many(
            (0..1_500).map(|i| message(agent, &format!("bulk {i}"))),
            false,
        )
        .unwrap();
    recall
        .insert_many(
            (0..1_500).map(|i| message(agent, &format!("bulk upsert {i}"))),
            true,
        )
        .unwrap();
    // The bulk path's error paths: an existing id, another tenant's id, a repeated id.
    let mut bulk: Vec<Message> = (0..1_200)
        .map(|i| message(agent, &format!("b {i}")))
        .collect();
    bulk.push(first.clone());
    assert!(matches!(
        recall.insert_many(bulk.clone(), false),
        Err(Error::AlreadyExists { .. })
    ));
    bulk.pop();
    bulk.push(stolen.clone());
    assert!(recall.insert_many(bulk.clone(), true).is_err());
    bulk.pop();
    bulk.push(bulk[0].clone());
    assert!(matches!(
        recall.insert_many(bulk, false),
        Err(Error::DuplicateId { .. })
    ));
    // Too large for one COPY statement straight into the table (19 MiB): staged, the
    // encoded first 8 MiB included.
    let pad = "w".repeat(16 * 1024);
    let mut wide: Vec<Message> = (0..1_200)
        .map(|i| message(agent, &format!("w {i} {pad}")))
        .collect();
    wide.push(wide[0].clone());
    assert!(matches!(
        recall.insert_many(wide, false),
        Err(Error::DuplicateId { .. })
    ));
    recall.get(first.id()).unwrap();
    recall.get_all(&[], Some(10)).unwrap();
    let user = Filter::eq(Column::Role, Role::User);
    recall.get_all(std::slice::from_ref(&user), None).unwrap();
    recall
        .get_all_paginated(&[], 500)
        .unwrap()
        .collect::<Result<Vec<_>>>()
        .unwrap();
    let page = recall
        .get_all_cursor(&CursorRequest::new().limit(300))
        .unwrap();
    recall
        .get_all_cursor(
            &CursorRequest::new()
                .limit(300)
                .after(page.last_id)
                .reverse(true),
        )
        .unwrap();
    recall.size(&[]).unwrap();
    recall
        .query_date(
            chrono::DateTime::UNIX_EPOCH,
            chrono::Utc::now() + chrono::Duration::days(1),
            Some(10),
            0,
        )
        .unwrap();
    recall.query_text("rivers", Some(10), 0).unwrap();
    recall.update(&first).unwrap();
    store
        .transaction(|tx| {
            let c = tx.connector::<Message>(TableType::RecallMemory, agent)?;
            c.insert(&message(agent, "in a unit of work"))?;
            c.size(&[])?;
            c.insert_many(
                (0..1_100).map(|i| message(agent, &format!("unit bulk {i}"))),
                false,
            )?;
            Ok(())
        })
        .unwrap();
    recall.delete(&[user]).unwrap();

    for (table, scope) in [
        (TableType::ArchivalMemory, agent),
        (TableType::Passages, Scope::user(u)),
    ] {
        let c = store.connector::<Passage>(table, scope).unwrap();
        c.insert_many((0..1_100).map(|i| passage(scope, i)), false)
            .unwrap();
        c.insert(&passage(scope, 5_000)).unwrap();
        c.query(&[1.0, 1.0, 2.0], 5, &[]).unwrap();
        c.list_data_sources().unwrap();
        c.size(&[]).unwrap();
        c.query_text("rivers", Some(3), 0).unwrap();
        c.hybrid("rivers of passages", &[1.0, 1.0, 2.0], 5, &[])
            .unwrap();
        let topic = Filter::or([
            Filter::metadata("topic").eq("rivers"),
            Filter::not(Filter::metadata("n").gt(2)),
        ]);
        c.get_all(std::slice::from_ref(&topic), Some(3)).unwrap();
        c.prune(
            &memgpt_core::retention::Retention::DataSource("nothing".into()),
            100,
        )
        .unwrap();
        c.delete_table().unwrap();
    }
    recall
        .prune(&memgpt_core::retention::Retention::KeepNewest(100), 500)
        .unwrap();
    let docs = store
        .connector::<Document>(TableType::Documents, Scope::user(u))
        .unwrap();
    let d = Document::builder(u, "a document about rivers")
        .build()
        .unwrap();
    docs.insert(&d).unwrap();
    assert_eq!(docs.get(d.id()).unwrap().map(|d| d.id()), Some(d.id()));
    docs.get_all(&[], None).unwrap();
    docs.delete(&[]).unwrap();
}

/// Whether `q` (as pg_stat_statements normalised it) names the tenant: restricted by
/// `user_id = $n` (reads, updates, deletes, the COPY path's merge), or an `INSERT` or a
/// `COPY` of rows whose `user_id` column routes each to its shard.
fn names_the_tenant(q: &str) -> bool {
    let predicate = q.contains("WHERE user_id = $") || q.contains(" AND user_id = $");
    let insert = q.starts_with("INSERT INTO memgpt_") && q.contains("(id, user_id,");
    let copy = q.starts_with("COPY \"memgpt_") && q.contains("(\"id\", \"user_id\",");
    predicate || insert || copy
}

/// Statements allowed without a tenant, each for a reason docs/SCALING.md gives:
/// - the COPY path's staging table takes its columns from the table, reading no row
///   (`WITH NO DATA`);
/// - after the database refused a write, the lookup of which id already exists — under
///   any tenant, since MemGPT's primary key is `id` alone (a Citus schema keys by
///   `(user_id, id)`, where ids are unique per tenant; see docs/SCALING.md).
fn exempt(q: &str) -> bool {
    let staging_ddl =
        q.starts_with("CREATE TEMP TABLE pg_temp.memgpt_staging_") && q.ends_with("WITH NO DATA");
    let id_lookup = q.starts_with("SELECT id FROM memgpt_") && q.contains(" WHERE id IN (")
        || q.starts_with("SELECT s.id")
            && q.contains(" FROM pg_temp.memgpt_staging_")
            && q.contains(" t ON t.id = s.id ");
    staging_ddl || id_lookup
}

#[test]
fn every_statement_the_connectors_send_names_the_user_id() {
    let mut server = OwnServer::start("trust", "").unwrap();
    server
        .restart_with("-c shared_preload_libraries=pg_stat_statements")
        .unwrap();
    let url = server.url("");
    let store = PgStore::open(PgConfig::new(url.clone())).unwrap();
    let mut admin = PgConnection::establish(url.expose()).unwrap();
    admin
        .batch_execute("CREATE EXTENSION pg_stat_statements; SELECT pg_stat_statements_reset()")
        .unwrap();
    exercise(&store);
    let statements: Vec<Statement> = diesel::sql_query(
        "SELECT query FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND query ~ '\\mmemgpt_(recall_memory_agent|archival_memory_agent|passages|documents)\\M' \
         AND query !~ 'pg_stat_statements' ORDER BY query",
    )
    .load(&mut admin)
    .unwrap();
    assert!(statements.len() >= 30, "{} statements", statements.len());
    let without: Vec<&str> = statements
        .iter()
        .map(|s| s.query.as_str())
        .filter(|q| !names_the_tenant(q) && !exempt(q))
        .collect();
    // The rule is not vacuous: each kind of statement was seen.
    for shape in [
        "SELECT count(*) AS n FROM memgpt_recall_memory_agent WHERE user_id = $",
        "WITH chunk AS MATERIALIZED (SELECT DISTINCT ON (id)",
        "DELETE FROM memgpt_passages WHERE user_id = $",
        "UPDATE memgpt_recall_memory_agent SET",
        "INSERT INTO memgpt_documents (id, user_id,",
        "COPY \"memgpt_recall_memory_agent\"(\"id\", \"user_id\",",
    ] {
        assert!(
            statements.iter().any(|s| s.query.starts_with(shape)),
            "no statement starts with {shape:?}"
        );
    }
    assert!(
        without.is_empty(),
        "statements without a user_id:\n{}",
        without.join("\n---\n")
    );
}

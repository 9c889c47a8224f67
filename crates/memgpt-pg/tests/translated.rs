//! Fault matrix row 40: errors are told apart by SQLSTATE, never by English text. On a
//! server whose messages are German (`lc_messages = de_DE.UTF-8`, Debian's translations),
//! a wrong password, a statement timeout, a lock timeout, a deadlock and a terminated
//! session are the same errors as on an English server. Each test first shows that the
//! server really speaks German, so that it cannot pass on an English one by accident.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::sql_types::{Integer, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Error, Message, Record, Role, Scope, StorageConnector, TableType};
use memgpt_pg::{PgConfig, PgConnector, PgStore};
use memgpt_testing::OwnServer;
use uuid::Uuid;

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

/// A German server with the library's tables, and its URL.
fn server(auth: &str, password: &str) -> (OwnServer, DatabaseUrl) {
    let server = OwnServer::start_translated(auth, password).unwrap();
    let url = server.url(password);
    memgpt_migrate::postgres::run_url(&url, memgpt_migrate::Command::Up).unwrap();
    (server, url)
}

fn config(url: &DatabaseUrl, app: &str) -> PgConfig {
    let mut c = PgConfig::new(url.clone());
    c.application_name = app.to_owned();
    c.connect_timeout = Duration::from_secs(3);
    c.pool_timeout = Duration::from_secs(5);
    c.pool_size = 2;
    c.max_overflow = 0;
    c.statement_timeout = Duration::from_secs(1);
    c
}

/// A store on `url` as `app` whose statements time out after `statement_timeout`, and a
/// recall connector of a new agent.
fn recall(
    url: &DatabaseUrl,
    app: &str,
    statement_timeout: Duration,
) -> (PgStore, Scope, PgConnector<Message>) {
    let mut config = config(url, app);
    config.statement_timeout = statement_timeout;
    let store = PgStore::open(config).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    (store, s, c)
}

/// Locks recall memory on `conn`, in a transaction left open.
fn lock_recall(conn: &mut PgConnection) {
    conn.batch_execute("BEGIN; LOCK TABLE memgpt_recall_memory_agent IN ACCESS EXCLUSIVE MODE;")
        .unwrap();
}

fn message(s: &Scope, text: &str) -> Message {
    Message::builder(s.user_id(), s.agent_id().unwrap(), Role::User)
        .text(text)
        .build()
        .unwrap()
}

/// The pid of the session of `app` that waits for a lock, once there is one (polled on
/// the server: a handshake, not a guessed sleep); fails after 30 s.
fn waiting_for_a_lock(admin: &mut PgConnection, app: &str) -> i32 {
    let start = Instant::now();
    loop {
        let rows: Vec<Pid> = diesel::sql_query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 \
             AND wait_event_type = 'Lock'",
        )
        .bind::<Text, _>(app)
        .load(admin)
        .unwrap();
        if let Some(p) = rows.first() {
            return p.pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{app} never waited"
        );
        std::thread::yield_now();
    }
}

#[test]
fn a_wrong_password_on_a_german_server_is_an_authentication_error() {
    let (server, _) = server("scram-sha-256", "richtig-S3cret");
    let wrong = server.url("falsch-S3cret");
    let said = PgConnection::establish(wrong.expose())
        .err()
        .unwrap()
        .to_string();
    assert!(
        said.contains("Passwort-Authentifizierung") && !said.contains("authentication failed"),
        "the server does not speak German: {said}"
    );
    let e = PgStore::open(config(&wrong, "memgpt-de-auth")).unwrap_err();
    assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
    assert!(!format!("{e} {e:?}").contains("S3cret"), "{e:?}");
}

#[test]
fn a_statement_timeout_on_a_german_server_is_a_timeout() {
    let (_server, url) = server("trust", "");
    let (_store, s, c) = recall(&url, "memgpt-de-timeout", Duration::from_secs(1));
    let mut locker = PgConnection::establish(url.expose()).unwrap();
    lock_recall(&mut locker);
    let e = c.size(&[]).unwrap_err();
    assert!(
        matches!(&e, Error::Timeout { message } if message.contains("Zeitüberschreitung")),
        "{e:?}"
    );
    locker.batch_execute("ROLLBACK;").unwrap();
    c.insert(&message(&s, "danach")).unwrap();
    assert_eq!(c.size(&[]).unwrap(), 1);
}

#[test]
fn a_lock_timeout_on_a_german_server_is_a_timeout() {
    let (_server, url) = server("trust", "");
    let mut admin = PgConnection::establish(url.expose()).unwrap();
    admin
        .batch_execute("ALTER ROLE postgres SET lock_timeout = '200ms'")
        .unwrap();
    let (_store, s, c) = recall(&url, "memgpt-de-lock", Duration::from_secs(30));
    lock_recall(&mut admin);
    let e = c.insert(&message(&s, "gesperrt")).unwrap_err();
    assert!(
        matches!(&e, Error::Timeout { message } if message.contains("Zeitüberschreitung einer Sperre")),
        "{e:?}"
    );
    admin.batch_execute("ROLLBACK;").unwrap();
    assert_eq!(c.size(&[]).unwrap(), 0);
}

/// A unit of work updates message A, then B; a session of psql's kind holds B and waits
/// for A. The library's session is the one that finds the deadlock (the other's
/// `deadlock_timeout` is a minute), and gets `Busy`.
#[test]
fn a_deadlock_on_a_german_server_is_busy() {
    let (_server, url) = server("trust", "");
    let app = "memgpt-de-deadlock";
    let (store, s, c) = recall(&url, app, Duration::from_secs(60));
    let (a, b) = (message(&s, "a"), message(&s, "b"));
    c.insert_many(vec![a.clone(), b.clone()], false).unwrap();
    let mut other = PgConnection::establish(url.expose()).unwrap();
    other
        .batch_execute(&format!(
            "BEGIN; SET LOCAL deadlock_timeout = '60s'; \
             UPDATE memgpt_recall_memory_agent SET text = 'b2' WHERE id = '{}'",
            b.id()
        ))
        .unwrap();
    let (a_held, held) = mpsc::channel();
    let (other_waits, waits) = mpsc::channel::<()>();
    let e = std::thread::scope(|sc| {
        let (store, a1, b1) = (&store, rewritten(&a, "a1"), rewritten(&b, "b1"));
        let unit = sc.spawn(move || {
            store.transaction(|tx| {
                let c = tx.connector::<Message>(TableType::RecallMemory, s)?;
                c.update(&a1)?;
                a_held.send(()).unwrap();
                waits.recv().unwrap();
                c.update(&b1)
            })
        });
        held.recv().unwrap();
        let waiter = sc.spawn(move || {
            other
                .batch_execute(&format!(
                    "UPDATE memgpt_recall_memory_agent SET text = 'a2' WHERE id = '{}'; COMMIT;",
                    a.id()
                ))
                .unwrap();
        });
        let mut admin = PgConnection::establish(url.expose()).unwrap();
        let start = Instant::now();
        loop {
            let n: Vec<Pid> = diesel::sql_query(
                "SELECT pid FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()",
            )
            .load(&mut admin)
            .unwrap();
            if !n.is_empty() {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "never waited");
            std::thread::yield_now();
        }
        other_waits.send(()).unwrap();
        let e = unit.join().unwrap().unwrap_err();
        waiter.join().unwrap();
        e
    });
    assert!(
        matches!(&e, Error::Busy { message } if message.contains("Verklemmung")),
        "{e:?}"
    );
    let mut texts: Vec<String> = c
        .get_all(&[], None)
        .unwrap()
        .into_iter()
        .map(|m| m.text().unwrap_or_default().to_owned())
        .collect();
    texts.sort();
    assert_eq!(
        texts,
        ["a2", "b2"],
        "the other session's writes, none of the unit's"
    );
}

fn rewritten(m: &Message, text: &str) -> Message {
    m.to_builder().text(text).build().unwrap()
}

/// A call waiting for a lock when an administrator terminates its session gets
/// `ConnectionLost`, and the store goes on working on a new connection.
#[test]
fn a_terminated_session_on_a_german_server_is_a_lost_connection() {
    let (_server, url) = server("trust", "");
    let app = "memgpt-de-terminated";
    let (_store, s, c) = recall(&url, app, Duration::from_secs(60));
    let mut locker = PgConnection::establish(url.expose()).unwrap();
    lock_recall(&mut locker);
    let e = std::thread::scope(|sc| {
        let call = sc.spawn(|| c.insert(&message(&s, "abgebrochen")));
        let mut admin = PgConnection::establish(url.expose()).unwrap();
        let pid = waiting_for_a_lock(&mut admin, app);
        diesel::sql_query("SELECT pg_terminate_backend($1)")
            .bind::<Integer, _>(pid)
            .execute(&mut admin)
            .unwrap();
        call.join().unwrap().unwrap_err()
    });
    assert!(
        matches!(&e, Error::ConnectionLost { message } if message.contains("Administrator")),
        "{e:?}"
    );
    locker.batch_execute("ROLLBACK;").unwrap();
    c.insert(&message(&s, "danach")).unwrap();
    assert_eq!(c.size(&[]).unwrap(), 1);
}

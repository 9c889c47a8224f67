//! Units of work when SQLite ends the transaction by itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::sql_types::BigInt;
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use memgpt_core::{Message, Record, Role, Scope, StorageConnector, TableType};
use memgpt_sqlite::SqliteConfig;
use memgpt_sqlite::SqliteStore;
use uuid::Uuid;

#[derive(QueryableByName)]
struct Pages {
    #[diesel(sql_type = BigInt)]
    page_count: i64,
}

fn message(s: &Scope, text: String) -> Message {
    Message::builder(s.user_id(), s.agent_id().unwrap(), Role::User)
        .text(text)
        .build()
        .unwrap()
}

/// A tmpfs of a few MiB mounted for one test (the tests run as root in CI), unmounted
/// when dropped.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> SmallFs {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a {size} tmpfs failed (this test needs root, as in CI): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallFs { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The disk fills up inside a unit of work: SQLite rolls the whole transaction back by
/// itself. The closure ignores that error and writes again; that later write must not
/// commit on its own (SQLite would run it in autocommit mode), and the unit of work
/// reports `Aborted`, with nothing of it in the table. A full database that SQLite
/// answers with a statement rollback only is the other case: the failed call is undone
/// alone and the rest commits.
#[test]
fn a_full_disk_inside_a_unit_of_work_commits_nothing() {
    let fs = SmallFs::mount("2m");
    let mut cfg = SqliteConfig::new(fs.path().join("full.db"));
    cfg.cache_size_kib = 256;
    let store = SqliteStore::open(cfg).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let e = store
        .transaction(|tx| {
            let recall = tx.connector::<Message>(TableType::RecallMemory, s)?;
            recall.insert(&message(&s, "before".to_owned()))?;
            let big = (0..20_000).map(|i| message(&s, format!("{i} {}", "word ".repeat(200))));
            let full = recall.insert_many(big, false).unwrap_err();
            assert!(full.to_string().contains("full"), "{full}");
            let later = recall.insert(&message(&s, "after".to_owned())).unwrap_err();
            assert!(
                matches!(later, memgpt_core::Error::Aborted { .. }),
                "{later}"
            );
            // Also a call with nothing to write: the unit of work has ended.
            let empty = recall.insert_many(Vec::new(), false).unwrap_err();
            assert!(
                matches!(empty, memgpt_core::Error::Aborted { .. }),
                "{empty}"
            );
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(e, memgpt_core::Error::Aborted { .. }), "{e}");
    assert!(e.to_string().contains("full"), "{e}");
    let recall = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    assert_eq!(recall.size(&[]).unwrap(), 0);
    // The writer is usable again, and the file is sound.
    recall.insert(&message(&s, "small".to_owned())).unwrap();
    assert_eq!(recall.size(&[]).unwrap(), 1);
    drop(store);
    #[derive(QueryableByName)]
    struct Check {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let check: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
        .load(
            &mut SqliteConnection::establish(fs.path().join("full.db").to_str().unwrap()).unwrap(),
        )
        .unwrap();
    assert_eq!(check[0].integrity_check, "ok");
}

/// A database capped by `max_page_count`: SQLite rolls back the failing statement only
/// (it keeps a statement journal for it), so the unit of work goes on and commits what
/// it wrote before and after the failed call.
#[test]
fn a_capped_database_rolls_back_the_failed_call_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capped.db");
    drop(SqliteStore::open(SqliteConfig::new(&path)).unwrap());
    let pages: Vec<Pages> = diesel::sql_query("PRAGMA page_count")
        .load(&mut SqliteConnection::establish(path.to_str().unwrap()).unwrap())
        .unwrap();
    let mut cfg = SqliteConfig::new(&path);
    cfg.max_page_count = Some(pages[0].page_count as u64 + 16);
    let store = SqliteStore::open(cfg).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    store
        .transaction(|tx| {
            let recall = tx.connector::<Message>(TableType::RecallMemory, s)?;
            recall.insert(&message(&s, "before".to_owned()))?;
            let full = recall
                .insert(&message(&s, "word ".repeat(200_000)))
                .unwrap_err();
            assert!(full.to_string().contains("full"), "{full}");
            recall.insert(&message(&s, "after".to_owned()))
        })
        .unwrap();
    let recall = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    let texts: Vec<_> = recall
        .get_all(&[], None)
        .unwrap()
        .iter()
        .map(|m| m.text().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(texts.len(), 2);
    assert!(texts.contains(&"before".to_owned()) && texts.contains(&"after".to_owned()));
}

/// Inside a unit of work the writer is the unit of work's: a write through a store
/// connector on the same thread fails at once instead of waiting for itself until the
/// pool timeout.
#[test]
fn a_store_write_inside_this_threads_unit_of_work_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("a.db"))).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let outside = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    let started = std::time::Instant::now();
    let e = store
        .transaction(|_tx| outside.insert(&message(&s, "x".to_owned())))
        .unwrap_err();
    assert!(matches!(e, memgpt_core::Error::InvalidInput { .. }), "{e}");
    assert!(e.to_string().contains("SqliteTx::connector"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Reads through the store still work inside, on their own connections.
    store.transaction(|_tx| outside.size(&[])).unwrap();
}

/// Armed by the test below: the next release of a savepoint panics.
static PANIC_ON_RELEASE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// diesel instrumentation (user code that runs inside every call) that panics, once armed,
/// as a savepoint is released: before diesel sends `RELEASE`, so the call's savepoint stays
/// open.
struct PanicOnRelease;

impl diesel::connection::Instrumentation for PanicOnRelease {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        use std::sync::atomic::Ordering;
        if let diesel::connection::InstrumentationEvent::CommitTransaction { depth, .. } = event {
            if depth.get() > 1 && PANIC_ON_RELEASE.swap(false, Ordering::SeqCst) {
                panic!("instrumentation panicked as a savepoint was released");
            }
        }
    }
}

/// A panic in the transaction manager itself (diesel's instrumentation, as the second
/// insert of a unit of work releases its savepoint), caught by the closure, which returns
/// `Ok`: the unit of work reports `Aborted` (the call could not close its savepoint), never
/// `Ok` with its first write lost; nothing of it is stored, and the store goes on.
#[test]
fn a_panic_in_the_transaction_manager_never_reports_ok_for_lost_writes() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::Ordering;
    diesel::connection::set_default_instrumentation(|| Some(Box::new(PanicOnRelease))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("m.db"))).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let (first, second) = (message(&s, "first".into()), message(&s, "second".into()));
    let out = store.transaction(|tx| {
        let c = tx.connector::<Message>(TableType::RecallMemory, s)?;
        c.insert(&first)?;
        PANIC_ON_RELEASE.store(true, Ordering::SeqCst);
        let caught = catch_unwind(AssertUnwindSafe(|| c.insert(&second)));
        assert!(caught.is_err());
        Ok(())
    });
    assert!(
        matches!(out, Err(memgpt_core::Error::Aborted { .. })),
        "{out:?}"
    );
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    assert_eq!(c.size(&[]).unwrap(), 0);
    c.insert(&first).unwrap();
    assert_eq!(c.get(first.id()).unwrap(), Some(first));
}

//! Without a `tracing` subscriber, a user of `log` still hears of every connector call
//! (the `tracing` crate's `log` feature), at debug level, without values of records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use memgpt_core::{Message, Role, Scope, StorageConnector, TableType};
use memgpt_sqlite::{SqliteConfig, SqliteStore};
use uuid::Uuid;

struct Capture(Mutex<Vec<(log::Level, String, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push((
            record.level(),
            record.target().to_owned(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

#[test]
fn log_users_see_each_call_at_debug() {
    let logs: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
    log::set_logger(logs).unwrap();
    log::set_max_level(log::LevelFilter::Trace);

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("t.db"))).unwrap();
    let (user, agent) = (Uuid::new_v4(), Uuid::new_v4());
    let recall = store
        .connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))
        .unwrap();
    logs.0.lock().unwrap().clear();
    let m = Message::builder(user, agent, Role::User)
        .text("canary-51c9")
        .build()
        .unwrap();
    recall.insert(&m).unwrap();
    let records = logs.0.lock().unwrap().clone();
    let call = records
        .iter()
        .find(|(_, _, msg)| msg.starts_with("memgpt_store::call") && msg.contains("op=\"insert\""))
        .unwrap_or_else(|| panic!("{records:#?}"));
    assert_eq!(call.0, log::Level::Debug);
    assert!(
        call.2.contains("table=\"memgpt_recall_memory_agent\""),
        "{call:?}"
    );
    // The outcome follows as the span's recorded fields.
    assert!(
        records
            .iter()
            .any(|(level, _, msg)| *level == log::Level::Debug
                && msg.starts_with("memgpt_store::call;")
                && msg.contains("outcome=\"ok\"")
                && msg.contains("duration_us=")),
        "{records:#?}"
    );
    assert!(
        records
            .iter()
            .any(|(_, _, msg)| msg.starts_with("memgpt_store::checkout")),
        "{records:#?}"
    );
    let everything = format!("{records:?}");
    assert!(!everything.contains("canary"), "{everything}");
    assert!(!everything.contains(&user.to_string()), "{everything}");
}

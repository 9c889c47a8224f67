//! Tracing: one `memgpt_store::call` span per connector call with its table, operation,
//! record count, duration and outcome, one `memgpt_store::checkout` span per pool checkout
//! with its wait — and no value of a record in any field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use memgpt_core::{Message, Record, Role, Scope, StorageConnector, TableType};
use memgpt_sqlite::{SqliteConfig, SqliteStore};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as Values};
use tracing::{Event, Metadata, Subscriber};
use uuid::Uuid;

/// One span (or event, with `id` 0): its name and every field recorded on it.
#[derive(Debug, Clone)]
struct Seen {
    id: u64,
    name: String,
    fields: Vec<(String, String)>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A subscriber that keeps everything.
#[derive(Default, Clone)]
struct Capture {
    seen: Arc<Mutex<Vec<Seen>>>,
    next: Arc<AtomicU64>,
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = Vec::new();
        span.record(&mut Fields(&mut fields));
        self.seen.lock().unwrap().push(Seen {
            id,
            name: span.metadata().name().to_owned(),
            fields,
        });
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Values<'_>) {
        let mut seen = self.seen.lock().unwrap();
        let s = seen.iter_mut().find(|s| s.id == span.into_u64()).unwrap();
        values.record(&mut Fields(&mut s.fields));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        self.seen.lock().unwrap().push(Seen {
            id: 0,
            name: event.metadata().name().to_owned(),
            fields,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn every_connector_call_is_one_span_without_record_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("t.db"))).unwrap();
    let (user, agent) = (Uuid::new_v4(), Uuid::new_v4());
    let recall = store
        .connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))
        .unwrap();
    let canary = "canary-7f3a value of a record";
    let messages: Vec<Message> = (0..3)
        .map(|_| {
            Message::builder(user, agent, Role::User)
                .text(canary)
                .build()
                .unwrap()
        })
        .collect();
    let missing = Message::builder(user, agent, Role::User)
        .text(canary)
        .build()
        .unwrap();

    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        assert_eq!(recall.insert_many(messages.clone(), false).unwrap(), 3);
        assert_eq!(recall.get_all(&[], None).unwrap().len(), 3);
        assert_eq!(recall.query_text("canary", Some(2), 0).unwrap().len(), 2);
        assert!(recall.get(messages[0].id()).unwrap().is_some());
        assert!(recall.update(&missing).is_err());
    });

    let seen = capture.seen.lock().unwrap().clone();
    let calls: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.name == "memgpt_store::call")
        .collect();
    let summary: Vec<(&str, &str, Option<&str>, &str)> = calls
        .iter()
        .map(|s| {
            (
                s.field("table").unwrap(),
                s.field("op").unwrap(),
                s.field("records"),
                s.field("outcome").unwrap(),
            )
        })
        .collect();
    let t = "memgpt_recall_memory_agent";
    assert_eq!(
        summary,
        vec![
            (t, "insert_many", Some("3"), "ok"),
            (t, "get_all", Some("3"), "ok"),
            (t, "query_text", Some("2"), "ok"),
            (t, "get", Some("1"), "ok"),
            (t, "update", None, "NotFound"),
        ]
    );
    for c in &calls {
        let us: u64 = c.field("duration_us").unwrap().parse().unwrap();
        assert!(us > 0, "{c:?}");
    }
    // Each call checked a connection out: the writer for writes, a reader for reads.
    let checkouts: Vec<&str> = seen
        .iter()
        .filter(|s| s.name == "memgpt_store::checkout")
        .map(|s| {
            assert!(s.field("wait_us").is_some(), "{s:?}");
            s.field("pool").unwrap()
        })
        .collect();
    assert_eq!(
        checkouts,
        [
            "sqlite-writer",
            "sqlite-readers",
            "sqlite-readers",
            "sqlite-readers",
            "sqlite-writer"
        ]
    );
    // No field holds a value of a record or of the query.
    let everything = format!("{seen:?}");
    assert!(!everything.contains("canary"), "{everything}");
    assert!(!everything.contains(&user.to_string()), "{everything}");
    assert!(!everything.contains(&messages[0].id().to_string()));
}

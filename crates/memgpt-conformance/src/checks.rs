//! The checks of the suite: each `pub fn NAME<B: Subject>(b: &B)` here becomes one test
//! per backend (the build script lists them; none can be forgotten).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use memgpt_core::{
    Column, CursorRequest, Document, Error, Filter, Message, Passage, Record, Result, Role, Scope,
    StorageConnector, TableType, ToolCall,
};

use crate::Subject;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(secs)
}

fn ids(u: u128) -> (Uuid, Uuid) {
    (Uuid::from_u128(u << 64 | 1), Uuid::from_u128(u << 64 | 2))
}

fn scope(u: u128) -> Scope {
    let (user, agent) = ids(u);
    Scope::agent(user, agent)
}

fn msg(s: &Scope, role: Role, secs: i64, text: &str) -> Message {
    let b = Message::builder(s.user_id(), s.agent_id().unwrap(), role)
        .text(text)
        .model("gpt-4")
        .created_at(at(secs));
    let b = if role == Role::Tool {
        b.tool_call_id(format!("call_{secs}"))
    } else {
        b
    };
    b.build().unwrap()
}

fn msgs(s: &Scope, n: usize) -> Vec<Message> {
    (0..n)
        .map(|i| {
            let role = Role::ALL[i % 4];
            msg(s, role, i as i64, &format!("message number {i}"))
        })
        .collect()
}

fn passage(s: &Scope, secs: i64, text: &str, emb: Option<Vec<f32>>) -> Passage {
    let mut b = Passage::builder(s.user_id(), text)
        .created_at(at(secs))
        .data_source("source_0");
    if let Some(a) = s.agent_id() {
        b = b.agent_id(a);
    }
    if let Some(e) = emb {
        b = b.embedding(e, "text-embedding-ada-002");
    }
    b.build().unwrap()
}

fn id_list<R: Record>(rs: &[R]) -> Vec<Uuid> {
    rs.iter().map(Record::id).collect()
}

/// The error of `$r`, which must be `Err(Error::$kind { .. })`.
macro_rules! expect_err {
    ($r:expr, $kind:ident) => {
        match $r {
            Err(e @ Error::$kind { .. }) => e,
            other => panic!("expected Error::{}, got {other:?}", stringify!($kind)),
        }
    };
}

pub fn message_roundtrip<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let (user, agent) = (s.user_id(), s.agent_id().unwrap());
    let full = Message::builder(user, agent, Role::Assistant)
        .text("calling a tool")
        .model("gpt-4")
        .name("memgpt")
        .created_at(Utc.timestamp_micros(1_704_067_200_123_456).unwrap())
        .tool_calls(vec![ToolCall::function(
            "call_1",
            "send_message",
            r#"{"message":"hi"}"#,
        )])
        .embedding(vec![0.5, -1.25, 3.0], "text-embedding-ada-002")
        .build()
        .unwrap();
    let tool = Message::builder(user, agent, Role::Tool)
        .text("{\"status\": \"OK\"}")
        .tool_call_id("call_1")
        .created_at(at(5))
        .build()
        .unwrap();
    let bare = Message::builder(user, agent, Role::System)
        .created_at(at(6))
        .build()
        .unwrap();
    c.insert(&full).unwrap();
    c.insert(&tool).unwrap();
    c.insert(&bare).unwrap();
    assert_eq!(c.get(full.id()).unwrap().as_ref(), Some(&full));
    assert_eq!(c.get(tool.id()).unwrap().as_ref(), Some(&tool));
    assert_eq!(c.get(bare.id()).unwrap().as_ref(), Some(&bare));
    assert_eq!(c.get(Uuid::from_u128(99)).unwrap(), None);
    assert_eq!(c.size(&[]).unwrap(), 3);
}

pub fn tenant_isolation<B: Subject>(b: &B) {
    let (s1, s2) = (scope(1), scope(2));
    // Same user, other agent: also a different tenant for recall memory.
    let s3 = Scope::agent(s1.user_id(), ids(3).1);
    let (c1, c2, c3) = (
        b.recall(s1).unwrap(),
        b.recall(s2).unwrap(),
        b.recall(s3).unwrap(),
    );
    let m1 = msg(&s1, Role::User, 1, "mine");
    c1.insert(&m1).unwrap();
    c2.insert_many(msgs(&s2, 3), false).unwrap();
    for other in [&c2, &c3] {
        assert_eq!(other.get(m1.id()).unwrap(), None);
        let e = expect_err!(other.update(&m1), InvalidInput);
        assert!(e.to_string().contains("connector is scoped"), "{e}");
        assert_eq!(other.delete(&[Filter::eq(Column::Id, m1.id())]).unwrap(), 0);
    }
    // A filter on another agent narrows to nothing; it cannot widen the scope.
    assert!(c1
        .get_all(&[Filter::eq(Column::AgentId, s2.agent_id().unwrap())], None)
        .unwrap()
        .is_empty());
    assert_eq!(c1.size(&[]).unwrap(), 1);
    assert_eq!(c2.size(&[]).unwrap(), 3);
    assert_eq!(c3.size(&[]).unwrap(), 0);
    assert_eq!(c1.get(m1.id()).unwrap(), Some(m1));
}

pub fn records_of_other_tenants_are_rejected<B: Subject>(b: &B) {
    let (s1, s2) = (scope(1), scope(2));
    let c1 = b.recall(s1).unwrap();
    let foreign = msg(&s2, Role::User, 1, "not yours");
    let e = expect_err!(c1.insert(&foreign), InvalidInput);
    assert!(
        matches!(&e, Error::InvalidInput { field, .. } if field == "user_id"),
        "{e}"
    );
    let mut batch = msgs(&s1, 3);
    batch.push(foreign);
    let e = expect_err!(c1.insert_many(batch, true), InvalidInput);
    assert!(
        matches!(&e, Error::InvalidInput { field, .. } if field == "records[3].user_id"),
        "{e}"
    );
    assert_eq!(c1.size(&[]).unwrap(), 0);
    let wrong_agent = msg(&Scope::agent(s1.user_id(), ids(9).1), Role::User, 1, "x");
    let e = expect_err!(c1.insert(&wrong_agent), InvalidInput);
    assert!(
        matches!(&e, Error::InvalidInput { field, .. } if field == "agent_id"),
        "{e}"
    );
}

pub fn scope_must_fit_table<B: Subject>(b: &B) {
    let user_only = Scope::user(ids(1).0);
    expect_err!(b.recall(user_only).map(|_| ()), InvalidInput);
    expect_err!(
        b.passages(TableType::ArchivalMemory, user_only).map(|_| ()),
        InvalidInput
    );
    expect_err!(b.documents(scope(1)).map(|_| ()), InvalidInput);
    expect_err!(
        b.passages(TableType::RecallMemory, scope(1)).map(|_| ()),
        InvalidInput
    );
    // Passages belong to a user: an agent scope there is refused, not half applied.
    let e = expect_err!(
        b.passages(TableType::Passages, scope(1)).map(|_| ()),
        InvalidInput
    );
    assert!(e.to_string().contains("Scope::user"), "{e}");
}

pub fn size_counts_with_filters<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    c.insert_many(msgs(&s, 10), false).unwrap();
    assert_eq!(c.size(&[]).unwrap(), 10);
    assert_eq!(c.size(&[Filter::eq(Column::Role, Role::User)]).unwrap(), 3);
    assert_eq!(c.size(&[Filter::eq(Column::Role, Role::Tool)]).unwrap(), 2);
    assert_eq!(
        c.size(&[
            Filter::eq(Column::Role, Role::Tool),
            Filter::eq(Column::ToolCallId, "call_3")
        ])
        .unwrap(),
        1
    );
    assert_eq!(c.size(&[Filter::is_null(Column::ToolCallId)]).unwrap(), 8);
    assert_eq!(c.size(&[Filter::eq(Column::Model, "gpt-4")]).unwrap(), 10);
    assert_eq!(c.size(&[Filter::eq(Column::Model, "GPT-4")]).unwrap(), 0);
}

pub fn filters_are_validated<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let e = expect_err!(c.size(&[Filter::eq(Column::DataSource, "x")]), InvalidInput);
    assert!(e.to_string().contains("filter.data_source"), "{e}");
    expect_err!(
        c.get_all(&[Filter::eq(Column::Id, "not-a-uuid")], None),
        InvalidInput
    );
    expect_err!(c.delete(&[Filter::eq(Column::Role, "a\0b")]), InvalidInput);
    let p = b.passages(TableType::ArchivalMemory, s).unwrap();
    expect_err!(
        p.size(&[Filter::eq(Column::Role, Role::User)]),
        InvalidInput
    );
    // A hostile value is data, never SQL.
    c.insert_many(msgs(&s, 4), false).unwrap();
    assert_eq!(
        c.size(&[Filter::eq(Column::Model, "x' OR '1'='1")])
            .unwrap(),
        0
    );
    assert_eq!(c.size(&[]).unwrap(), 4);
}

pub fn get_all_is_newest_first<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let all = msgs(&s, 12);
    c.insert_many(all.clone(), false).unwrap();
    let got = c.get_all(&[], Some(5)).unwrap();
    let want: Vec<Uuid> = all.iter().rev().take(5).map(Record::id).collect();
    assert_eq!(id_list(&got), want);
    let got = c.get_all(&[], None).unwrap();
    assert_eq!(got.len(), 12);
    assert_eq!(got[0], all[11]);
    let users = c
        .get_all(&[Filter::eq(Column::Role, Role::User)], Some(2))
        .unwrap();
    assert_eq!(id_list(&users), vec![all[9].id(), all[5].id()]);
    assert!(c.get_all(&[], Some(0)).unwrap().is_empty());
}

pub fn paginated_walks_everything_once<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let mut all = msgs(&s, 20);
    // Five records share one timestamp: ties are ordered by id.
    for i in 0..5 {
        all.push(msg(&s, Role::User, 7, &format!("tie {i}")));
    }
    c.insert_many(all.clone(), false).unwrap();
    let pages: Vec<Vec<Message>> = c
        .get_all_paginated(&[], 10)
        .unwrap()
        .collect::<Result<_>>()
        .unwrap();
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![10, 10, 5]
    );
    let mut want = all.clone();
    want.sort_by_key(|m| m.keyset());
    let got: Vec<Message> = pages.into_iter().flatten().collect();
    assert_eq!(id_list(&got), id_list(&want));
    let users: Vec<Message> = c
        .get_all_paginated(&[Filter::eq(Column::Role, Role::User)], 3)
        .unwrap()
        .collect::<Result<Vec<_>>>()
        .unwrap()
        .concat();
    assert_eq!(users.len(), 10);
    assert!(users.windows(2).all(|w| w[0].keyset() < w[1].keyset()));
    expect_err!(c.get_all_paginated(&[], 0).map(|_| ()), InvalidInput);
    // An exact multiple of the page size ends without an empty page.
    let exact: Vec<_> = c.get_all_paginated(&[], 5).unwrap().collect();
    assert_eq!(exact.len(), 5);
}

pub fn paginated_is_stable_under_inserts<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let all = msgs(&s, 9);
    c.insert_many(all.clone(), false).unwrap();
    let mut pages = c.get_all_paginated(&[], 4).unwrap();
    let first = pages.next().unwrap().unwrap();
    // A record inserted before the cursor does not shift later pages (as OFFSET would).
    c.insert(&msg(&s, Role::User, -100, "older")).unwrap();
    let rest: Vec<Message> = pages.collect::<Result<Vec<_>>>().unwrap().concat();
    let got: Vec<Uuid> = first.iter().chain(rest.iter()).map(Record::id).collect();
    assert_eq!(got, id_list(&all));
}

pub fn cursor_after_before_reverse<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let all = msgs(&s, 10);
    c.insert_many(all.clone(), false).unwrap();
    let page = c.get_all_cursor(&CursorRequest::new().limit(3)).unwrap();
    assert_eq!(id_list(&page.records), id_list(&all[..3]));
    assert_eq!(page.last_id, Some(all[2].id()));
    let page = c
        .get_all_cursor(&CursorRequest::new().after(page.last_id).limit(3))
        .unwrap();
    assert_eq!(id_list(&page.records), id_list(&all[3..6]));
    let page = c
        .get_all_cursor(&CursorRequest::new().reverse(true).limit(4))
        .unwrap();
    let want: Vec<Uuid> = all[6..].iter().rev().map(Record::id).collect();
    assert_eq!(id_list(&page.records), want);
    assert_eq!(page.last_id, Some(all[6].id()));
    let page = c
        .get_all_cursor(
            &CursorRequest::new()
                .before(page.last_id)
                .reverse(true)
                .limit(2),
        )
        .unwrap();
    assert_eq!(id_list(&page.records), vec![all[5].id(), all[4].id()]);
    let page = c
        .get_all_cursor(
            &CursorRequest::new()
                .after(Some(all[1].id()))
                .before(Some(all[5].id()))
                .filters(vec![Filter::eq(Column::Role, Role::Assistant)]),
        )
        .unwrap();
    assert_eq!(id_list(&page.records), vec![all[2].id()]);
    let empty = c
        .get_all_cursor(&CursorRequest::new().after(Some(all[9].id())))
        .unwrap();
    assert_eq!(empty.last_id, None);
    assert!(empty.records.is_empty());
}

pub fn cursor_unknown_id_is_not_found<B: Subject>(b: &B) {
    let (s1, s2) = (scope(1), scope(2));
    let c1 = b.recall(s1).unwrap();
    let c2 = b.recall(s2).unwrap();
    let other = msg(&s2, Role::User, 1, "theirs");
    c2.insert(&other).unwrap();
    for id in [Uuid::from_u128(5), other.id()] {
        let e = expect_err!(
            c1.get_all_cursor(&CursorRequest::new().after(Some(id))),
            NotFound
        );
        assert!(matches!(e, Error::NotFound { id: got, .. } if got == id));
    }
}

pub fn insert_many_all_or_nothing<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let existing = msg(&s, Role::User, 100, "already here");
    c.insert(&existing).unwrap();
    let mut batch = msgs(&s, 700);
    batch.push(existing.to_builder().text("changed").build().unwrap());
    let e = expect_err!(c.insert_many(batch, false), AlreadyExists);
    assert!(
        matches!(e, Error::AlreadyExists { id, .. } if id == existing.id()),
        "{e:?}"
    );
    assert_eq!(c.size(&[]).unwrap(), 1);
    assert_eq!(c.get(existing.id()).unwrap(), Some(existing));
}

pub fn insert_many_upserts<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let all = msgs(&s, 50);
    assert_eq!(c.insert_many(all.clone(), true).unwrap(), 50);
    let changed: Vec<Message> = all
        .iter()
        .map(|m| m.to_builder().text("rewritten").build().unwrap())
        .collect();
    assert_eq!(c.insert_many(changed.clone(), true).unwrap(), 50);
    assert_eq!(c.size(&[]).unwrap(), 50);
    let got = c
        .get_all_paginated(&[], 100)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(got, changed);
    // insert() upserts too, as MemGPT's does.
    let again = all[0].clone();
    c.insert(&again).unwrap();
    assert_eq!(c.get(again.id()).unwrap(), Some(again));
}

pub fn duplicate_ids_in_one_batch<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let a = msg(&s, Role::User, 1, "first");
    let a2 = a.to_builder().text("second").build().unwrap();
    let other = msg(&s, Role::User, 2, "other");
    let e = expect_err!(
        c.insert_many(vec![a.clone(), other.clone(), a2.clone()], false),
        DuplicateId
    );
    assert!(
        matches!(e, Error::DuplicateId { id, first: 0, second: 2 } if id == a.id()),
        "{e:?}"
    );
    assert_eq!(c.size(&[]).unwrap(), 0);
    assert_eq!(c.insert_many(vec![a, other, a2.clone()], true).unwrap(), 2);
    assert_eq!(c.size(&[]).unwrap(), 2);
    assert_eq!(c.get(a2.id()).unwrap(), Some(a2));
}

pub fn insert_many_spans_chunks<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let n = 2_345;
    // Handed over as a lazy iterator, not a collected Vec.
    let lazy = (0..n).map(|i| {
        msg(
            &s,
            Role::ALL[i % 4],
            i as i64,
            &format!("message number {i}"),
        )
    });
    let written = c.insert_many(lazy, false).unwrap();
    assert_eq!(written, n as u64);
    assert_eq!(c.size(&[]).unwrap(), n as u64);
    assert_eq!(
        c.size(&[Filter::eq(Column::Role, Role::System)]).unwrap(),
        587
    );
    let p = b.passages(TableType::ArchivalMemory, s).unwrap();
    let passages: Vec<Passage> = (0..1_501)
        .map(|i| passage(&s, i, &format!("passage {i}"), Some(vec![i as f32; 8])))
        .collect();
    assert_eq!(p.insert_many(passages.clone(), false).unwrap(), 1_501);
    assert_eq!(p.insert_many(passages, true).unwrap(), 1_501);
    assert_eq!(p.size(&[]).unwrap(), 1_501);
}

pub fn insert_many_rejects_invalid_record_before_writing<B: Subject>(b: &B) {
    let s = scope(1);
    let p = b.passages(TableType::ArchivalMemory, s).unwrap();
    // Records are valid by construction; a record of the wrong tenant is the invalid input
    // a connector sees. It must leave nothing of the batch behind, even past a chunk.
    let mut batch: Vec<Passage> = (0..1_200)
        .map(|i| passage(&s, i, &format!("p{i}"), None))
        .collect();
    batch.push(passage(&scope(2), 0, "foreign", None));
    let e = expect_err!(p.insert_many(batch, true), InvalidInput);
    assert!(e.to_string().contains("records[1200].user_id"), "{e}");
    assert_eq!(p.size(&[]).unwrap(), 0);
}

pub fn update_replaces_and_reports_missing<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let m = msg(&s, Role::User, 1, "before");
    c.insert(&m).unwrap();
    let changed = m.to_builder().text("after").name("bob").build().unwrap();
    c.update(&changed).unwrap();
    assert_eq!(c.get(m.id()).unwrap(), Some(changed));
    let missing = msg(&s, Role::User, 2, "never stored");
    let e = expect_err!(c.update(&missing), NotFound);
    assert!(
        matches!(e, Error::NotFound { id, table: TableType::RecallMemory } if id == missing.id())
    );
    assert_eq!(c.size(&[]).unwrap(), 1);
}

pub fn query_vector_exact_order<B: Subject>(b: &B) {
    let s = scope(1);
    let p = b.passages(TableType::ArchivalMemory, s).unwrap();
    if !b.vector_search() {
        expect_err!(p.query(&[1.0, 0.0], 3, &[]), VectorUnavailable);
        return;
    }
    let near = passage(&s, 1, "near", Some(vec![1.0, 0.0, 0.0]));
    let mid = passage(&s, 2, "mid", Some(vec![2.0, 0.0, 0.0]));
    let far = passage(&s, 3, "far", Some(vec![10.0, 0.0, 0.0]));
    // A shorter vector is compared as if zero-padded.
    let short = passage(&s, 4, "short", Some(vec![0.0, 3.0]));
    let none = passage(&s, 5, "no embedding", None);
    let mut other_src = passage(&s, 6, "other source", Some(vec![1.1, 0.0, 0.0]));
    other_src = other_src
        .to_builder()
        .data_source("source_1")
        .build()
        .unwrap();
    p.insert_many(
        vec![
            far.clone(),
            near.clone(),
            mid.clone(),
            short.clone(),
            none,
            other_src.clone(),
        ],
        false,
    )
    .unwrap();
    let other_tenant = b.passages(TableType::ArchivalMemory, scope(2)).unwrap();
    other_tenant
        .insert(&passage(&scope(2), 1, "theirs", Some(vec![1.0, 0.0, 0.0])))
        .unwrap();
    let got = p.query(&[1.0, 0.0, 0.0], 4, &[]).unwrap();
    assert_eq!(
        id_list(&got),
        vec![near.id(), other_src.id(), mid.id(), short.id()]
    );
    let got = p
        .query(
            &[1.0, 0.0, 0.0],
            10,
            &[Filter::eq(Column::DataSource, "source_0")],
        )
        .unwrap();
    assert_eq!(
        id_list(&got),
        vec![near.id(), mid.id(), short.id(), far.id()]
    );
    assert_eq!(got[0], near);
    assert!(p.query(&[1.0, 0.0, 0.0], 0, &[]).unwrap().is_empty());
}

pub fn query_vector_rejects_bad_input<B: Subject>(b: &B) {
    let p = b.passages(TableType::ArchivalMemory, scope(1)).unwrap();
    if !b.vector_search() {
        expect_err!(p.query(&[1.0], 1, &[]), VectorUnavailable);
        return;
    }
    for bad in [vec![], vec![f32::NAN], vec![0.0; 4097]] {
        expect_err!(p.query(&bad, 3, &[]), InvalidInput);
    }
}

pub fn query_date_bounds<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let all = msgs(&s, 10);
    c.insert_many(all.clone(), false).unwrap();
    let got = c.query_date(at(2), at(5), None, 0).unwrap();
    assert_eq!(id_list(&got), id_list(&all[2..=5]));
    let got = c.query_date(at(2), at(5), Some(2), 1).unwrap();
    assert_eq!(id_list(&got), id_list(&all[3..=4]));
    assert!(c.query_date(at(5), at(2), None, 0).unwrap().is_empty());
    let micro = Duration::microseconds(1);
    let got = c.query_date(at(3) - micro, at(3) + micro, None, 0).unwrap();
    assert_eq!(id_list(&got), vec![all[3].id()]);
}

pub fn query_text_words<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let a = msg(&s, Role::User, 1, "I would like some Banana bread today");
    let bb = msg(&s, Role::User, 2, "the weather is nice");
    let cc = msg(&s, Role::Assistant, 3, "banana smoothie weather report");
    c.insert_many(vec![a.clone(), bb.clone(), cc.clone()], false)
        .unwrap();
    b.recall(scope(2))
        .unwrap()
        .insert(&msg(&scope(2), Role::User, 1, "banana for someone else"))
        .unwrap();
    assert_eq!(
        id_list(&c.query_text("banana", None, 0).unwrap()),
        vec![a.id(), cc.id()]
    );
    assert_eq!(
        id_list(&c.query_text("BANANA", None, 0).unwrap()),
        vec![a.id(), cc.id()]
    );
    assert_eq!(
        id_list(&c.query_text("weather banana", None, 0).unwrap()),
        vec![cc.id()]
    );
    assert_eq!(
        id_list(&c.query_text("weather", Some(1), 1).unwrap()),
        vec![cc.id()]
    );
    assert!(c.query_text("pineapple", None, 0).unwrap().is_empty());
    assert!(c.query_text("   ", None, 0).unwrap().is_empty());
    // Updates and deletes keep the text index in step.
    c.update(&bb.to_builder().text("banana weather").build().unwrap())
        .unwrap();
    assert_eq!(c.query_text("banana", None, 0).unwrap().len(), 3);
    c.delete(&[Filter::eq(Column::Id, a.id())]).unwrap();
    assert_eq!(
        id_list(&c.query_text("banana", None, 0).unwrap()),
        vec![bb.id(), cc.id()]
    );
    let p = b.passages(TableType::ArchivalMemory, s).unwrap();
    let pa = passage(&s, 1, "archival memory about Paris", None);
    p.insert(&pa).unwrap();
    assert_eq!(
        id_list(&p.query_text("paris", None, 0).unwrap()),
        vec![pa.id()]
    );
}

pub fn query_text_is_literal<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let m = msg(
        &s,
        Role::User,
        1,
        "100% of the_thing said \"hello\" (really) AND more",
    );
    c.insert(&m).unwrap();
    c.insert(&msg(&s, Role::User, 2, "nothing special here"))
        .unwrap();
    for q in [
        "%",
        "_",
        "\"",
        "*",
        "(",
        "AND",
        "OR",
        "NOT",
        "'; DROP TABLE x; --",
        "a\"b",
        "-",
        ":",
    ] {
        let got = c.query_text(q, None, 0);
        assert!(got.is_ok(), "query {q:?}: {got:?}");
        assert!(got.unwrap().len() <= 1, "query {q:?}");
    }
    assert_eq!(
        id_list(&c.query_text("hello", None, 0).unwrap()),
        vec![m.id()]
    );
    assert_eq!(
        id_list(&c.query_text("\"hello\"", None, 0).unwrap()),
        vec![m.id()]
    );
    assert_eq!(c.size(&[]).unwrap(), 2);
    expect_err!(c.query_text("a\0b", None, 0), InvalidInput);
}

/// Stores `texts` in every table (one record each, in this order: recall memory and archival
/// memory of one agent, passages and documents of its user) and checks that each query of
/// `table` finds exactly the texts it lists, by index into `texts`, in every table.
fn full_text_table<B: Subject>(b: &B, texts: &[&str], table: &[(&str, &[usize])]) {
    let s = scope(1);
    let user = Scope::user(s.user_id());
    let recall = b.recall(s).unwrap();
    let arch = b.passages(TableType::ArchivalMemory, s).unwrap();
    let loose = b.passages(TableType::Passages, user).unwrap();
    let docs = b.documents(user).unwrap();
    let at_index = |i: usize| i64::try_from(i).unwrap();
    recall
        .insert_many(
            texts
                .iter()
                .enumerate()
                .map(|(i, t)| msg(&s, Role::User, at_index(i), t)),
            false,
        )
        .unwrap();
    arch.insert_many(
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| passage(&s, at_index(i), t, None)),
        false,
    )
    .unwrap();
    loose
        .insert_many(
            texts
                .iter()
                .enumerate()
                .map(|(i, t)| passage(&user, at_index(i), t, None)),
            false,
        )
        .unwrap();
    docs.insert_many(
        texts.iter().enumerate().map(|(i, t)| {
            Document::builder(user.user_id(), *t)
                .created_at(at(at_index(i)))
                .build()
                .unwrap()
        }),
        false,
    )
    .unwrap();
    // The texts found, as indexes into `texts`; queries shortened in messages.
    let found = |texts_found: Vec<Option<String>>| -> Vec<usize> {
        texts_found
            .iter()
            .map(|t| texts.iter().position(|x| Some(*x) == t.as_deref()).unwrap())
            .collect()
    };
    fn text_of<R: Record>(rs: Vec<R>) -> Vec<Option<String>> {
        rs.iter().map(|r| r.text().map(str::to_owned)).collect()
    }
    for (q, want) in table {
        let q = *q;
        let shown: String = q.chars().take(40).collect();
        let shown = format!("{shown:?} ({} characters)", q.chars().count());
        let want = want.to_vec();
        let got = found(text_of(recall.query_text(q, None, 0).unwrap()));
        assert_eq!(got, want, "query {shown}, recall memory");
        let got = found(text_of(arch.query_text(q, None, 0).unwrap()));
        assert_eq!(got, want, "query {shown}, archival memory");
        let got = found(text_of(loose.query_text(q, None, 0).unwrap()));
        assert_eq!(got, want, "query {shown}, passages");
        let got = found(text_of(docs.query_text(q, None, 0).unwrap()));
        assert_eq!(got, want, "query {shown}, documents");
    }
}

/// Stop words are words like any other: a query of stop words only finds its text.
pub fn full_text_stop_words_are_words<B: Subject>(b: &B) {
    let texts = [
        "To be or not to be",
        "The end",
        "It is what it is",
        "Where were you when it all began",
        "Nothing to see here",
    ];
    full_text_table(
        b,
        &texts,
        &[
            ("to be", &[0]),
            ("To be or not to be", &[0]),
            ("or not", &[0]),
            ("be", &[0]),
            ("to", &[0, 4]),
            ("the", &[1]),
            ("THE END", &[1]),
            ("is", &[2]),
            ("it is", &[2]),
            ("it", &[2, 3]),
            ("where were you", &[3]),
            ("here", &[4]),
            ("nothing", &[4]),
            ("the question", &[]),
        ],
    );
}

/// Case and the diacritics of Latin letters are folded, both ways: the accented word, its
/// capitals and its plain ASCII spelling find each other (ß is `ss`, æ `ae`, œ `oe`, ø `o`;
/// a decomposed accent, `e` + U+0301, is the accented letter).
pub fn full_text_folds_case_and_accents<B: Subject>(b: &B) {
    const WORDS: [(&str, &str, &str); 21] = [
        ("café", "CAFÉ", "cafe"),
        ("crème", "CRÈME", "creme"),
        ("fête", "FÊTE", "fete"),
        ("noël", "NOËL", "noel"),
        ("voilà", "VOILÀ", "voila"),
        ("château", "CHÂTEAU", "chateau"),
        ("mädchen", "MÄDCHEN", "madchen"),
        ("île", "ÎLE", "ile"),
        ("naïve", "NAÏVE", "naive"),
        ("hôtel", "HÔTEL", "hotel"),
        ("schön", "SCHÖN", "schon"),
        ("sûr", "SÛR", "sur"),
        ("über", "ÜBER", "uber"),
        ("où", "OÙ", "ou"),
        ("garçon", "GARÇON", "garcon"),
        ("señor", "SEÑOR", "senor"),
        ("ångström", "ÅNGSTRÖM", "angstrom"),
        ("søster", "SØSTER", "soster"),
        ("encyclopædia", "ENCYCLOPÆDIA", "encyclopaedia"),
        ("cœur", "CŒUR", "coeur"),
        ("straße", "STRAẞE", "strasse"),
    ];
    let mut texts: Vec<String> = Vec::new();
    for (word, caps, plain) in WORDS {
        texts.push(format!("the word {word} in lower case"));
        texts.push(format!("THE WORD {caps} IN CAPITALS"));
        texts.push(format!("the word {plain} spelt plain"));
    }
    // Decomposed accents (NFD), and letters of other scripts in both cases.
    texts.push("re\u{301}sume\u{301} decomposed".to_owned());
    texts.push("Привет".to_owned());
    texts.push("ΑΘΉΝΑ".to_owned());
    let mut table: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, (word, caps, plain)) in WORDS.iter().enumerate() {
        for q in [word, caps, plain] {
            table.push(((*q).to_owned(), vec![3 * i, 3 * i + 1, 3 * i + 2]));
        }
    }
    let n = 3 * WORDS.len();
    table.extend([
        ("résumé".to_owned(), vec![n]),
        ("RESUME".to_owned(), vec![n]),
        ("STRASSE".to_owned(), vec![3 * 20, 3 * 20 + 1, 3 * 20 + 2]),
        ("Straße café".to_owned(), vec![]),
        ("ПРИВЕТ".to_owned(), vec![n + 1]),
        ("привет".to_owned(), vec![n + 1]),
        ("αθήνα".to_owned(), vec![n + 2]),
        // The accents of other scripts are kept.
        ("αθηνα".to_owned(), vec![]),
    ]);
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let table: Vec<(&str, &[usize])> = table
        .iter()
        .map(|(q, w)| (q.as_str(), w.as_slice()))
        .collect();
    full_text_table(b, &texts, &table);
}

/// No stemming: a word finds itself only ("running" does not find "run"), on every
/// backend (PostgreSQL's Snowball and SQLite's Porter stemmers differ).
pub fn full_text_does_not_stem<B: Subject>(b: &B) {
    let texts = [
        "run",
        "running",
        "runs",
        "runner",
        "connected",
        "connection",
        "generous",
        "generously",
        "flies",
        "fly",
    ];
    full_text_table(
        b,
        &texts,
        &[
            ("run", &[0]),
            ("running", &[1]),
            ("runs", &[2]),
            ("RUNNER", &[3]),
            ("connect", &[]),
            ("connection", &[5]),
            ("generous", &[6]),
            ("generously", &[7]),
            ("fly", &[9]),
            ("flies", &[8]),
        ],
    );
}

/// Every character that is not a letter or a digit separates words, in texts and in
/// queries alike; each word of the query must occur (anywhere, not as a phrase); no prefix
/// matching; a query without any word finds nothing.
pub fn full_text_splits_words_at_punctuation<B: Subject>(b: &B) {
    let texts = [
        "I don't know",
        "send an e-mail today",
        "we write C++ code",
        "C# is different",
        "rename snake_case to camelCase",
        "pi is 3.14 roughly",
        "pi is 3,14 in French",
        "see https://example.com/docs?page=2 now",
        "email me",
        "dont panic",
        "🚀 launch",
        "banana bread",
    ];
    full_text_table(
        b,
        &texts,
        &[
            ("don't", &[0]),
            ("don\u{2019}t", &[0]),
            ("don", &[0]),
            ("dont", &[9]),
            ("e-mail", &[1]),
            ("e mail", &[1]),
            ("mail", &[1]),
            ("email", &[8]),
            ("C++", &[2, 3]),
            ("C#", &[2, 3]),
            ("c", &[2, 3]),
            ("snake_case", &[4]),
            ("snake", &[4]),
            ("snakecase", &[]),
            ("camelcase", &[4]),
            ("camel", &[]),
            ("3.14", &[5, 6]),
            ("3", &[5, 6]),
            ("314", &[]),
            ("is", &[3, 5, 6]),
            ("https://example.com/docs", &[7]),
            ("example.com", &[7]),
            ("example", &[7]),
            ("https://example.org", &[]),
            ("🚀", &[]),
            ("launch 🚀", &[10]),
            ("ban", &[]),
            ("ban*", &[]),
            ("banana*", &[11]),
            ("\"banana\"", &[11]),
            ("(banana)", &[11]),
        ],
    );
}

/// A word of at most 500 characters (counted after folding: `ß` is two) is indexed; a longer
/// one is not, and a query holding one finds nothing (PostgreSQL holds at most 2,046 bytes in a
/// lexeme).
pub fn full_text_words_of_up_to_500_characters_are_indexed<B: Subject>(b: &B) {
    let w500 = "x".repeat(500);
    let w501 = "y".repeat(501);
    let s250 = "ß".repeat(250);
    let s251 = "ß".repeat(251);
    let texts = [
        format!("start {w500} end"),
        format!("start {w501} end"),
        format!("start {s250}"),
        format!("start {s251}"),
    ];
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let ss250 = "ss".repeat(250);
    let w500_end = format!("{w500} end");
    let w501_end = format!("{w501} end");
    full_text_table(
        b,
        &texts,
        &[
            ("start", &[0, 1, 2, 3]),
            ("end", &[0, 1]),
            (&w500, &[0]),
            (&w500_end, &[0]),
            (&w501, &[]),
            (&w501_end, &[]),
            (&s250, &[2]),
            (&ss250, &[2]),
            (&s251, &[]),
        ],
    );
}

/// The text whose index entry is the largest there can be — 400 distinct words of 499
/// four-byte letters filling the indexed prefix — is stored in every table and found by its
/// first and last word (PostgreSQL's tsvector holds at most 1 MiB).
pub fn full_text_the_largest_index_entry_is_storable<B: Subject>(b: &B) {
    let word = |i: u32| -> String {
        (0..499)
            .map(|j| char::from_u32(0x4_0000 + i * 499 + j).unwrap())
            .collect()
    };
    let text = (0..400).map(word).collect::<Vec<_>>().join(" ");
    assert_eq!(
        text.chars().count(),
        memgpt_core::FULL_TEXT_INDEXED_CHARS - 1
    );
    assert_eq!(text.len(), 400 * 499 * 4 + 399);
    let (first, last) = (word(0), word(399));
    full_text_table(
        b,
        &[&text],
        &[
            (&first, &[0]),
            (&last, &[0]),
            (&format!("{first} {last}"), &[0]),
        ],
    );
}

/// The tenant's words of the full-text indexes (`u` / `a` and an id's hex digits) are not
/// words of the text: a query for one finds only the texts that hold it.
pub fn full_text_the_tenant_is_not_a_word<B: Subject>(b: &B) {
    let s = scope(1);
    let user = format!("u{}", s.user_id().simple());
    let agent = format!("a{}", s.agent_id().unwrap().simple());
    let texts = [
        "hello".to_owned(),
        format!("{user} and {agent} written out"),
    ];
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let both = format!("hello {agent}");
    full_text_table(
        b,
        &texts,
        &[("hello", &[0]), (&user, &[1]), (&agent, &[1]), (&both, &[])],
    );
}

pub fn delete_with_filters<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    c.insert_many(msgs(&s, 12), false).unwrap();
    assert_eq!(
        c.delete(&[Filter::eq(Column::Role, Role::Tool)]).unwrap(),
        3
    );
    assert_eq!(c.size(&[]).unwrap(), 9);
    assert_eq!(c.size(&[Filter::eq(Column::Role, Role::Tool)]).unwrap(), 0);
    assert_eq!(
        c.delete(&[Filter::eq(Column::Role, Role::Tool)]).unwrap(),
        0
    );
}

pub fn delete_table_is_scoped<B: Subject>(b: &B) {
    let (s1, s2) = (scope(1), scope(2));
    let (c1, c2) = (b.recall(s1).unwrap(), b.recall(s2).unwrap());
    c1.insert_many(msgs(&s1, 5), false).unwrap();
    c2.insert_many(msgs(&s2, 7), false).unwrap();
    assert_eq!(c1.delete_table().unwrap(), 5);
    assert_eq!(c1.size(&[]).unwrap(), 0);
    assert_eq!(c2.size(&[]).unwrap(), 7);
    // Still usable after.
    c1.insert(&msg(&s1, Role::User, 1, "again")).unwrap();
    assert_eq!(c1.size(&[]).unwrap(), 1);
}

pub fn list_data_sources_is_scoped<B: Subject>(b: &B) {
    let s = Scope::user(ids(1).0);
    let p = b.passages(TableType::Passages, s).unwrap();
    let mk = |i: i64, src: Option<&str>| {
        let mut bd = Passage::builder(s.user_id(), format!("text {i}")).created_at(at(i));
        if let Some(src) = src {
            bd = bd.data_source(src);
        }
        bd.build().unwrap()
    };
    p.insert_many(
        vec![
            mk(1, Some("wiki")),
            mk(2, Some("docs")),
            mk(3, Some("wiki")),
            mk(4, None),
        ],
        false,
    )
    .unwrap();
    let other = b
        .passages(TableType::Passages, Scope::user(ids(2).0))
        .unwrap();
    other
        .insert(
            &Passage::builder(ids(2).0, "x")
                .data_source("secret")
                .build()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        p.list_data_sources().unwrap(),
        vec!["docs".to_owned(), "wiki".to_owned()]
    );
    let d = b.documents(s).unwrap();
    d.insert(
        &Document::builder(s.user_id(), "doc")
            .data_source("files")
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(d.list_data_sources().unwrap(), vec!["files".to_owned()]);
    assert!(b
        .recall(scope(1))
        .unwrap()
        .list_data_sources()
        .unwrap()
        .is_empty());
}

pub fn passage_default_id_upserts<B: Subject>(b: &B) {
    let s = scope(1);
    let p = b.passages(TableType::ArchivalMemory, s).unwrap();
    let first = passage(&s, 1, "the same text", Some(vec![1.0, 2.0]));
    let again = passage(&s, 2, "the same text", Some(vec![3.0, 4.0]));
    assert_eq!(first.id(), again.id());
    p.insert(&first).unwrap();
    p.insert(&again).unwrap();
    assert_eq!(p.size(&[]).unwrap(), 1);
    assert_eq!(p.get(first.id()).unwrap(), Some(again));
}

pub fn passages_table_is_user_scoped<B: Subject>(b: &B) {
    let s = Scope::user(ids(1).0);
    let p = b.passages(TableType::Passages, s).unwrap();
    let doc = Uuid::from_u128(77);
    let with_agent = Passage::builder(s.user_id(), "agent passage")
        .agent_id(ids(1).1)
        .doc_id(doc)
        .metadata(
            json!({"page": 3, "tags": ["a", "b"]})
                .as_object()
                .unwrap()
                .clone(),
        )
        .created_at(at(1))
        .build()
        .unwrap();
    let without = Passage::builder(s.user_id(), "loose passage")
        .created_at(at(2))
        .build()
        .unwrap();
    p.insert_many(vec![with_agent.clone(), without.clone()], false)
        .unwrap();
    assert_eq!(p.get(with_agent.id()).unwrap(), Some(with_agent.clone()));
    assert_eq!(p.size(&[Filter::eq(Column::DocId, doc)]).unwrap(), 1);
    assert_eq!(p.size(&[Filter::is_null(Column::AgentId)]).unwrap(), 1);
    assert_eq!(p.size(&[Filter::eq(Column::AgentId, ids(1).1)]).unwrap(), 1);
    // The archival table is a different table.
    let arch = b.passages(TableType::ArchivalMemory, scope(1)).unwrap();
    assert_eq!(arch.size(&[]).unwrap(), 0);
}

pub fn documents_crud<B: Subject>(b: &B) {
    let s = Scope::user(ids(1).0);
    let d = b.documents(s).unwrap();
    let doc = Document::builder(s.user_id(), "a long document")
        .data_source("files")
        .metadata(json!({"path": "/a.txt"}).as_object().unwrap().clone())
        .created_at(at(1))
        .build()
        .unwrap();
    d.insert(&doc).unwrap();
    assert_eq!(d.get(doc.id()).unwrap(), Some(doc.clone()));
    let changed = doc.to_builder().text("shorter").build().unwrap();
    d.update(&changed).unwrap();
    assert_eq!(d.get(doc.id()).unwrap(), Some(changed));
    assert_eq!(
        id_list(&d.query_text("shorter", None, 0).unwrap()),
        vec![doc.id()]
    );
    if b.vector_search() {
        assert!(d.query(&[1.0], 3, &[]).unwrap().is_empty());
    }
    assert_eq!(d.delete(&[]).unwrap(), 1);
    assert_eq!(d.get(doc.id()).unwrap(), None);
}

pub fn unicode_roundtrip<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let m = msg(&s, Role::User, 1, "héllo wörld — 日本語のテキスト 🚀 emoji");
    c.insert(&m).unwrap();
    assert_eq!(c.get(m.id()).unwrap(), Some(m.clone()));
    assert_eq!(
        id_list(&c.query_text("wörld", None, 0).unwrap()),
        vec![m.id()]
    );
}

pub fn transaction_commits<B: Subject>(b: &B) {
    let s = scope(1);
    let all = msgs(&s, 4);
    let n = b
        .recall_transaction(&[s], |tx| {
            let tx = &tx[0];
            tx.insert(&all[0])?;
            tx.insert_many(all[1..].to_vec(), false)?;
            // Reads inside the unit of work see its own writes.
            tx.size(&[])
        })
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(b.recall(s).unwrap().size(&[]).unwrap(), 4);
}

pub fn transaction_rolls_back_on_error<B: Subject>(b: &B) {
    let s = scope(1);
    let all = msgs(&s, 4);
    let e = b
        .recall_transaction(&[s], |tx| {
            let tx = &tx[0];
            tx.insert_many(all.clone(), false)?;
            tx.update(&msg(&s, Role::User, 50, "missing"))?;
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    let c = b.recall(s).unwrap();
    assert_eq!(c.size(&[]).unwrap(), 0);
    // The connection went back clean: the next unit of work commits.
    b.recall_transaction(&[s], |tx| tx[0].insert(&all[0]))
        .unwrap();
    assert_eq!(c.size(&[]).unwrap(), 1);
}

pub fn transaction_rolls_back_on_panic<B: Subject>(b: &B) {
    let s = scope(1);
    let all = msgs(&s, 3);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.recall_transaction(&[s], |tx| {
            let tx = &tx[0];
            tx.insert_many(all.clone(), false)?;
            panic!("boom inside a unit of work");
            #[allow(unreachable_code)]
            Ok(())
        })
    }));
    assert!(r.is_err());
    let c = b.recall(s).unwrap();
    assert_eq!(c.size(&[]).unwrap(), 0);
    c.insert_many(all, false).unwrap();
    assert_eq!(c.size(&[]).unwrap(), 3);
}

pub fn concurrent_writers_and_readers<B: Subject>(b: &B) {
    const THREADS: usize = 32;
    const ROUNDS: usize = 20;
    let barrier = Arc::new(Barrier::new(THREADS));
    std::thread::scope(|ts| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let barrier = barrier.clone();
                ts.spawn(move || -> Result<()> {
                    let s = scope(t as u128 % 8 + 1);
                    let c = b.recall(s)?;
                    barrier.wait();
                    for r in 0..ROUNDS {
                        let m = msg(&s, Role::User, (t * ROUNDS + r) as i64, "concurrent");
                        c.insert(&m)?;
                        c.get_all(&[], Some(20))?;
                        c.size(&[])?;
                        if r % 5 == 0 {
                            c.insert_many(
                                msgs(&s, 3)
                                    .into_iter()
                                    .map(|m| m.to_builder().id(Uuid::new_v4()).build().unwrap()),
                                true,
                            )?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
    });
    let total: u64 = (1..=8)
        .map(|u| b.recall(scope(u)).unwrap().size(&[]).unwrap())
        .sum();
    assert_eq!(
        total,
        (THREADS * ROUNDS + THREADS * (ROUNDS / 5) * 3) as u64
    );
    let set: BTreeSet<u64> = (1..=8)
        .map(|u| b.recall(scope(u)).unwrap().size(&[]).unwrap())
        .collect();
    assert_eq!(set.len(), 1, "each scope got the same number of writes");
}

/// An id given twice far apart in one call (further apart than any backend's chunk, and on
/// both sides of PostgreSQL's COPY threshold) follows the one rule of `insert_many`:
/// `DuplicateId` naming both indexes and nothing written, or with `exists_ok` the last
/// record wins and the call counts each id once.
pub fn duplicate_ids_far_apart_follow_one_rule<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    for (n, first, second) in [(800usize, 10usize, 700usize), (1_500, 0, 1_200)] {
        let mut batch = msgs(&s, n);
        let again = batch[first]
            .to_builder()
            .text("the last one wins")
            .build()
            .unwrap();
        batch[second] = again.clone();
        let e = expect_err!(c.insert_many(batch.clone(), false), DuplicateId);
        assert!(
            matches!(e, Error::DuplicateId { id, first: f, second: sec }
                if id == again.id() && f == first && sec == second),
            "{n}: {e:?}"
        );
        assert_eq!(c.size(&[]).unwrap(), 0, "{n}: nothing written");
        assert_eq!(c.insert_many(batch, true).unwrap(), (n - 1) as u64, "{n}");
        assert_eq!(c.size(&[]).unwrap(), (n - 1) as u64, "{n}");
        assert_eq!(c.get(again.id()).unwrap(), Some(again), "{n}");
        c.delete(&[]).unwrap();
    }
}

/// Ids that existed before the call, met again in a large call: with `exists_ok` each is
/// updated to its last record and counted once however often and however far apart it
/// comes; without, the first one is `AlreadyExists` (not a repeat of the call), and
/// nothing of the call is written.
pub fn existing_ids_in_a_large_call_count_once<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let before = msgs(&s, 3);
    c.insert_many(before.clone(), false).unwrap();
    for n in [800usize, 1_500] {
        let mut batch = msgs(&s, n);
        // before[0] at 5 and n - 1; before[1] at 600.
        let updated = |m: &Message, text: &str| m.to_builder().text(text).build().unwrap();
        batch[5] = updated(&before[0], "first update");
        batch[600] = updated(&before[1], "only update");
        batch[n - 1] = updated(&before[0], "last update");
        assert_eq!(
            c.insert_many(batch.clone(), true).unwrap(),
            (n - 1) as u64,
            "{n}"
        );
        assert_eq!(c.size(&[]).unwrap(), (n - 1 + 1) as u64, "{n}");
        assert_eq!(
            c.get(before[0].id()).unwrap().unwrap().text(),
            Some("last update"),
            "{n}"
        );
        assert_eq!(
            c.get(before[1].id()).unwrap().unwrap().text(),
            Some("only update"),
            "{n}"
        );
        c.delete(&[]).unwrap();
        c.insert_many(before.clone(), false).unwrap();
        let e = expect_err!(c.insert_many(batch, false), AlreadyExists);
        assert!(
            matches!(e, Error::AlreadyExists { id, .. } if id == before[0].id()),
            "{n}: {e:?}"
        );
        assert_eq!(c.size(&[]).unwrap(), 3, "{n}: nothing of the call written");
    }
}

/// The record with the smallest index that cannot be written decides a call's error, on
/// every write path (one chunk, chunks, SQLite's bulk path, PostgreSQL's COPY): a repeat of
/// the call is `DuplicateId` unless a record before it has an id in the table
/// (`AlreadyExists`), and the other way round; nothing of the call is written either way.
pub fn the_first_record_refused_decides_the_error<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let existing = msgs(&s, 1).remove(0);
    for n in [12usize, 800, 1_500] {
        c.insert(&existing).unwrap();
        let (first, second, early, late) = (n / 12, n / 2, n / 6, n * 2 / 3);
        let mut batch = msgs(&s, n);
        batch[second] = batch[first].clone();
        // The existing id after the repeat: the repeat fails first.
        batch[late] = existing.clone();
        let e = expect_err!(c.insert_many(batch.clone(), false), DuplicateId);
        assert!(
            matches!(e, Error::DuplicateId { id, first: f, second: sec }
                if id == batch[first].id() && f == first && sec == second),
            "{n}: {e:?}"
        );
        assert_eq!(c.size(&[]).unwrap(), 1, "{n}: nothing of the call written");
        // The existing id before the repeat: it fails first.
        batch[early] = existing.clone();
        let e = expect_err!(c.insert_many(batch, false), AlreadyExists);
        assert!(
            matches!(e, Error::AlreadyExists { id, .. } if id == existing.id()),
            "{n}: {e:?}"
        );
        assert_eq!(c.size(&[]).unwrap(), 1, "{n}: nothing of the call written");
        c.delete(&[]).unwrap();
    }
}

/// An upsert that meets another tenant's ids fails on the first record (by index) that
/// carries one, however often and wherever the ids come in the call, and writes nothing.
pub fn an_upsert_fails_on_its_first_record_of_another_tenants_id<B: Subject>(b: &B) {
    let (mine, other) = (scope(1), scope(2));
    let theirs = b.recall(other).unwrap();
    let their_rows = msgs(&other, 2);
    theirs.insert_many(their_rows.clone(), false).unwrap();
    let c = b.recall(mine).unwrap();
    let forged = |m: &Message, i: usize| {
        msg(&mine, Role::User, i as i64, "forged")
            .to_builder()
            .id(m.id())
            .build()
            .unwrap()
    };
    for n in [12usize, 800, 1_500] {
        let mut batch = msgs(&mine, n);
        // Theirs[0] at 3 and last, theirs[1] in between: theirs[0] comes first.
        batch[3] = forged(&their_rows[0], 3);
        batch[n / 2] = forged(&their_rows[1], n / 2);
        batch[n - 1] = forged(&their_rows[0], n - 1);
        let e = expect_err!(c.insert_many(batch, true), AlreadyExists);
        assert!(
            matches!(e, Error::AlreadyExists { id, .. } if id == their_rows[0].id()),
            "{n}: {e:?}"
        );
        assert_eq!(c.size(&[]).unwrap(), 0, "{n}: nothing of the call written");
        for r in &their_rows {
            assert_eq!(theirs.get(r.id()).unwrap().as_ref(), Some(r), "{n}");
        }
    }
}

/// Passages of a user carry an agent: a filter selects one agent's, for every operation.
pub fn passages_agent_filter_selects_one_agent<B: Subject>(b: &B) {
    let (user, a1) = ids(1);
    let a2 = Uuid::from_u128(99);
    let p = b.passages(TableType::Passages, Scope::user(user)).unwrap();
    let of = |agent: Uuid, secs: i64| {
        Passage::builder(user, format!("passage of {agent} at {secs}"))
            .agent_id(agent)
            .created_at(at(secs))
            .build()
            .unwrap()
    };
    p.insert_many(vec![of(a1, 1), of(a1, 2), of(a2, 3)], false)
        .unwrap();
    let only_a1 = [Filter::eq(Column::AgentId, a1)];
    assert_eq!(p.size(&only_a1).unwrap(), 2);
    assert_eq!(p.get_all(&only_a1, None).unwrap().len(), 2);
    assert_eq!(p.delete(&only_a1).unwrap(), 2);
    assert_eq!(p.size(&[]).unwrap(), 1);
}

fn copy_to(m: &Message, to: &Scope) -> Message {
    let mut b = Message::builder(to.user_id(), to.agent_id().unwrap(), m.role())
        .maybe_text(m.text().map(str::to_owned))
        .created_at(m.created_at());
    if let Some(call) = m.tool_call_id() {
        b = b.tool_call_id(call);
    }
    b.build().unwrap()
}

/// Copying one agent's messages to another, the records pulled lazily from a paginated
/// read of the same store while `insert_many` writes: it completes (SQLite reads on
/// connections of their own while its one writer writes).
pub fn insert_many_from_an_iterator_reading_the_same_store<B: Subject>(b: &B) {
    let (src, dst) = (scope(1), scope(2));
    let from = b.recall(src).unwrap();
    from.insert_many(msgs(&src, 1_200), false).unwrap();
    let to = b.recall(dst).unwrap();
    let pages = from.get_all_paginated(&[], 100).unwrap();
    let copies = pages
        .flat_map(|page| page.unwrap())
        .map(|m| copy_to(&m, &dst));
    assert_eq!(to.insert_many(copies, false).unwrap(), 1_200);
    assert_eq!(to.size(&[]).unwrap(), 1_200);
    assert_eq!(
        to.get_all(&[], Some(1)).unwrap()[0].text(),
        Some("message number 1199")
    );
}

/// The same copy inside one unit of work, written the one way it can be: a page read,
/// then written, then the next (an iterator reading the unit of work while its
/// `insert_many` runs does not compile; see `SqliteStore::transaction`). The unit of work
/// sees its own writes, and everything commits together.
pub fn insert_many_within_a_unit_of_work_copies_page_by_page<B: Subject>(b: &B) {
    let (src, dst) = (scope(1), scope(2));
    b.recall(src)
        .unwrap()
        .insert_many(msgs(&src, 1_200), false)
        .unwrap();
    let n = b
        .recall_transaction(&[src, dst], |tx| {
            let (from, to) = (&tx[0], &tx[1]);
            let (mut n, mut after) = (0, None);
            loop {
                let page = from.get_page(&[], after.as_ref(), 100)?;
                let Some(last) = page.last() else { break };
                after = Some(last.keyset());
                n += to.insert_many(page.iter().map(|m| copy_to(m, &dst)), false)?;
            }
            assert_eq!(to.size(&[])?, 1_200);
            Ok(n)
        })
        .unwrap();
    assert_eq!(n, 1_200);
    assert_eq!(b.recall(dst).unwrap().size(&[]).unwrap(), 1_200);
}

/// `n` records of `s`, whose iterator panics when asked for record
/// `panic_at` (after the first chunks were written on either backend).
fn panicking(s: Scope, n: usize, panic_at: usize) -> impl Iterator<Item = Message> {
    (0..n).map(move |i| {
        assert!(i != panic_at, "the records iterator panics at record {i}");
        msg(&s, Role::User, i as i64, &format!("message number {i}"))
    })
}

/// `insert_many` is all or nothing when its iterator panics: on the store, and inside a
/// unit of work whose closure catches the panic and returns `Ok` (the rest of the unit of
/// work commits, nothing of the call that unwound).
pub fn insert_many_is_all_or_nothing_when_its_iterator_panics<B: Subject>(b: &B) {
    let (s, other) = (scope(1), scope(2));
    let c = b.recall(s).unwrap();
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        c.insert_many(panicking(s, 3_000, 2_600), false)
    }));
    assert!(unwound.is_err());
    assert_eq!(c.size(&[]).unwrap(), 0);
    let kept = msg(&other, Role::User, 1, "kept");
    let n = b
        .recall_transaction(&[s, other], |tx| {
            let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                tx[0].insert_many(panicking(s, 3_000, 2_600), false)
            }));
            assert!(unwound.is_err());
            tx[1].insert(&kept)?;
            // The unit of work goes on, its call undone.
            tx[0].size(&[])
        })
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(c.size(&[]).unwrap(), 0);
    let o = b.recall(other).unwrap();
    assert_eq!(id_list(&o.get_all(&[], None).unwrap()), vec![kept.id()]);
    // Both connections went back usable.
    assert_eq!(c.insert_many(msgs(&s, 1_200), false).unwrap(), 1_200);
}

/// `insert_many` reads its iterator to its first end and never asks it again: an
/// iterator that yields more after a `None` (a queue's `try_iter`, a `from_fn` over a
/// channel) has only the records before it written — on each path of every backend (a
/// chunk, many chunks, the bulk path, and the bulk path after the table refused its
/// first try: an id in the table, with `exists_ok`).
pub fn insert_many_reads_its_iterator_to_its_first_end<B: Subject>(b: &B) {
    for (n, existing) in [(10, false), (1_500, false), (1_500, true)] {
        let s = scope(n as u128 + u128::from(existing));
        let c = b.recall(s).unwrap();
        let mut records = msgs(&s, n + 1);
        let late = records.pop().unwrap();
        if existing {
            c.insert(&records[700]).unwrap();
        }
        let mut queue = records.clone().into_iter();
        let mut late = Some(late);
        let mut ended = false;
        let unfused = std::iter::from_fn(move || match queue.next() {
            Some(m) => Some(m),
            None if !ended => {
                ended = true;
                None
            }
            None => late.take(),
        });
        assert_eq!(
            c.insert_many(unfused, true).unwrap(),
            n as u64,
            "{n} records"
        );
        assert_eq!(c.size(&[]).unwrap(), n as u64, "{n} records");
    }
}

/// A 2.4 MB text of distinct words (a book loaded as one document) is stored, whole, in
/// every table and inside a batch; the full-text index covers its first
/// [`FULL_TEXT_INDEXED_CHARS`](memgpt_core::FULL_TEXT_INDEXED_CHARS) characters on every
/// backend: a word inside them is found, a word past them is not.
pub fn long_texts_are_stored_whole_and_indexed_up_to_the_prefix<B: Subject>(b: &B) {
    let n = memgpt_core::FULL_TEXT_INDEXED_CHARS;
    let mut text = String::with_capacity(2_500_000);
    text.push_str("openingword ");
    let mut i = 0;
    while text.len() < n - 100 {
        text.push_str(&format!("w{i} "));
        i += 1;
    }
    text.push_str("insideword ");
    assert!(text.len() < n);
    while text.len() < n + 100 {
        text.push_str("padding ");
    }
    text.push_str("outsideword ");
    while text.len() < 2_400_000 {
        text.push_str(&format!("v{i} "));
        i += 1;
    }
    text.push_str("lastword");
    let s = scope(1);
    let user = Scope::user(s.user_id());
    let recall = b.recall(s).unwrap();
    let m = Message::builder(s.user_id(), s.agent_id().unwrap(), Role::User)
        .text(text.clone())
        .build()
        .unwrap();
    recall.insert(&m).unwrap();
    let arch = b.passages(TableType::ArchivalMemory, s).unwrap();
    let long_passage = passage(&s, 1, &text, Some(vec![1.0; 8]));
    arch.insert_many(
        vec![
            passage(&s, 0, "short one", None),
            long_passage.clone(),
            passage(&s, 2, "short two", None),
        ],
        false,
    )
    .unwrap();
    let loose = b.passages(TableType::Passages, user).unwrap();
    let p = Passage::builder(user.user_id(), text.clone())
        .build()
        .unwrap();
    loose.insert(&p).unwrap();
    let docs = b.documents(user).unwrap();
    let d = Document::builder(user.user_id(), text.clone())
        .build()
        .unwrap();
    docs.insert_many(vec![d.clone()], false).unwrap();

    assert_eq!(
        recall.get(m.id()).unwrap().unwrap().text(),
        Some(text.as_str())
    );
    assert_eq!(
        arch.get(long_passage.id()).unwrap().unwrap().text(),
        Some(text.as_str())
    );
    assert_eq!(
        docs.get(d.id()).unwrap().unwrap().text(),
        Some(text.as_str())
    );
    let found = |w: &str| -> [usize; 4] {
        [
            recall.query_text(w, None, 0).unwrap().len(),
            arch.query_text(w, None, 0).unwrap().len(),
            loose.query_text(w, None, 0).unwrap().len(),
            docs.query_text(w, None, 0).unwrap().len(),
        ]
    };
    assert_eq!(found("openingword"), [1, 1, 1, 1]);
    assert_eq!(found("insideword"), [1, 1, 1, 1]);
    assert_eq!(found("outsideword"), [0, 0, 0, 0]);
    assert_eq!(found("lastword"), [0, 0, 0, 0]);
    // An update re-indexes the new text's prefix.
    let moved = m.to_builder().text("lastword first now").build().unwrap();
    recall.update(&moved).unwrap();
    assert_eq!(recall.query_text("lastword", None, 0).unwrap().len(), 1);
    assert_eq!(recall.query_text("insideword", None, 0).unwrap().len(), 0);
}

/// Other tenants' passages lie near the query, the scope's far from it: the scope's
/// `top_k` nearest come back exactly, in order, as a brute-force ranking says.
pub fn query_vector_is_exact_whatever_other_tenants_hold<B: Subject>(b: &B) {
    let (mine, theirs) = (scope(1), scope(2));
    let p = b.passages(TableType::ArchivalMemory, mine).unwrap();
    if !b.vector_search() {
        expect_err!(p.query(&[1.0], 3, &[]), VectorUnavailable);
        return;
    }
    let point = |i: usize, centre: f32| -> Vec<f32> {
        (0..4)
            .map(|d| centre + ((i * 7 + d * 13) % 17) as f32 / 17.0)
            .collect()
    };
    let others: Vec<Passage> = (0..300)
        .map(|i| passage(&theirs, i as i64, &format!("near {i}"), Some(point(i, 0.0))))
        .collect();
    b.passages(TableType::ArchivalMemory, theirs)
        .unwrap()
        .insert_many(others, false)
        .unwrap();
    let own: Vec<Passage> = (0..40)
        .map(|i| {
            passage(
                &mine,
                i as i64,
                &format!("far {i}"),
                Some(point(i * 3 + 1, 30.0)),
            )
        })
        .collect();
    p.insert_many(own.clone(), false).unwrap();
    let q = [0.5f32; 4];
    let dist = |e: &[f32]| -> f64 {
        e.iter()
            .zip(q)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum::<f64>()
    };
    let mut want: Vec<(f64, Uuid)> = own
        .iter()
        .map(|r| (dist(r.embedding().unwrap().as_slice()), r.id()))
        .collect();
    want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let want: Vec<Uuid> = want.into_iter().take(7).map(|(_, id)| id).collect();
    assert_eq!(id_list(&p.query(&q, 7, &[]).unwrap()), want);
}

/// 16 threads upsert the same 100 ids, each in its own shuffled order (1,000 records a
/// call): no error reaches a caller (rows are written in id order, so two calls never
/// wait on each other's rows crosswise), and each of the 100 rows is a complete value of
/// one writer.
pub fn concurrent_upserts_of_the_same_ids_never_fail<B: Subject>(b: &B) {
    let s = scope(1);
    let ids: Vec<Uuid> = (0..100u128)
        .map(|i| Uuid::from_u128(0xABC0_0000 + i))
        .collect();
    std::thread::scope(|sc| {
        for t in 0..16usize {
            let ids = &ids;
            sc.spawn(move || {
                let c = b.recall(s).unwrap();
                let mark = format!("writer {t}");
                let batch: Vec<Message> = (0..1_000usize)
                    .map(|i| {
                        // A permutation of the ids that differs per thread.
                        let id = ids[(i * 37 + t * 11) % ids.len()];
                        Message::builder(s.user_id(), s.agent_id().unwrap(), Role::User)
                            .id(id)
                            .text(mark.clone())
                            .model(mark.clone())
                            .created_at(at(i as i64))
                            .build()
                            .unwrap()
                    })
                    .collect();
                assert_eq!(c.insert_many(batch, true).unwrap(), 100);
            });
        }
    });
    let c = b.recall(s).unwrap();
    assert_eq!(c.size(&[]).unwrap(), 100);
    for m in c.get_all(&[], None).unwrap() {
        assert_eq!(m.text(), m.model(), "row {} mixes writers", m.id());
    }
}

/// Fault matrix row 19: hostile strings in filters and full-text queries are bound
/// values, never SQL: they match nothing, and the tables are intact.
pub fn hostile_strings_are_values_never_sql<B: Subject>(b: &B) {
    let user = Scope::user(ids(1).0);
    let p = b.passages(TableType::Passages, user).unwrap();
    let one = Passage::builder(user.user_id(), "kept safe")
        .data_source("source_0")
        .build()
        .unwrap();
    p.insert(&one).unwrap();
    for hostile in [
        "x'; DROP TABLE memgpt_passages; --",
        "id; DROP TABLE memgpt_passages",
        "created_at desc; --",
        "\" OR 1=1 --",
        "NEAR(kept safe) OR *",
    ] {
        assert_eq!(
            p.size(&[Filter::eq(Column::DataSource, hostile)]).unwrap(),
            0
        );
        assert_eq!(
            p.delete(&[Filter::eq(Column::DataSource, hostile)])
                .unwrap(),
            0
        );
        assert!(p.query_text(hostile, None, 0).unwrap().len() <= 1);
    }
    assert_eq!(p.size(&[]).unwrap(), 1);
    assert_eq!(p.get(one.id()).unwrap(), Some(one));
}

/// Fault matrix row 20: user B addresses user A's ids: get, update, delete, vector search
/// and list all see nothing of A's, and A's rows are unchanged, field for field.
pub fn another_users_ids_are_not_found_and_unchanged<B: Subject>(b: &B) {
    let (a, other) = (scope(1), scope(2));
    let mine = b.passages(TableType::ArchivalMemory, a).unwrap();
    let rows: Vec<Passage> = (0..5)
        .map(|i| passage(&a, i, &format!("a's passage {i}"), Some(vec![i as f32; 4])))
        .collect();
    mine.insert_many(rows.clone(), false).unwrap();
    let before = mine.get_all(&[], None).unwrap();
    let theirs = b.passages(TableType::ArchivalMemory, other).unwrap();
    for r in &rows {
        assert_eq!(theirs.get(r.id()).unwrap(), None);
        let forged = Passage::builder(other.user_id(), "overwritten?")
            .agent_id(other.agent_id().unwrap())
            .id(r.id())
            .build()
            .unwrap();
        expect_err!(theirs.update(&forged), NotFound);
        expect_err!(theirs.insert(&forged), AlreadyExists);
    }
    assert_eq!(theirs.delete(&[]).unwrap(), 0);
    assert_eq!(theirs.list_data_sources().unwrap(), Vec::<String>::new());
    if b.vector_search() {
        assert!(theirs.query(&[1.0; 4], 10, &[]).unwrap().is_empty());
    }
    assert_eq!(mine.get_all(&[], None).unwrap(), before);
}

/// Fault matrix row 28: a 5 MB text in each of the four tables, through `insert` and in
/// an `insert_many` of 1,001 records (PostgreSQL's COPY path), reads back byte for byte.
pub fn five_megabyte_texts_round_trip_in_every_table<B: Subject>(b: &B) {
    let s = scope(1);
    let user = Scope::user(s.user_id());
    let big: String = (0..5_000_000usize)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect::<String>()
        + " ünïcödé ✓";
    let small = |i: usize| format!("small {i}");
    // Recall memory.
    let recall = b.recall(s).unwrap();
    let one = msg(&s, Role::User, 0, &big);
    recall.insert(&one).unwrap();
    let mut batch: Vec<Message> = (1..1_001)
        .map(|i| msg(&s, Role::User, i as i64, &small(i)))
        .collect();
    batch[500] = msg(&s, Role::User, 5_000, &big);
    let in_batch = batch[500].id();
    assert_eq!(recall.insert_many(batch, false).unwrap(), 1_000);
    for id in [one.id(), in_batch] {
        assert_eq!(recall.get(id).unwrap().unwrap().text(), Some(big.as_str()));
    }
    // Archival memory and passages.
    for (table, scope) in [(TableType::ArchivalMemory, s), (TableType::Passages, user)] {
        let p = b.passages(table, scope).unwrap();
        let with = |i: i64, text: &str| {
            let mut bld = Passage::builder(scope.user_id(), text).created_at(at(i));
            if table == TableType::ArchivalMemory {
                bld = bld.agent_id(s.agent_id().unwrap());
            }
            bld.build().unwrap()
        };
        let one = with(0, &format!("{big} one"));
        p.insert(&one).unwrap();
        let mut batch: Vec<Passage> = (1..1_001).map(|i| with(i, &small(i as usize))).collect();
        batch[700] = with(9_000, &big);
        let in_batch = batch[700].id();
        assert_eq!(p.insert_many(batch, false).unwrap(), 1_000);
        assert_eq!(
            p.get(one.id()).unwrap().unwrap().text(),
            Some(format!("{big} one").as_str())
        );
        assert_eq!(p.get(in_batch).unwrap().unwrap().text(), Some(big.as_str()));
    }
    // Documents.
    let d = b.documents(user).unwrap();
    let one = Document::builder(user.user_id(), big.clone())
        .build()
        .unwrap();
    d.insert(&one).unwrap();
    let mut batch: Vec<Document> = (0..1_001)
        .map(|i| Document::builder(user.user_id(), small(i)).build().unwrap())
        .collect();
    batch[1_000] = Document::builder(user.user_id(), big.clone())
        .build()
        .unwrap();
    let in_batch = batch[1_000].id();
    assert_eq!(d.insert_many(batch, false).unwrap(), 1_001);
    for id in [one.id(), in_batch] {
        assert_eq!(d.get(id).unwrap().unwrap().text(), Some(big.as_str()));
    }
}

/// Fault matrix row 9: 70,000 records in one `insert_many`, chunked under the bind limits
/// in one transaction: with a bad last record (another tenant's) the call fails naming it
/// and commits nothing; without it every record is written.
pub fn seventy_thousand_records_are_all_or_nothing<B: Subject>(b: &B) {
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let n = 70_000usize;
    let foreign = msg(&scope(2), Role::User, 0, "not yours");
    let with_bad_last = (0..n - 1)
        .map(|i| msg(&s, Role::User, i as i64, "bulk"))
        .chain(std::iter::once(foreign));
    let e = expect_err!(c.insert_many(with_bad_last, false), InvalidInput);
    assert!(e.to_string().contains("records[69999]"), "{e}");
    assert_eq!(c.size(&[]).unwrap(), 0);
    let good = (0..n).map(|i| msg(&s, Role::User, i as i64, "bulk"));
    assert_eq!(c.insert_many(good, false).unwrap(), n as u64);
    assert_eq!(c.size(&[]).unwrap(), n as u64);
}

/// Fault matrix row 12: one NUL policy on both backends, applied before any SQL: a NUL
/// byte in any text field, or in any key or string of JSON, is `InvalidInput` naming the
/// field — the record cannot be built, so nothing of a batch is written.
pub fn nul_bytes_are_refused_before_sql<B: Subject>(b: &B) {
    let s = scope(1);
    let (u, a) = (s.user_id(), s.agent_id().unwrap());
    let field_of = |r: Result<Message>| match r {
        Err(Error::InvalidInput { field, .. }) => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    let m = || Message::builder(u, a, Role::Assistant);
    assert_eq!(field_of(m().text("a\0b").build()), "text");
    assert_eq!(field_of(m().model("gpt\0").build()), "model");
    assert_eq!(field_of(m().name("n\0").build()), "name");
    assert!(field_of(
        m().tool_calls(vec![ToolCall::function("call_1", "f", "{\"x\":\"a\0b\"}")])
            .build()
    )
    .starts_with("tool_calls"));
    let nul_json = json!({"k\u{0}": 1}).as_object().unwrap().clone();
    let p = Passage::builder(u, "text")
        .metadata(nul_json.clone())
        .build();
    assert!(
        matches!(p, Err(Error::InvalidInput { ref field, .. }) if field.starts_with("metadata")),
        "{p:?}"
    );
    let p = Passage::builder(u, "text").data_source("s\0").build();
    assert!(
        matches!(p, Err(Error::InvalidInput { ref field, .. }) if field == "data_source"),
        "{p:?}"
    );
    let d = Document::builder(u, "text").metadata(nul_json).build();
    assert!(matches!(d, Err(Error::InvalidInput { .. })), "{d:?}");
    // A batch whose last record cannot be built writes nothing: the caller never gets a
    // record to hand over.
    let c = b.recall(s).unwrap();
    let batch: Result<Vec<Message>> = (0..3)
        .map(|i| m().text(if i == 2 { "bad\0" } else { "good" }).build())
        .collect();
    assert!(batch.is_err());
    assert_eq!(c.size(&[]).unwrap(), 0);
}

/// Six passages whose text and vector ranks are known (see
/// `hybrid_fuses_text_and_vector_ranks_by_reciprocal_rank`), ids 1 to 6.
fn hybrid_passages(s: &Scope) -> Vec<Passage> {
    let rows: [(&str, Option<f32>, &str); 6] = [
        ("Apple, banana and cherry.", Some(0.0), "source_0"),
        ("apple banana", Some(1.0), "source_1"),
        ("an apple", Some(2.0), "source_0"),
        ("durian", Some(0.5), "source_0"),
        ("nothing here", None, "source_0"),
        ("BANANA!", Some(3.0), "source_0"),
    ];
    rows.iter()
        .enumerate()
        .map(|(i, (text, x, source))| {
            let emb = x.map(|x| vec![x, 0.0, 0.0, 0.0]);
            passage(s, i as i64, text, emb)
                .to_builder()
                .id(Uuid::from_u128(i as u128 + 1))
                .data_source(*source)
                .build()
                .unwrap()
        })
        .collect()
}

fn id_numbers<R: Record>(rs: &[R]) -> Vec<u128> {
    rs.iter().map(|r| r.id().as_u128()).collect()
}

/// Hybrid search fuses the full-text ranks (highest sum of word weights first, ties by id)
/// and the exact vector ranks (nearest first, ties by id) by reciprocal-rank fusion,
/// `Σ weight / (k + rank)`, best first, ties by id: the same records in the same order on
/// every backend, checked against a fusion computed by hand. Options change it as stated;
/// another tenant's records never appear.
pub fn hybrid_fuses_text_and_vector_ranks_by_reciprocal_rank<B: Subject>(b: &B) {
    use memgpt_core::hybrid::HybridOptions;
    let s = scope(1);
    let c = b.passages(TableType::ArchivalMemory, s).unwrap();
    let query = [0.4f32, 0.0, 0.0, 0.0];
    if !b.vector_search() {
        expect_err!(
            c.hybrid("apple banana cherry", &query, 5, &[]),
            VectorUnavailable
        );
        return;
    }
    c.insert_many(hybrid_passages(&s), false).unwrap();
    // Another tenant's exact match on both sides never shows.
    let other = b.passages(TableType::ArchivalMemory, scope(2)).unwrap();
    let theirs = passage(&scope(2), 0, "apple banana cherry", Some(query.to_vec()));
    other.insert(&theirs).unwrap();
    // Text ranks (n = 4; apple and banana held by 3 weigh ln 7/3, cherry by 1 ln 5):
    // 1 (3.30), 2 (1.69), 3 (0.85), 6 (0.85; tie by id).
    // Vector ranks (distance to 0.4): 4 (0.1), 1 (0.4), 2 (0.6), 3 (1.6), 6 (2.6).
    // k = 60: 1: 1/61 + 1/62, 2: 1/62 + 1/63, 3: 1/63 + 1/64, 6: 1/64 + 1/65, 4: 1/61.
    let words = "apple banana cherry";
    let got = c.hybrid(words, &query, 5, &[]).unwrap();
    assert_eq!(id_numbers(&got), [1, 2, 3, 6, 4]);
    assert_eq!(got[0], hybrid_passages(&s)[0], "whole records come back");
    // k = 0: 1: 1 + 1/2, 4: 1, 2: 1/2 + 1/3, 3: 1/3 + 1/4, 6: 1/4 + 1/5.
    let k0 = HybridOptions::new().k(0.0);
    let got = c.hybrid_with(words, &query, 10, &[], &k0).unwrap();
    assert_eq!(id_numbers(&got), [1, 4, 2, 3, 6]);
    // One side weighted out: that side's order alone.
    let text_only = HybridOptions::new().weights(1.0, 0.0);
    let got = c.hybrid_with(words, &query, 10, &[], &text_only).unwrap();
    assert_eq!(id_numbers(&got), [1, 2, 3, 6]);
    let vector_only = HybridOptions::new().weights(0.0, 1.0);
    let got = c.hybrid_with(words, &query, 10, &[], &vector_only).unwrap();
    assert_eq!(id_numbers(&got), [4, 1, 2, 3, 6]);
    // Two candidates a side: text 1, 2; vector 4, 1. 1: 1/61 + 1/62, 4: 1/61, 2: 1/62.
    let two = HybridOptions::new().candidates(2);
    let got = c.hybrid_with(words, &query, 2, &[], &two).unwrap();
    assert_eq!(id_numbers(&got), [1, 4]);
    // A side never ranks fewer than top_k: candidates(2) with top_k 10 ranks 10 a side.
    let got = c.hybrid_with(words, &query, 10, &[], &two).unwrap();
    assert_eq!(id_numbers(&got), [1, 2, 3, 6, 4]);
    // Weights, k = 0, the vector side three times: 4: 3/1, 1: 1/1 + 3/2, 2: 1/2 + 3/3.
    let heavy = HybridOptions::new().k(0.0).weights(1.0, 3.0);
    let got = c.hybrid_with(words, &query, 3, &[], &heavy).unwrap();
    assert_eq!(id_numbers(&got), [4, 1, 2]);
    // Filters apply to both sides: source_1 (id 2) is left out.
    let f = [Filter::eq(Column::DataSource, "source_0")];
    let got = c.hybrid(words, &query, 10, &f).unwrap();
    assert_eq!(id_numbers(&got), [1, 3, 6, 4]);
    assert!(c.hybrid(words, &query, 0, &[]).unwrap().is_empty());
}

/// Hybrid search degrades to one side, never to an error, when the other has nothing to
/// rank: a query without a word matching (or without any word), a scope whose records
/// have no embedding; in recall memory as in archival memory.
pub fn hybrid_degrades_to_one_side_when_the_other_is_empty<B: Subject>(b: &B) {
    if !b.vector_search() {
        return;
    }
    let s = scope(1);
    let c = b.passages(TableType::ArchivalMemory, s).unwrap();
    c.insert_many(hybrid_passages(&s), false).unwrap();
    let query = [0.4f32, 0.0, 0.0, 0.0];
    for words in ["zebra", "?! —", ""] {
        let got = c.hybrid(words, &query, 10, &[]).unwrap();
        assert_eq!(id_numbers(&got), [4, 1, 2, 3, 6], "{words:?}");
    }
    // No embedding stored in this scope: the text ranks alone.
    let bare = scope(3);
    let p = b.passages(TableType::ArchivalMemory, bare).unwrap();
    let texts = ["cherry", "apple cherry", "banana"];
    let rows: Vec<Passage> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| passage(&bare, i as i64, t, None))
        .collect();
    p.insert_many(rows.clone(), false).unwrap();
    let got = p.hybrid("apple cherry", &query, 10, &[]).unwrap();
    assert_eq!(id_list(&got), [rows[1].id(), rows[0].id()]);
    // Recall memory: messages with and without embeddings.
    let r = b.recall(s).unwrap();
    let msgs: Vec<Message> = [
        ("hello world", Some(1.0f32)),
        ("world", None),
        ("far", Some(9.0)),
    ]
    .iter()
    .enumerate()
    .map(|(i, (t, x))| {
        let m = msg(&s, Role::User, i as i64, t);
        match x {
            Some(x) => m
                .to_builder()
                .embedding(vec![*x, 0.0, 0.0, 0.0], "text-embedding-ada-002")
                .build()
                .unwrap(),
            None => m,
        }
    })
    .collect();
    r.insert_many(msgs.clone(), false).unwrap();
    // Text: hello world (2 words), world (1). Vector: hello world (0.6), far (8.6).
    // hello world: 1/61 + 1/61; world: 1/62; far: 1/62; tie by id.
    let got = r.hybrid("hello world", &query, 10, &[]).unwrap();
    let mut tail = vec![msgs[1].id(), msgs[2].id()];
    tail.sort();
    assert_eq!(id_list(&got), [vec![msgs[0].id()], tail].concat());
}

/// Six passages (ids 1 to 6, created at 0 to 5 s) whose metadata covers the cases of
/// `metadata_and_date_filters_agree_on_every_operation`.
fn metadata_passages(s: &Scope) -> Vec<Passage> {
    let metadata = [
        json!({"topic": "rust", "score": 5, "tags": ["a", "b"], "nested": {"level": 2}}),
        json!({"topic": "python", "score": 2.5, "tags": ["b"], "nested": {"level": "2"}}),
        json!({"topic": "Rust", "score": "5", "flag": true}),
        json!({"score": null, "tags": "a"}),
        json!({"note": "\\u0000 is text here"}),
        json!({"a.b": 1, "a": {"b": 2}}),
    ];
    metadata
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let serde_json::Value::Object(m) = m else {
                unreachable!()
            };
            passage(
                s,
                i as i64,
                &format!("passage {i}"),
                Some(vec![i as f32, 0.0]),
            )
            .to_builder()
            .id(Uuid::from_u128(i as u128 + 1))
            .metadata(m)
            .build()
            .unwrap()
        })
        .collect()
}

/// Typed filters over `metadata_` keys and `created_at`, combined with and / or / not,
/// give the same records on every backend and on every operation that takes filters
/// (`get_all`, keyset pages, `size`, `query`, `hybrid`, `delete`): a table of filters ×
/// records with missing keys, JSON nulls, numbers stored as strings, nested keys and a key
/// holding a dot. Numbers compare as numbers, strings byte by byte, never one as the other.
pub fn metadata_and_date_filters_agree_on_every_operation<B: Subject>(b: &B) {
    use memgpt_core::filter::{Cmp, Scalar};
    let s = scope(1);
    let c = b.passages(TableType::ArchivalMemory, s).unwrap();
    c.insert_many(metadata_passages(&s), false).unwrap();
    let m = Filter::metadata;
    let path = |p: &[&str]| Filter::metadata_path(p.iter().copied());
    let none: Vec<u128> = Vec::new();
    let table: Vec<(Filter, Vec<u128>)> = vec![
        (m("topic").eq("rust"), vec![1]),
        (m("topic").ne("rust"), vec![2, 3, 4, 5, 6]),
        (m("score").eq(5), vec![1]),
        (m("score").eq(5.0), vec![1]),
        (m("score").eq("5"), vec![3]),
        (m("score").gt(2), vec![1, 2]),
        (m("score").le(2.5), vec![2]),
        (m("score").eq(Scalar::Null), vec![4]),
        (m("score").exists(), vec![1, 2, 3, 4]),
        (Filter::not(m("score").exists()), vec![5, 6]),
        (m("topic").lt("s"), vec![1, 2, 3]),
        (m("topic").ge("r"), vec![1]),
        (m("topic").is_in(["rust", "Rust"]), vec![1, 3]),
        (m("topic").is_in(Vec::<&str>::new()), none.clone()),
        (m("tags").contains("a"), vec![1]),
        (m("tags").contains("b"), vec![1, 2]),
        (path(&["nested", "level"]).eq(2), vec![1]),
        (path(&["nested", "level"]).eq("2"), vec![2]),
        (path(&["nested", "level"]).ge(2), vec![1]),
        (m("a.b").eq(1), vec![6]),
        (path(&["a", "b"]).eq(2), vec![6]),
        (path(&["a", "b"]).eq(1), none.clone()),
        (m("flag").eq(true), vec![3]),
        (m("flag").eq(1), none.clone()),
        (m("missing").ne(1), vec![1, 2, 3, 4, 5, 6]),
        // Digits are an object key, never an array index.
        (path(&["tags", "0"]).exists(), none.clone()),
        (path(&["tags", "0"]).eq("b"), none.clone()),
        // A backslash and "u0000" in a string are text, not a NUL.
        (m("note").exists(), vec![5]),
        (m("note").eq("\\u0000 is text here"), vec![5]),
        (
            Filter::or([m("topic").eq("rust"), m("flag").eq(true)]),
            vec![1, 3],
        ),
        (
            Filter::and([m("score").exists(), Filter::not(m("topic").eq("python"))]),
            vec![1, 3, 4],
        ),
        (Filter::and([]), vec![1, 2, 3, 4, 5, 6]),
        (Filter::or([]), none.clone()),
        (Filter::created_at(Cmp::Lt, at(2)), vec![1, 2]),
        (Filter::created_at(Cmp::Ge, at(4)), vec![5, 6]),
        (
            Filter::and([
                Filter::eq(Column::DataSource, "source_0"),
                Filter::created_at(Cmp::Le, at(1)),
            ]),
            vec![1, 2],
        ),
        (
            Filter::not(Filter::eq(Column::DataSource, "source_0")),
            none.clone(),
        ),
    ];
    let sorted = |rs: Vec<Passage>| {
        let mut ids = id_numbers(&rs);
        ids.sort_unstable();
        ids
    };
    for (f, expected) in &table {
        let fs = std::slice::from_ref(f);
        let what = format!("{f:?}");
        assert_eq!(
            sorted(c.get_all(fs, None).unwrap()),
            *expected,
            "get_all {what}"
        );
        assert_eq!(c.size(fs).unwrap(), expected.len() as u64, "size {what}");
        let paged: Vec<Passage> = c
            .get_all_paginated(fs, 2)
            .unwrap()
            .flat_map(|p| p.unwrap())
            .collect();
        assert_eq!(sorted(paged), *expected, "pages {what}");
        let words = c.query_text_with("passage", fs, None, 0).unwrap();
        assert_eq!(sorted(words), *expected, "query_text {what}");
        if b.vector_search() {
            let near = c.query(&[0.0, 0.0], 10, fs).unwrap();
            assert_eq!(sorted(near), *expected, "query {what}");
            let both = c.hybrid("passage", &[0.0, 0.0], 10, fs).unwrap();
            assert_eq!(sorted(both), *expected, "hybrid {what}");
        }
    }
    // A delete applies the filter, and only it.
    assert_eq!(c.delete(&[m("tags").contains("b")]).unwrap(), 2);
    assert_eq!(sorted(c.get_all(&[], None).unwrap()), [3, 4, 5, 6]);
}

/// A filter the backends cannot apply exactly is refused, naming it, before any statement:
/// metadata on recall memory (it has none), a key SQLite's JSON paths cannot address, an
/// order test of a boolean, a number that does not compare exactly, nesting past the limit.
pub fn filters_that_cannot_apply_exactly_are_refused<B: Subject>(b: &B) {
    let s = scope(1);
    let recall = b.recall(s).unwrap();
    let e = expect_err!(
        recall.get_all(&[Filter::metadata("topic").eq("x")], None),
        InvalidInput
    );
    assert!(
        matches!(&e, Error::InvalidInput { field, .. } if field == "filter.metadata_.topic"),
        "{e:?}"
    );
    let c = b.passages(TableType::ArchivalMemory, s).unwrap();
    let refused = [
        Filter::metadata("say \"hi\"").eq(1),
        Filter::metadata("").exists(),
        Filter::metadata("flag").lt(true),
        Filter::metadata("n").eq(f64::NAN),
        Filter::metadata("n").eq(2f64.powi(60)),
        Filter::metadata("n").gt(2f64.powi(53)),
        Filter::metadata("back\\slash").exists(),
        Filter::metadata("n").is_in(0..300),
        Filter::metadata("t").eq("nul\0byte"),
        (0..20).fold(Filter::metadata("k").exists(), |f, _| Filter::not(f)),
    ];
    for f in refused {
        let fs = [f];
        expect_err!(c.get_all(&fs, None), InvalidInput);
        expect_err!(c.size(&fs), InvalidInput);
        expect_err!(c.delete(&fs), InvalidInput);
        expect_err!(c.query_text_with("x", &fs, None, 0), InvalidInput);
    }
    // The tests of all a call's filters count together.
    let many: Vec<Filter> = (0..300)
        .map(|i| Filter::metadata(format!("k{i}")).exists())
        .collect();
    expect_err!(c.get_all(&many, None), InvalidInput);
    let at_limit: Vec<Filter> = (0..256)
        .map(|i| Filter::metadata(format!("k{i}")).exists())
        .collect();
    assert!(c.get_all(&at_limit, None).unwrap().is_empty());
    let wide = Filter::metadata("k").is_in(0..256);
    assert!(c.get_all(&[wide], None).unwrap().is_empty());
}

/// The text side of a hybrid search weighs each word by how rare it is in the scope and
/// filters: a word held by `df` of the `n` records holding any query word weighs
/// `ln(1 + n / df)` (in millionths), a record scores the sum of its words' weights. Another
/// tenant's records, and records the filters leave out, change no weight.
pub fn hybrid_text_side_weighs_rare_words_above_common_ones<B: Subject>(b: &B) {
    use memgpt_core::hybrid::HybridOptions;
    let s = scope(1);
    let c = b.passages(TableType::ArchivalMemory, s).unwrap();
    let texts = ["the cat", "the dog", "the cat and the dog sat", "a zebra"];
    let rows: Vec<Passage> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = passage(&s, i as i64, t, None).to_builder();
            p.id(Uuid::from_u128(i as u128 + 1)).build().unwrap()
        })
        .collect();
    c.insert_many(rows, false).unwrap();
    // Zebras everywhere else: in another tenant's scope, and in this one's other source.
    let other = b.passages(TableType::ArchivalMemory, scope(2)).unwrap();
    other
        .insert_many(
            (0..10).map(|i| passage(&scope(2), i, &format!("zebra {i}"), None)),
            false,
        )
        .unwrap();
    let text_only = HybridOptions::new().weights(1.0, 0.0);
    // n = 4; the: 3 (ln 7/3 = 0.847), dog: 2 (ln 3 = 1.099), zebra: 1 (ln 5 = 1.609).
    // 2 and 3: 1.946 (tie by id), 4: 1.609, 1: 0.847. Counting words would put 1 before 4.
    let got = c
        .hybrid_with("the dog zebra", &[], 10, &[], &text_only)
        .unwrap();
    assert_eq!(id_numbers(&got), [2, 3, 4, 1]);
    let zebras = (0..10).map(|i| {
        let p = passage(&s, 10 + i, &format!("zebra {i}"), None).to_builder();
        p.data_source("source_9").build().unwrap()
    });
    c.insert_many(zebras, false).unwrap();
    let f = [Filter::eq(Column::DataSource, "source_0")];
    let got = c
        .hybrid_with("the dog zebra", &[], 10, &f, &text_only)
        .unwrap();
    assert_eq!(id_numbers(&got), [2, 3, 4, 1]);
    // Without the filter: n = 14, the: 3 (ln 17/3 = 1.735), dog: 2 (ln 8 = 2.079), zebra:
    // 11 (ln 25/11 = 0.821): 2, 3 (3.814), then 1 (1.735), then the 11 zebras (0.821).
    let got = c
        .hybrid_with("the dog zebra", &[], 3, &[], &text_only)
        .unwrap();
    assert_eq!(id_numbers(&got), [2, 3, 1]);
}

/// Hybrid search on documents ranks the text side alone, and so does a search whose vector
/// side is weighted 0: the query vector is neither needed nor checked, on a database
/// without vector search too. A text of more than 64 distinct words is refused.
pub fn hybrid_without_a_vector_side_ranks_text_alone<B: Subject>(b: &B) {
    use memgpt_core::hybrid::HybridOptions;
    let s = scope(1);
    let docs = b.documents(Scope::user(s.user_id())).unwrap();
    let rows: Vec<Document> = ["apple", "apple banana", "cherry"]
        .iter()
        .map(|t| Document::builder(s.user_id(), *t).build().unwrap())
        .collect();
    docs.insert_many(rows.clone(), false).unwrap();
    let got = docs.hybrid("apple banana", &[], 10, &[]).unwrap();
    assert_eq!(id_list(&got), [rows[1].id(), rows[0].id()]);
    let archival = b.passages(TableType::ArchivalMemory, s).unwrap();
    archival
        .insert_many(
            ["apple", "apple banana"]
                .iter()
                .enumerate()
                .map(|(i, t)| passage(&s, i as i64, t, None)),
            false,
        )
        .unwrap();
    let text_only = HybridOptions::new().weights(1.0, 0.0);
    let got = archival
        .hybrid_with("banana apple", &[], 10, &[], &text_only)
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].text(), Some("apple banana"));
    let long: String = (0..65).map(|i| format!("w{i} ")).collect();
    let e = expect_err!(docs.hybrid(&long, &[], 10, &[]), InvalidInput);
    assert!(
        matches!(&e, Error::InvalidInput { field, .. } if field == "text"),
        "{e:?}"
    );
    let sixty_four: String = (0..64).map(|i| format!("w{i} ")).collect();
    assert!(docs.hybrid(&sixty_four, &[], 10, &[]).unwrap().is_empty());
}

/// Retention: a prune deletes what its rule selects in the scope and nothing else, oldest
/// first, in batches of at most the batch size (each its own transaction); stopped after
/// a batch it resumes with the same rule; in a unit of work it rolls back with it.
pub fn prune_removes_in_bounded_batches_and_resumes<B: Subject>(b: &B) {
    use memgpt_core::retention::Retention;
    let s = scope(1);
    let c = b.recall(s).unwrap();
    let all = msgs(&s, 25);
    c.insert_many(all.clone(), false).unwrap();
    let other = b.recall(scope(2)).unwrap();
    other.insert_many(msgs(&scope(2), 5), false).unwrap();
    // Before 10 s: 10 records. One batch of 4, stopped; then the rest, 4 + 2.
    let old = Retention::OlderThan(at(10));
    assert_eq!(c.prune_batch(&old, 4).unwrap(), 4);
    assert_eq!(c.size(&[]).unwrap(), 21);
    let oldest = c.get_page(&[], None, 1).unwrap();
    assert_eq!(oldest[0].id(), all[4].id(), "the oldest went first");
    let p = c.prune(&old, 4).unwrap();
    assert_eq!((p.deleted, p.batches), (6, 2));
    assert_eq!(c.prune(&old, 4).unwrap().deleted, 0);
    // Keep the newest 5 of 15: 10 go, in batches of 3.
    let p = c.prune(&Retention::KeepNewest(5), 3).unwrap();
    assert_eq!((p.deleted, p.batches), (10, 4));
    let mut left = id_list(&c.get_all(&[], None).unwrap());
    left.sort();
    let mut newest = id_list(&all[20..]);
    newest.sort();
    assert_eq!(left, newest);
    assert_eq!(c.prune(&Retention::KeepNewest(5), 3).unwrap().deleted, 0);
    assert_eq!(other.size(&[]).unwrap(), 5, "another tenant's records stay");
    // A unit of work that fails takes its prune back.
    let e = b.recall_transaction(&[s], |cs| {
        cs[0].prune(&Retention::KeepNewest(0), 2)?;
        assert_eq!(cs[0].size(&[]).unwrap(), 0);
        Err::<(), _>(Error::invalid("test", "roll back"))
    });
    assert!(e.is_err());
    assert_eq!(c.size(&[]).unwrap(), 5);
    // A data source, on passages; refused on recall memory; batch sizes at the limits.
    let p = b.passages(TableType::ArchivalMemory, s).unwrap();
    let rows: Vec<Passage> = (0..5)
        .map(|i| {
            let source = if i % 2 == 0 { "keep" } else { "drop" };
            passage(&s, i, &format!("text {i}"), None)
                .to_builder()
                .data_source(source)
                .build()
                .unwrap()
        })
        .collect();
    p.insert_many(rows, false).unwrap();
    let drop = Retention::DataSource("drop".into());
    assert_eq!(p.prune(&drop, 1).unwrap().deleted, 2);
    assert_eq!(p.list_data_sources().unwrap(), ["keep"]);
    expect_err!(c.prune(&drop, 10), InvalidInput);
    expect_err!(c.prune_batch(&old, 0), InvalidInput);
    expect_err!(c.prune_batch(&old, 50_001), InvalidInput);
    assert_eq!(c.prune_batch(&old, 50_000).unwrap(), 0);
}

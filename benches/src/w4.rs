//! W4's calls, written once: the suite times them (`reads::w4`) and `cargo xtask profile`
//! counts their instructions (`benches/benches/w4_calls.rs`), through the library and by
//! hand on the drivers (`raw`).

use anyhow::{ensure, Result};
use chrono::{DateTime, Utc};
use memgpt_core::{Message, Record, Scope, StorageConnector, TableType};
use uuid::Uuid;

use crate::data::{self, messages, tenants};
use crate::loads::insert_by_agent;
use crate::progress::Progress;
use crate::raw::Raw;
use crate::target::{Fresh, Store};
use crate::with_connector;

/// The calls of W4, as the suite's table names them.
pub const CASES: [&str; 6] = [
    "get_all_100",
    "pages_100",
    "size",
    "query_date_1h",
    "query_text_word",
    "get_id",
];

/// Messages per agent.
pub const PER_AGENT: usize = 1_000;

/// A loaded W4 table: its tenants, an id of each agent, and the one-hour window.
pub struct Loaded {
    /// (user, agent) of each agent.
    pub tenants: Vec<(Uuid, Uuid)>,
    /// A message id of each agent (its middle one).
    pub ids: Vec<Uuid>,
    /// `query_date`'s window: an hour in the middle of the workload.
    pub hour: (DateTime<Utc>, DateTime<Utc>),
}

impl Loaded {
    /// The arguments of call `i`: agents in turn.
    pub fn call(&self, i: usize) -> Call {
        let (user, agent) = self.tenants[i % self.tenants.len()];
        Call {
            user,
            agent,
            id: self.ids[i % self.ids.len()],
            hour: self.hour,
        }
    }
}

/// The arguments of one W4 call.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// The agent's user.
    pub user: Uuid,
    /// The agent.
    pub agent: Uuid,
    /// A message of the agent (`get_id`).
    pub id: Uuid,
    /// `query_date`'s window.
    pub hour: (DateTime<Utc>, DateTime<Utc>),
}

/// Loads `agents` x 1,000 messages into `fresh`, each agent's in one `insert_many`.
pub fn load(fresh: &Fresh, agents: usize) -> Result<Loaded> {
    let rows = agents * PER_AGENT;
    let ts = tenants(10, agents / 10);
    // Agent i's messages are records i, i + agents, i + 2 agents, … of the workload.
    let mut by_agent: Vec<Vec<Message>> = vec![Vec::new(); ts.len()];
    for (k, m) in messages(ts.clone(), rows).enumerate() {
        by_agent[k % ts.len()].push(m);
    }
    let ids: Vec<Uuid> = by_agent.iter().map(|b| b[b.len() / 2].id()).collect();
    let mut p = Progress::new(format!("W4: loading {rows} messages"), rows as u64);
    for batch in by_agent {
        p.add(batch.len() as u64);
        insert_by_agent(fresh, TableType::RecallMemory, &batch, false)?;
    }
    p.finish();
    let hour_start = data::start() + chrono::Duration::seconds(rows as i64 / 2);
    Ok(Loaded {
        tenants: ts,
        ids,
        hour: (hour_start, hour_start + chrono::Duration::hours(1)),
    })
}

/// Runs W4's `case` through a connector of `store` (made for the call, as a service does).
pub fn library(store: &Store, case: &str, call: &Call) -> Result<()> {
    let (start, end) = call.hour;
    with_connector!(
        store,
        Message,
        TableType::RecallMemory,
        Scope::agent(call.user, call.agent),
        |c| {
            match case {
                "get_all_100" => ensure!(c.get_all(&[], Some(100))?.len() == 100),
                "pages_100" => {
                    let mut n = 0;
                    for page in c.get_all_paginated(&[], 100)? {
                        n += page?.len();
                    }
                    ensure!(n == PER_AGENT, "{n}");
                }
                "size" => ensure!(c.size(&[])? == PER_AGENT as u64),
                "query_date_1h" => {
                    c.query_date(start, end, None, 0)?;
                }
                "query_text_word" => {
                    c.query_text("lantern", None, 0)?;
                }
                _ => ensure!(c.get(call.id)?.is_some()),
            }
        }
    );
    Ok(())
}

/// Runs W4's `case` by hand on the driver a user would pick instead.
pub fn raw(raw: &mut Raw, case: &str, call: &Call) -> Result<()> {
    let (u, a) = (call.user, call.agent);
    match case {
        "get_all_100" => ensure!(raw.get_all(u, a, 100)? == 100),
        "pages_100" => ensure!(raw.pages(u, a, 100)? == PER_AGENT),
        "size" => ensure!(raw.size(u, a)? == PER_AGENT as i64),
        "query_date_1h" => {
            raw.query_date(u, a, call.hour.0, call.hour.1)?;
        }
        "query_text_word" => {
            raw.query_text(u, a, "lantern")?;
        }
        _ => ensure!(raw.get(u, a, call.id)? == 1),
    }
    Ok(())
}

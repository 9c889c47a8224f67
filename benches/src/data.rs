//! The benchmark data of docs/BENCHMARKS.md, generated from a fixed seed.

use chrono::{DateTime, Duration, TimeZone, Utc};
use memgpt_core::{Message, Role, ToolCall};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

/// The fixed seed of every generator.
pub const SEED: u64 = 0x6d65_6d67_7074;

const WORDS: &[&str] = &[
    "memory",
    "agent",
    "archive",
    "recall",
    "message",
    "passage",
    "vector",
    "search",
    "index",
    "database",
    "context",
    "window",
    "token",
    "model",
    "function",
    "tool",
    "user",
    "assistant",
    "system",
    "history",
    "summary",
    "persona",
    "human",
    "document",
    "source",
    "embedding",
    "query",
    "result",
    "page",
    "cursor",
    "batch",
    "insert",
    "update",
    "delete",
    "banana",
    "river",
    "mountain",
    "planet",
    "garden",
    "coffee",
    "winter",
    "summer",
    "music",
    "letter",
    "travel",
    "friend",
    "kitchen",
    "market",
    "castle",
    "forest",
    "ocean",
    "bridge",
    "engine",
    "signal",
    "harbor",
    "lantern",
    "meadow",
    "orbit",
    "puzzle",
    "quartz",
    "saddle",
    "timber",
    "velvet",
    "zephyr",
];

/// The tenants: `users` users each owning `agents_per_user` agents, as (user, agent) pairs.
pub fn tenants(users: usize, agents_per_user: usize) -> Vec<(Uuid, Uuid)> {
    let mut rng = StdRng::seed_from_u64(SEED);
    (0..users)
        .flat_map(|_| {
            let user = Uuid::from_u128(rng.random());
            (0..agents_per_user)
                .map(|_| (user, Uuid::from_u128(rng.random())))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `len` ASCII characters of varied words.
pub fn text(rng: &mut StdRng, len: usize) -> String {
    let mut s = String::with_capacity(len + 16);
    while s.len() < len {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    s.truncate(len);
    s
}

/// The first timestamp of every workload.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Message `n` of a workload: round-robin over `tenants`, roles cycling user, assistant,
/// tool, system, `created_at` one second apart, tool calls on assistant rows and the
/// matching `tool_call_id` on tool rows.
pub fn message(rng: &mut StdRng, tenants: &[(Uuid, Uuid)], n: usize) -> Message {
    let (user, agent) = tenants[n % tenants.len()];
    let role = [Role::User, Role::Assistant, Role::Tool, Role::System][n % 4];
    let mut b = Message::builder(user, agent, role)
        .id(Uuid::from_u128(
            rng.random::<u128>() & !(0xF << 76) | (0x4 << 76),
        ))
        .text(text(rng, 300))
        .model("gpt-4")
        .created_at(start() + Duration::seconds(n as i64));
    match role {
        Role::Assistant => {
            b = b.tool_calls(vec![ToolCall::function(
                format!("call_{n}"),
                "send_message",
                "{}",
            )])
        }
        Role::Tool => b = b.tool_call_id(format!("call_{n}")),
        _ => {}
    }
    // Built from valid parts; a failure here is a bug in the generator.
    b.build()
        .unwrap_or_else(|e| panic!("generator built an invalid message: {e}"))
}

/// Messages `0..count` of a workload, lazily.
pub fn messages(tenants: Vec<(Uuid, Uuid)>, count: usize) -> impl Iterator<Item = Message> {
    let mut rng = StdRng::seed_from_u64(SEED ^ 1);
    (0..count).map(move |n| message(&mut rng, &tenants, n))
}

/// Passages of W5: `count` passages round-robin over `tenants`, each a random one of 1,000
/// centroids drawn uniformly from [-1, 1]^dim plus noise uniform in [-0.25, 0.25] per
/// component, as real embeddings cluster.
pub fn passages(
    tenants: &[(Uuid, Uuid)],
    count: usize,
    dim: usize,
) -> (Vec<memgpt_core::Passage>, Vec<Vec<f32>>) {
    let mut rng = StdRng::seed_from_u64(SEED ^ 5);
    let centroids: Vec<Vec<f32>> = (0..1000)
        .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    let mut embeddings = Vec::with_capacity(count);
    let passages = (0..count)
        .map(|n| {
            let (user, agent) = tenants[n % tenants.len()];
            let c = &centroids[rng.random_range(0..centroids.len())];
            let e: Vec<f32> = c
                .iter()
                .map(|x| x + rng.random_range(-0.25f32..0.25))
                .collect();
            embeddings.push(e.clone());
            memgpt_core::Passage::builder(user, text(&mut rng, 500))
                .agent_id(agent)
                .doc_id(Uuid::from_u128(n as u128 % 10 + 1))
                .data_source(format!("source_{}", n % 5))
                .embedding(e, "text-embedding-ada-002")
                .created_at(start() + Duration::seconds(n as i64))
                .build()
                .unwrap_or_else(|e| panic!("generator built an invalid passage: {e}"))
        })
        .collect();
    (passages, embeddings)
}

/// A W5 query: a random stored embedding plus noise uniform in [-0.05, 0.05].
pub fn vector_query(rng: &mut StdRng, stored: &[f32]) -> Vec<f32> {
    stored
        .iter()
        .map(|x| x + rng.random_range(-0.05f32..0.05))
        .collect()
}

//! Vector search inside a scope is exact, whatever other tenants hold and where it lies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::{QueryableByName, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Passage, Record, Scope, StorageConnector, TableType};
use memgpt_migrate::{Command, Options};
use memgpt_pg::PgConfig;
use memgpt_pg::PgStore;
use memgpt_testing::{TempDatabase, VECTOR_SERVER};
use uuid::Uuid;

const DIM: usize = 8;

/// A deterministic pseudo-random generator (xorshift), so the data is the same each run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }

    fn around(&mut self, centre: f32) -> Vec<f32> {
        (0..DIM).map(|_| centre + self.next()).collect()
    }
}

fn passages(user: Uuid, agent: Uuid, n: usize, centre: f32, rng: &mut Rng) -> Vec<Passage> {
    (0..n)
        .map(|i| {
            Passage::builder(user, format!("passage {i} of {agent}"))
                .agent_id(agent)
                .embedding(rng.around(centre), "test")
                .build()
                .unwrap()
        })
        .collect()
}

fn l2(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

/// The shape, scaled down: other tenants' passages lie near the query, one small
/// and one large agent lie far from it, the HNSW index exists and HNSW walks are capped
/// (`hnsw.max_scan_tuples`). An HNSW walk filtered to the agent would stop among the
/// others' rows and come back short or empty; the connector returns each agent's exact
/// top 10, in order, as a brute-force ranking computed here.
#[test]
fn an_agent_far_from_the_query_gets_its_exact_top_k() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let options = Options::default().with_embedding_dim(Some(DIM as u32));
    memgpt_migrate::postgres::run_url_with(db.url(), Command::Up, &options, &|_| {}).unwrap();
    let mut admin = db.connect().unwrap();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} SET hnsw.max_scan_tuples = 500; \
             ALTER DATABASE {} SET hnsw.iterative_scan = relaxed_order;",
            db.name(),
            db.name()
        ))
        .unwrap();
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.embedding_dim = DIM as u32;
    config.pool_size = 2;
    let store = PgStore::open(config).unwrap();
    assert!(store.missing_indexes().unwrap().is_empty());
    let user = Uuid::new_v4();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..4 {
        let agent = Uuid::new_v4();
        store
            .connector::<Passage>(TableType::ArchivalMemory, Scope::agent(user, agent))
            .unwrap()
            .insert_many(passages(user, agent, 1_500, 0.0, &mut rng), false)
            .unwrap();
    }
    let mut agents = Vec::new();
    for (n, centre) in [(60usize, 50.0f32), (2_000, 80.0)] {
        let agent = Uuid::new_v4();
        let mine = passages(user, agent, n, centre, &mut rng);
        store
            .connector::<Passage>(TableType::ArchivalMemory, Scope::agent(user, agent))
            .unwrap()
            .insert_many(mine.clone(), false)
            .unwrap();
        agents.push((agent, mine));
    }
    admin
        .batch_execute("ANALYZE memgpt_archival_memory_agent")
        .unwrap();
    let q = vec![0.5f32; DIM];
    for (agent, mine) in &agents {
        let c = store
            .connector::<Passage>(TableType::ArchivalMemory, Scope::agent(user, *agent))
            .unwrap();
        let got: Vec<Uuid> = c
            .query(&q, 10, &[])
            .unwrap()
            .iter()
            .map(Record::id)
            .collect();
        let mut want: Vec<(f64, Uuid)> = mine
            .iter()
            .map(|p| (l2(p.embedding().unwrap().as_slice(), &q), p.id()))
            .collect();
        want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let want: Vec<Uuid> = want.into_iter().take(10).map(|(_, id)| id).collect();
        assert_eq!(got, want, "agent with {} passages", mine.len());
    }
    // The trap is real on this data: an HNSW walk filtered to the large agent (the shape
    // this library used before) comes back short.
    let (large, _) = &agents[1];
    let mut conn = db.connect().unwrap();
    conn.batch_execute("BEGIN; SET LOCAL hnsw.iterative_scan = relaxed_order;")
        .unwrap();
    let shape = format!(
        "SELECT id::text AS line FROM memgpt_archival_memory_agent WHERE user_id = '{user}' \
         AND agent_id = '{large}' ORDER BY subvector(embedding, 1, {DIM})::vector({DIM}) \
         <-> '[{}]' LIMIT 10",
        ["0.5"; DIM].join(",")
    );
    let plan: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN {shape}"))
        .load(&mut conn)
        .unwrap();
    assert!(
        plan.iter().any(|l| l.line.contains("embedding_hnsw_8")),
        "the planner walks the HNSW index for the unfenced shape"
    );
    let walked: Vec<Line> = diesel::sql_query(shape).load(&mut conn).unwrap();
    let large_ids: Vec<String> = agents[1].1.iter().map(|p| p.id().to_string()).collect();
    assert!(walked.iter().all(|l| large_ids.contains(&l.line)));
    assert!(
        walked.len() < 10,
        "the walk came back with {}",
        walked.len()
    );
}

#[derive(QueryableByName)]
struct Compact {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    compact: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    dims: i32,
}

/// Migration 000006's `embedding_compact` beside MemGPT's padded column: rows MemGPT writes
/// (its own column list, embeddings zero-padded to 4096, with or without `embedding_dim`,
/// of another dimension, updated in place) are read and ranked by the connector as before,
/// at the distance of the padded vectors; a row the connector writes is padded for MemGPT.
#[test]
fn memgpt_written_rows_and_the_compact_column_agree() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.embedding_dim = 4;
    config.pool_size = 2;
    let store = PgStore::open(config).unwrap();
    let (user, agent) = (Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Passage>(TableType::ArchivalMemory, Scope::agent(user, agent))
        .unwrap();
    // As MemGPT's SQLAlchemy model inserts: its columns only, the vector as text.
    let padded = |v: &[f32]| {
        let mut p = v.to_vec();
        p.resize(4096, 0.0);
        format!("{p:?}").replace(' ', "")
    };
    let memgpt_rows: [(&[f32], Option<i64>); 4] = [
        (&[1.0, 0.0, 0.0, 0.0], Some(4)),
        (&[0.0, 2.0, 0.0, 0.0], Some(4)),
        (&[3.0, 3.0], None),
        (&[0.5, 0.5], Some(2)),
    ];
    let mut ids = Vec::new();
    let mut admin = db.connect().unwrap();
    for (i, (v, dim)) in memgpt_rows.iter().enumerate() {
        let id = Uuid::new_v4();
        admin
            .batch_execute(&format!(
                "INSERT INTO memgpt_archival_memory_agent (id, user_id, text, doc_id, agent_id, \
                 data_source, embedding, embedding_dim, embedding_model, metadata_, created_at) \
                 VALUES ('{id}', '{user}', 'memgpt {i}', NULL, '{agent}', 's', '{}', {}, \
                 'test', '{{}}', now())",
                padded(v),
                dim.map_or("NULL".to_owned(), |d| d.to_string()),
            ))
            .unwrap();
        ids.push(id);
    }
    let ours = Passage::builder(user, "ours")
        .agent_id(agent)
        .embedding(vec![0.0, 0.0, 0.0, 1.0], "test")
        .build()
        .unwrap();
    c.insert(&ours).unwrap();
    ids.push(ours.id());

    // The server filled the compact column where the dimension is known.
    let compact = |id: Uuid, admin: &mut diesel::PgConnection| {
        let rows: Vec<Compact> = diesel::sql_query(format!(
            "SELECT embedding_compact::text AS compact, vector_dims(embedding) AS dims \
             FROM memgpt_archival_memory_agent WHERE id = '{id}'"
        ))
        .load(admin)
        .unwrap();
        assert_eq!(rows[0].dims, 4096, "MemGPT's column stays padded");
        rows[0].compact.clone()
    };
    let got: Vec<Option<String>> = ids.iter().map(|id| compact(*id, &mut admin)).collect();
    assert_eq!(
        got,
        [
            Some("[1,0,0,0]"),
            Some("[0,2,0,0]"),
            None,
            Some("[0.5,0.5]"),
            Some("[0,0,0,1]")
        ]
        .map(|s| s.map(str::to_owned))
    );

    // Read back as written (no embedding_dim: the padding's trailing zeros dropped).
    let read = |id: Uuid| {
        c.get(id)
            .unwrap()
            .unwrap()
            .embedding()
            .unwrap()
            .as_slice()
            .to_vec()
    };
    assert_eq!(read(ids[0]), [1.0, 0.0, 0.0, 0.0]);
    assert_eq!(read(ids[2]), [3.0, 3.0]);
    assert_eq!(read(ids[3]), [0.5, 0.5]);

    // Ranked at the distance of the padded vectors, whichever column each row is read from.
    let q = [1.0f32, 1.0, 0.0, 0.0];
    let order: Vec<Uuid> = c
        .query(&q, 10, &[])
        .unwrap()
        .iter()
        .map(Record::id)
        .collect();
    // [0.5,0.5]: 0.71; [1,0,0,0]: 1; [0,2,0,0]: 1.41; [0,0,0,1]: 1.73; [3,3]: 2.83.
    assert_eq!(order, [ids[3], ids[0], ids[1], ids[4], ids[2]]);

    // MemGPT updates an embedding in place: the compact column follows.
    admin
        .batch_execute(&format!(
            "UPDATE memgpt_archival_memory_agent SET embedding = '{}', embedding_dim = 4 \
             WHERE id = '{}'",
            padded(&[1.0, 1.0, 0.0, 0.0]),
            ids[1]
        ))
        .unwrap();
    assert_eq!(compact(ids[1], &mut admin).as_deref(), Some("[1,1,0,0]"));
    assert_eq!(read(ids[1]), [1.0, 1.0, 0.0, 0.0]);
    assert_eq!(c.query(&q, 1, &[]).unwrap()[0].id(), ids[1]);
}

/// Every `log` record, as a line.
struct Capture(std::sync::Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}

/// Opening a database whose HNSW indexes for the configured dimension are missing warns
/// (a `tracing` event, which reaches `log` without a subscriber) naming the command a user
/// of the crates has: `memgpt-store migrate`, not the repository's `cargo xtask`.
#[test]
fn a_missing_vector_index_warning_names_the_memgpt_store_command() {
    let logs: &'static Capture = Box::leak(Box::new(Capture(std::sync::Mutex::new(Vec::new()))));
    log::set_logger(logs).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.embedding_dim = DIM as u32;
    let _store = PgStore::open(config).unwrap();
    let logged = logs.0.lock().unwrap().clone();
    let warning = logged
        .iter()
        .find(|l| l.contains("vector indexes missing"))
        .unwrap_or_else(|| panic!("no warning: {logged:?}"));
    assert!(
        warning.contains(&format!(
            "`memgpt-store migrate --database-url URL up --embedding-dim {DIM}`"
        )),
        "{warning}"
    );
    assert!(!warning.contains("xtask"), "{warning}");
}

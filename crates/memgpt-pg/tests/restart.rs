//! Fault matrix rows 1 and 2 on a server of the test's own: restarted under load, down
//! when the pool is built and for 20 s mid-run, a wrong password.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Error, Message, Role, Scope, StorageConnector, TableType};
use memgpt_pg::{PgConfig, PgStore};
use memgpt_testing::OwnServer;
use uuid::Uuid;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn config(url: DatabaseUrl, app: &str) -> PgConfig {
    let mut c = PgConfig::new(url);
    c.application_name = app.to_owned();
    c.connect_timeout = Duration::from_secs(3);
    c.pool_timeout = Duration::from_secs(3);
    c.pool_size = 5;
    c.max_overflow = 0;
    c.statement_timeout = Duration::from_secs(2);
    c
}

fn message(s: &Scope, i: usize) -> Message {
    Message::builder(s.user_id(), s.agent_id().unwrap(), Role::User)
        .text(format!("message {i}"))
        .build()
        .unwrap()
}

/// Row 1: 50 threads reading and writing while the server restarts (`-m fast`): calls in
/// flight get `ConnectionLost` or `PoolTimeout`, never a panic or another error; every
/// thread succeeds again within 2 x the connection timeout after the server is back; the
/// pool never holds more than its 5 connections.
#[test]
fn fifty_threads_ride_out_a_server_restart() {
    let server = OwnServer::start("trust", "").unwrap();
    let url = server.url("");
    memgpt_migrate::postgres::run_url(&url, memgpt_migrate::Command::Up).unwrap();
    let app = format!("memgpt-restart-{}", Uuid::new_v4().simple());
    let store = PgStore::open(config(url.clone(), &app)).unwrap();
    let stop = AtomicBool::new(false);
    let peak = AtomicI64::new(0);
    let errors = Mutex::new(Vec::<String>::new());
    let restarted = AtomicBool::new(false);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(mut c) = PgConnection::establish(url.expose()) {
                    if let Ok(n) = diesel::sql_query(
                        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1",
                    )
                    .bind::<Text, _>(&app)
                    .load::<Count>(&mut c)
                    {
                        peak.fetch_max(n[0].n, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        // Handshakes: each thread reports its first success, and its first success once
        // the server is back.
        let (running, started) = std::sync::mpsc::channel::<usize>();
        let (recovered, back_again) = std::sync::mpsc::channel::<usize>();
        let restarted = &restarted;
        for t in 0..50usize {
            let (store, stop, errors) = (&store, &stop, &errors);
            let (running, recovered) = (running.clone(), recovered.clone());
            sc.spawn(move || {
                let (mut reported, mut reported_back) = (false, false);
                let s = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(t as u128 + 1));
                let c = store
                    .connector::<Message>(TableType::RecallMemory, s)
                    .unwrap();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let r = c.insert(&message(&s, i)).and_then(|()| c.size(&[]));
                    match r {
                        Ok(_) => {
                            if !reported {
                                reported = true;
                                running.send(t).unwrap();
                            }
                            if !reported_back && restarted.load(Ordering::SeqCst) {
                                reported_back = true;
                                recovered.send(t).unwrap();
                            }
                        }
                        Err(Error::ConnectionLost { .. } | Error::PoolTimeout { .. }) => {}
                        Err(other) => errors.lock().unwrap().push(format!("{other:?}")),
                    }
                }
            });
        }
        // The load is running: every thread has succeeded once.
        for _ in 0..50 {
            started
                .recv_timeout(Duration::from_secs(30))
                .expect("every thread started");
        }
        server.restart("fast").unwrap();
        restarted.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(6);
        let mut again = std::collections::BTreeSet::new();
        while again.len() < 50 {
            let left = deadline.saturating_duration_since(Instant::now());
            match back_again.recv_timeout(left) {
                Ok(t) => {
                    again.insert(t);
                }
                Err(_) => {
                    stop.store(true, Ordering::Relaxed);
                    panic!(
                        "{} threads without a success 6 s after the restart",
                        50 - again.len()
                    );
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(*errors.lock().unwrap(), Vec::<String>::new());
    assert!(
        peak.load(Ordering::Relaxed) <= 5,
        "peak {}",
        peak.load(Ordering::Relaxed)
    );
}

/// Row 2: the server is down when the pool is built, and down for 20 s mid-run: calls get a
/// clear error (`ConnectionLost`, naming the cause, or `PoolTimeout`) within the pool
/// timeout, never a hang; once the server is back the store works without being rebuilt.
#[test]
fn a_server_down_at_start_and_for_twenty_seconds_gives_bounded_errors() {
    let server = OwnServer::start("trust", "").unwrap();
    let url = server.url("");
    memgpt_migrate::postgres::run_url(&url, memgpt_migrate::Command::Up).unwrap();
    server.stop("fast").unwrap();
    let app = format!("memgpt-down-{}", Uuid::new_v4().simple());
    let start = Instant::now();
    let e = PgStore::open(config(url.clone(), &app)).unwrap_err();
    assert!(matches!(e, Error::ConnectionLost { .. }), "{e:?}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    server.start_again().unwrap();
    let store = PgStore::open(config(url, &app)).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    c.insert(&message(&s, 0)).unwrap();
    server.stop("fast").unwrap();
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(20) {
        let call = Instant::now();
        let e = c.size(&[]).unwrap_err();
        assert!(
            matches!(e, Error::ConnectionLost { .. } | Error::PoolTimeout { .. }),
            "{e:?}"
        );
        assert!(
            call.elapsed() < Duration::from_secs(10),
            "{:?}",
            call.elapsed()
        );
    }
    server.start_again().unwrap();
    c.insert(&message(&s, 1)).unwrap();
    assert_eq!(c.size(&[]).unwrap(), 2);
}

/// Row 2: a wrong password is `Error::Authentication`, not only a timeout, and the
/// password shows nowhere.
#[test]
fn a_wrong_password_is_an_authentication_error() {
    let server = OwnServer::start("scram-sha-256", "right-S3cret").unwrap();
    memgpt_migrate::postgres::run_url(&server.url("right-S3cret"), memgpt_migrate::Command::Up)
        .unwrap();
    let start = Instant::now();
    let e = PgStore::open(config(server.url("wrong-S3cret"), "memgpt-auth")).unwrap_err();
    assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("S3cret"), "{shown}");
    let store = PgStore::open(config(server.url("right-S3cret"), "memgpt-auth")).unwrap();
    assert!(store.session_settings().is_ok());
}

/// Row 7: a COPY of 1,000,000 rows; the server is stopped (`-m immediate`) halfway
/// through, from the record iterator itself (a handshake: at record 500,000 exactly);
/// restarted: none of the failed batch is visible, and retrying the same ids writes each
/// exactly once.
#[test]
fn a_copy_of_a_million_rows_interrupted_by_a_crash_leaves_nothing_and_retries_cleanly() {
    let server = OwnServer::start("trust", "").unwrap();
    let url = server.url("");
    memgpt_migrate::postgres::run_url(&url, memgpt_migrate::Command::Up).unwrap();
    let mut config = config(url, "memgpt-copy-crash");
    config.statement_timeout = Duration::from_secs(600);
    let store = PgStore::open(config).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    fn records<'a>(s: Scope, stop_at: Option<&'a OwnServer>) -> impl Iterator<Item = Message> + 'a {
        (0..1_000_000u128).map(move |i| {
            if i == 500_000 {
                if let Some(server) = stop_at {
                    server.stop("immediate").unwrap();
                }
            }
            Message::builder(s.user_id(), s.agent_id().unwrap(), Role::User)
                .id(Uuid::from_u128(i + 1))
                .text("bulk")
                .build()
                .unwrap()
        })
    }
    let e = c.insert_many(records(s, Some(&server)), false).unwrap_err();
    assert!(matches!(e, Error::ConnectionLost { .. }), "{e:?}");
    server.start_again().unwrap();
    assert_eq!(
        c.size(&[]).unwrap(),
        0,
        "none of the failed batch is visible"
    );
    assert_eq!(c.insert_many(records(s, None), false).unwrap(), 1_000_000);
    assert_eq!(c.size(&[]).unwrap(), 1_000_000);
}

/// Everything logged through the `log` crate, at the most verbose level.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push(format!(
            "{} {}: {}",
            record.level(),
            record.target(),
            record.args()
        ));
    }
    fn flush(&self) {}
}

/// Row 21: a canary password through an authentication failure, a pool timeout, an
/// unreachable server, `Debug` of the configuration, store, connector and every error,
/// with every log record captured at `trace`: the canary appears nowhere.
#[test]
fn a_canary_password_appears_in_no_error_debug_output_or_log() {
    let canary = "S3cr3t-canary";
    let logs: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
    log::set_logger(logs).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let mut shown = Vec::new();
    let server = OwnServer::start("scram-sha-256", "the-right-one").unwrap();
    memgpt_migrate::postgres::run_url(&server.url("the-right-one"), memgpt_migrate::Command::Up)
        .unwrap();
    // An authentication failure.
    let wrong = config(server.url(canary), "memgpt-canary");
    shown.push(format!("{wrong:?}"));
    let e = PgStore::open(wrong).unwrap_err();
    assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
    shown.push(format!("{e} {e:?}"));
    // An unreachable server.
    let mut gone = config(
        DatabaseUrl::new(format!("postgres://postgres:{canary}@127.0.0.1:1/nowhere")),
        "memgpt-canary",
    );
    gone.pool_timeout = Duration::from_secs(1);
    let e = PgStore::open(gone).unwrap_err();
    shown.push(format!("{e} {e:?}"));
    // A pool timeout, with a leak warning logged, on a store whose URL holds the canary as
    // an unused parameter password (trust authentication ignores it).
    let trusting = OwnServer::start("trust", "").unwrap();
    memgpt_migrate::postgres::run_url(&trusting.url(""), memgpt_migrate::Command::Up).unwrap();
    let mut cfg = config(trusting.url(canary), "memgpt-canary");
    cfg.pool_size = 1;
    cfg.pool_timeout = Duration::from_millis(500);
    cfg.leak_threshold = Some(Duration::from_millis(10));
    let store = PgStore::open(cfg).unwrap();
    shown.push(format!("{store:?}"));
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    shown.push(format!("{c:?}"));
    let timed_out = store.transaction(|_| {
        let e = c.size(&[]).unwrap_err();
        assert!(matches!(e, Error::PoolTimeout { .. }), "{e:?}");
        Ok(format!("{e} {e:?}"))
    });
    shown.push(timed_out.unwrap());
    let logged = logs.0.lock().unwrap().clone();
    assert!(
        logged.iter().any(|l| l.contains("held for")),
        "the leak warning was logged: {logged:?}"
    );
    for text in shown.iter().chain(logged.iter()) {
        assert!(!text.contains(canary), "{text}");
    }
}

/// Row 25: `sslmode=verify-full` against a server whose self-signed certificate the client
/// does not trust is a TLS error (`ConnectionLost` naming the failed verification); with
/// the certificate as `sslrootcert` the same server is used over TLS — the way to run with
/// TLS (docs/CONFIGURATION.md).
#[test]
fn verify_full_refuses_an_untrusted_certificate_and_accepts_a_trusted_one() {
    let server = OwnServer::start_tls("trust", "").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (other_crt, other_key) = (dir.path().join("other.crt"), dir.path().join("other.key"));
    memgpt_testing::self_signed(&other_crt, &other_key, "127.0.0.1").unwrap();
    let base = server.url("");
    let with = |root: &std::path::Path| {
        DatabaseUrl::new(format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            base.expose(),
            root.display()
        ))
    };
    let e = PgStore::open(config(with(&other_crt), "memgpt-tls")).unwrap_err();
    assert!(
        matches!(&e, Error::ConnectionLost { message } if message.contains("certificate verify failed")),
        "{e:?}"
    );
    let trusted = with(&server.certificate());
    memgpt_migrate::postgres::run_url(&trusted, memgpt_migrate::Command::Up).unwrap();
    let store = PgStore::open(config(trusted.clone(), "memgpt-tls")).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    c.insert(&message(&s, 0)).unwrap();
    #[derive(QueryableByName)]
    struct Ssl {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ssl: bool,
    }
    let ssl: Vec<Ssl> =
        diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .load(&mut PgConnection::establish(trusted.expose()).unwrap())
            .unwrap();
    assert!(ssl[0].ssl, "the connection is encrypted");
}

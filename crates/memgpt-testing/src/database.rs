//! A throwaway PostgreSQL database per test, on the servers the harness started.
//!
//! The test harness (`cargo xtask test`) starts a PostgreSQL 18 + pgvector server and names
//! it in `MEMGPT_TEST_DATABASE_URL`, and names a server without pgvector in
//! `MEMGPT_TEST_PG_NO_VECTOR_URL` (the same server through a role that cannot create the
//! extension, unless the variable was set already: CI names the machine's PostgreSQL 15). [`TempDatabase::create`] makes a new, empty database on
//! one of them and drops it again when dropped, so tests never see each other's rows.

use diesel::{Connection, PgConnection, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Error};

/// The server with pgvector.
pub const VECTOR_SERVER: &str = "MEMGPT_TEST_DATABASE_URL";
/// The server without pgvector.
pub const NO_VECTOR_SERVER: &str = "MEMGPT_TEST_PG_NO_VECTOR_URL";
/// PgBouncer in transaction mode in front of [`VECTOR_SERVER`].
pub const PGBOUNCER: &str = "MEMGPT_TEST_PGBOUNCER_URL";
/// A streaming replica of [`VECTOR_SERVER`].
pub const REPLICA: &str = "MEMGPT_TEST_PG_REPLICA_URL";

/// A database created for one test, dropped (with `FORCE`) when this value drops.
#[derive(Debug)]
pub struct TempDatabase {
    admin: DatabaseUrl,
    name: String,
    url: DatabaseUrl,
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[authority_start..]
        .find('/')
        .map_or(url.len(), |i| authority_start + i);
    let query_start = url[path_start..]
        .find('?')
        .map_or(url.len(), |i| path_start + i);
    format!("{}/{}{}", &url[..path_start], name, &url[query_start..])
}

impl TempDatabase {
    /// Creates an empty database on the server named by the environment variable `server`
    /// ([`VECTOR_SERVER`] or [`NO_VECTOR_SERVER`]).
    ///
    /// # Errors
    /// [`Error::Config`] when the variable is unset (run the tests through
    /// `cargo xtask test`), [`Error::ConnectionLost`] when the server cannot be reached.
    pub fn create(server: &str) -> Result<Self, Error> {
        let admin = std::env::var(server).map_err(|_| Error::Config {
            variable: server.to_owned(),
            value: String::new(),
            reason: "not set: run the tests with `cargo xtask test`, which starts PostgreSQL and sets it"
                .to_owned(),
        })?;
        let admin = DatabaseUrl::new(admin);
        let name = format!("memgpt_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = connect(&admin)?;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .map_err(Error::database)?;
        let url = DatabaseUrl::new(with_database(admin.expose(), &name));
        Ok(TempDatabase { admin, name, url })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The database's URL through the server (or pooler) named by the environment variable
    /// `via` ([`PGBOUNCER`]).
    ///
    /// # Errors
    /// [`Error::Config`] when the variable is unset.
    pub fn url_via(&self, via: &str) -> Result<DatabaseUrl, Error> {
        let base = std::env::var(via).map_err(|_| Error::Config {
            variable: via.to_owned(),
            value: String::new(),
            reason: "not set: run the tests with `cargo xtask test`, which starts it and sets it"
                .to_owned(),
        })?;
        Ok(DatabaseUrl::new(with_database(&base, &self.name)))
    }

    /// A new connection to the database.
    ///
    /// # Errors
    /// [`Error::ConnectionLost`] when the server cannot be reached.
    pub fn connect(&self) -> Result<PgConnection, Error> {
        connect(&self.url)
    }
}

fn connect(url: &DatabaseUrl) -> Result<PgConnection, Error> {
    PgConnection::establish(url.expose()).map_err(|e| Error::ConnectionLost {
        message: format!("cannot connect to {}: {e}", url.redacted()),
    })
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        if let Ok(mut conn) = connect(&self.admin) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

/// Runs `f` while a thread polls `pg_stat_activity` (every 5 ms) for the client
/// connections of `db` (the poller's own excluded); returns `f`'s value and the most seen.
///
/// # Errors
/// [`Error::ConnectionLost`] when the poller cannot connect (before `f` runs).
pub fn peak_connections<T: Send>(
    db: &TempDatabase,
    f: impl FnOnce() -> T + Send,
) -> Result<(T, i64), Error> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    let peak = std::sync::atomic::AtomicI64::new(0);
    let mut conn = db.connect()?;
    let (done_ref, peak_ref) = (&done, &peak);
    let value = std::thread::scope(|s| {
        s.spawn(move || {
            let (done, peak) = (done_ref, peak_ref);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let n: Vec<Count> = diesel::sql_query(
                    "SELECT count(*) AS n FROM pg_stat_activity \
                     WHERE datname = $1 AND backend_type = 'client backend' \
                     AND pid <> pg_backend_pid()",
                )
                .bind::<diesel::sql_types::Text, _>(db.name())
                .load(&mut conn)
                .unwrap_or_default();
                if let Some(c) = n.first() {
                    peak.fetch_max(c.n, std::sync::atomic::Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        });
        // Stops the poller however `f` ends, a panic included.
        struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let _stop = Stop(&done);
        f()
    });
    Ok((value, peak.load(std::sync::atomic::Ordering::Relaxed)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        use super::with_database;
        assert_eq!(
            with_database("postgres://u@h:5/postgres", "x"),
            "postgres://u@h:5/x"
        );
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}

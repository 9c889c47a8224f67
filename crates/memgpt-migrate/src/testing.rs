//! Test support: a throwaway PostgreSQL database per test.
//!
//! The test harness (`cargo xtask test`) starts a PostgreSQL 18 + pgvector server and names
//! it in `MEMGPT_TEST_DATABASE_URL`, and names the machine's PostgreSQL without pgvector in
//! `MEMGPT_TEST_PG_NO_VECTOR_URL`. [`TempDatabase::create`] makes a new, empty database on
//! one of them and drops it again when dropped, so tests never see each other's rows.

use diesel::{Connection, PgConnection, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Error};

/// The server with pgvector.
pub const VECTOR_SERVER: &str = "MEMGPT_TEST_DATABASE_URL";
/// The server without pgvector.
pub const NO_VECTOR_SERVER: &str = "MEMGPT_TEST_PG_NO_VECTOR_URL";

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

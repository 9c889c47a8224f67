#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// docs.rs labels the items of a feature with it.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod harness;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[doc(hidden)]
pub mod query;
#[doc(hidden)]
pub mod rows;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

pub use harness::{Command, MigrationStatus, Options, Report};

use memgpt_core::Error;

/// Runs `f` in the transaction `begin` opens (diesel's `transaction` or
/// `immediate_transaction`): `f`'s own error is kept aside, so that a failed rollback never
/// hides it; the transaction's own errors are mapped by `map`. Shared by the migrations
/// and both backends' write transactions.
#[doc(hidden)]
pub fn in_transaction_mapped<C, T>(
    begin: impl FnOnce(
        &mut dyn FnMut(&mut C) -> Result<T, diesel::result::Error>,
    ) -> Result<T, diesel::result::Error>,
    f: impl FnOnce(&mut C) -> Result<T, Error>,
    map: impl FnOnce(diesel::result::Error) -> Error,
) -> Result<T, Error> {
    let mut failed = None;
    let mut f = Some(f);
    let done = begin(&mut |c: &mut C| match f.take() {
        Some(f) => f(c).map_err(|e| {
            failed = Some(e);
            diesel::result::Error::RollbackTransaction
        }),
        None => Err(diesel::result::Error::RollbackTransaction),
    });
    done.map_err(|e| failed.take().unwrap_or_else(|| map(e)))
}

/// The levels of diesel's transaction manager open on `conn`: 0 outside a transaction, 1
/// in one, one more for each savepoint; `u32::MAX` when the manager is broken (its state
/// unknown). Shared by both backends' units of work.
#[doc(hidden)]
pub fn transaction_depth<C>(conn: &mut C) -> u32
where
    C: diesel::Connection<TransactionManager = diesel::connection::AnsiTransactionManager>,
{
    use diesel::connection::TransactionManager;
    match diesel::connection::AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
    {
        Ok(depth) => depth.map_or(0, std::num::NonZeroU32::get),
        Err(_) => u32::MAX,
    }
}

/// [`in_transaction_mapped`] with migration errors.
pub(crate) fn in_transaction<C, T>(
    begin: impl FnOnce(
        &mut dyn FnMut(&mut C) -> Result<T, diesel::result::Error>,
    ) -> Result<T, diesel::result::Error>,
    f: impl FnOnce(&mut C) -> Result<T, Error>,
) -> Result<T, Error> {
    in_transaction_mapped(begin, f, migration_err)
}

/// Turns a migration harness error into [`Error::Migration`].
pub(crate) fn migration_err(e: impl std::fmt::Display) -> Error {
    Error::Migration {
        message: e.to_string(),
    }
}

/// Runs `command` against the database `url` names ([`Target::of`]): `postgres://…` (or a
/// libpq `key=value` string) migrates PostgreSQL, anything else is a SQLite file path
/// (`sqlite://PATH` or `PATH`).
///
/// # Errors
/// [`Error::Migration`] when a migration fails (it is rolled back),
/// [`Error::ConnectionLost`] when the database cannot be opened, [`Error::Config`] when
/// this build lacks the feature (`postgres`, `sqlite`) of the database `url` names.
pub fn run_url(url: &memgpt_core::DatabaseUrl, command: Command) -> Result<Report, Error> {
    run_url_with(url, command, &Options::default(), &|_| {})
}

/// [`run_url`] with options; `progress` hears of long index builds.
///
/// # Errors
/// As [`run_url`].
pub fn run_url_with(
    url: &memgpt_core::DatabaseUrl,
    command: Command,
    options: &Options,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Report, Error> {
    match Target::of(url) {
        #[cfg(feature = "postgres")]
        Target::Postgres => postgres::run_url_with(url, command, options, progress),
        #[cfg(feature = "sqlite")]
        Target::Sqlite(path) => sqlite::run_path_with(&path, command, options),
        #[allow(unreachable_patterns)]
        target => {
            let _ = (command, options, progress);
            Err(target.unsupported(url))
        }
    }
}

/// The database a [`DatabaseUrl`](memgpt_core::DatabaseUrl) names
/// ([`DatabaseUrl::is_postgres`](memgpt_core::DatabaseUrl::is_postgres)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `postgres://…`, `postgresql://…` or a libpq `key=value` string.
    Postgres,
    /// `sqlite://PATH`, `sqlite:PATH` or a plain file path.
    Sqlite(std::path::PathBuf),
}

impl Target {
    /// The feature of this crate (and of `memgpt-cli`) that works on this target.
    pub fn feature(&self) -> &'static str {
        match self {
            Target::Postgres => "postgres",
            Target::Sqlite(_) => "sqlite",
        }
    }

    /// The error of a build without [`feature`](Self::feature) for the database `url`.
    pub fn unsupported(&self, url: &memgpt_core::DatabaseUrl) -> Error {
        Error::Config {
            variable: "database URL".to_owned(),
            value: url.redacted(),
            reason: format!(
                "this build has no {} support: build it with the feature `{}`",
                match self {
                    Target::Postgres => "PostgreSQL",
                    Target::Sqlite(_) => "SQLite",
                },
                self.feature()
            ),
        }
    }

    /// What `url` names.
    pub fn of(url: &memgpt_core::DatabaseUrl) -> Target {
        let u = url.expose();
        if url.is_postgres() {
            return Target::Postgres;
        }
        Target::Sqlite(std::path::PathBuf::from(
            u.strip_prefix("sqlite://")
                .or_else(|| u.strip_prefix("sqlite:"))
                .unwrap_or(u),
        ))
    }
}

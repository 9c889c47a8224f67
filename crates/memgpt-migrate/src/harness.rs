//! Backend-generic migration commands over diesel's harness.

use diesel::backend::Backend;
use diesel::migration::{Migration, MigrationSource};
use diesel_migrations::MigrationHarness;
use memgpt_core::Error;

use crate::migration_err;

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Apply every pending migration.
    Up,
    /// Revert every applied migration. Refused while a table it would drop holds rows,
    /// unless [`Options::drop_data`] is set.
    Down,
    /// Revert the last applied migration and apply it again. Refused as [`Command::Down`].
    Redo,
    /// Revert the last `n` applied migrations. Refused as [`Command::Down`].
    Revert(usize),
    /// Report which migrations are applied.
    Status,
}

impl std::str::FromStr for Command {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "up" => Ok(Command::Up),
            "down" => Ok(Command::Down),
            "redo" => Ok(Command::Redo),
            "revert" => Ok(Command::Revert(1)),
            "status" => Ok(Command::Status),
            other => Err(Error::invalid(
                "command",
                format!(
                    "unknown migration command {other:?} (expected up, down, redo, revert or \
                     status)"
                ),
            )),
        }
    }
}

/// One migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationStatus {
    /// The migration's name (its folder name).
    pub name: String,
    /// Whether it is applied.
    pub applied: bool,
}

/// How to run a command: `Options::default()`, then
/// [`with_drop_data`](Self::with_drop_data) or [`with_embedding_dim`](Self::with_embedding_dim).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Let `down` and `redo` drop tables that hold rows, and the rows with them
    /// (`memgpt-store migrate down --drop-data`). Without it they refuse, naming the tables
    /// and their row counts.
    pub drop_data: bool,
    /// PostgreSQL: the dimension of the HNSW indexes `up` builds on archival memory and
    /// passages (`memgpt-store migrate --embedding-dim`). `None`: the one
    /// `MEMGPT_EMBEDDING_DIM` configures, else 1536 (`postgres::embedding_dim`). Ignored on
    /// SQLite, whose vector search is exact.
    pub embedding_dim: Option<u32>,
}

impl Options {
    /// These options, letting `down` and `redo` drop tables that hold rows.
    pub fn with_drop_data(mut self, drop_data: bool) -> Self {
        self.drop_data = drop_data;
        self
    }

    /// These options, building the HNSW indexes for `embedding_dim` (`None`: the
    /// configured dimension).
    pub fn with_embedding_dim(mut self, embedding_dim: Option<u32>) -> Self {
        self.embedding_dim = embedding_dim;
        self
    }
}

/// Each of MemGPT's tables that exists, with its row count.
pub(crate) type TableRows = Vec<(String, i64)>;

/// What a backend tells the harness about its database.
pub(crate) struct Catalog<H> {
    /// Rows of each of MemGPT's tables that exists.
    pub table_rows: fn(&mut H) -> Result<TableRows, Error>,
    /// Drops the indexes migration `name` created (as its up recorded them).
    pub drop_owned_indexes: fn(&mut H, name: &str) -> Result<(), Error>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Report {
    /// Migrations applied by this run, in order.
    pub applied: Vec<String>,
    /// Migrations reverted by this run, in order.
    pub reverted: Vec<String>,
    /// Every known migration after the run.
    pub status: Vec<MigrationStatus>,
}

/// Runs `command` on a connection that already holds the backend's migration lock.
pub(crate) fn run<DB, H, S>(
    conn: &mut H,
    source: impl Fn() -> S,
    command: Command,
    options: &Options,
    catalog: &Catalog<H>,
) -> Result<Report, Error>
where
    DB: Backend,
    H: MigrationHarness<DB>,
    S: MigrationSource<DB>,
{
    let mut report = Report::default();
    match command {
        Command::Up => {
            report.applied = apply_pending(conn, source())?;
        }
        Command::Down | Command::Redo | Command::Revert(_) => {
            let applied = conn.applied_migrations().map_err(migration_err)?;
            let count = match command {
                Command::Redo => 1,
                Command::Revert(n) => n,
                _ => applied.len(),
            }
            .min(applied.len());
            let mut all: Vec<Box<dyn Migration<DB>>> =
                source().migrations().map_err(migration_err)?;
            // Newest first, as they are reverted.
            all.sort_by_key(|m| std::cmp::Reverse(m.name().version().as_owned()));
            let to_revert: Vec<&dyn Migration<DB>> = applied
                .iter()
                .take(count)
                .map(|v| {
                    all.iter()
                        .find(|m| m.name().version() == *v)
                        .map(|m| m.as_ref())
                        .ok_or_else(|| {
                            migration_err(format!("applied migration {v} is not known here"))
                        })
                })
                .collect::<Result<_, _>>()?;
            if !options.drop_data && to_revert.iter().any(|m| drops_tables(*m)) {
                let holding: Vec<String> = (catalog.table_rows)(conn)?
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(t, n)| format!("{t} ({n} rows)"))
                    .collect();
                if !holding.is_empty() {
                    return Err(migration_err(format!(
                        "refusing to revert: it would drop tables that hold rows: {}; pass \
                         --drop-data (Options::drop_data) to drop them with their rows",
                        holding.join(", ")
                    )));
                }
            }
            for m in to_revert {
                (catalog.drop_owned_indexes)(conn, &m.name().to_string())?;
                let version = conn.revert_migration(m).map_err(migration_err)?;
                report.reverted.push(version.to_string());
            }
            if command == Command::Redo {
                report.applied = apply_pending(conn, source())?;
            }
        }
        Command::Status => {}
    }
    report.status = status(conn, source())?;
    Ok(report)
}

/// Applies every pending migration; returns their versions.
fn apply_pending<DB, H, S>(conn: &mut H, source: S) -> Result<Vec<String>, Error>
where
    DB: Backend,
    H: MigrationHarness<DB>,
    S: MigrationSource<DB>,
{
    Ok(conn
        .run_pending_migrations(source)
        .map_err(migration_err)?
        .iter()
        .map(ToString::to_string)
        .collect())
}

/// Whether reverting `m` drops MemGPT's tables.
fn drops_tables<DB: Backend>(m: &dyn Migration<DB>) -> bool {
    m.name().to_string().ends_with("_create_tables")
}

fn status<DB, H, S>(conn: &mut H, source: S) -> Result<Vec<MigrationStatus>, Error>
where
    DB: Backend,
    H: MigrationHarness<DB>,
    S: MigrationSource<DB>,
{
    let applied: Vec<String> = conn
        .applied_migrations()
        .map_err(migration_err)?
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut all: Vec<Box<dyn Migration<DB>>> = source.migrations().map_err(migration_err)?;
    all.sort_by_key(|m| m.name().version().as_owned());
    Ok(all
        .iter()
        .map(|m| {
            let name = m.name().to_string();
            let version = m.name().version().to_string();
            MigrationStatus {
                applied: applied.contains(&version),
                name,
            }
        })
        .collect())
}

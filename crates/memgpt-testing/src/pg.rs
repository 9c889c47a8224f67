//! PostgreSQL for tests: a throwaway database per test, servers and PgBouncers of a
//! test's own.
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

/// A PostgreSQL server of one test's own, for faults that a shared server cannot take
/// (stopping it, restarting it, password authentication): `initdb` into a temporary
/// folder, started on a free port of 127.0.0.1, stopped (`-m immediate`) when dropped. As
/// root, the server runs as the `postgres` account, as `initdb` and `postgres` require.
#[derive(Debug)]
pub struct OwnServer {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
    options: String,
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

    fn start_with(auth: &str, password: &str, flavour: Flavour) -> Result<Self, Error> {
        let tls = flavour == Flavour::Tls;
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
        let dir = tempfile::tempdir().map_err(Error::database)?;
        let fail = |what: &str, e: &dyn std::fmt::Display| Error::ConnectionLost {
            message: format!("{what}: {e}"),
        };
        let port = free_port()?;
        let server = OwnServer {
            bin: bin.into(),
            port,
            options: format!(
                "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' \
                 -c max_connections=100 -c fsync=off{settings}"
            ),
            dir,
        };
        let data = server.data();
        let pwfile = server.dir.path().join("pw");
        std::fs::write(&pwfile, password).map_err(|e| fail("pwfile", &e))?;
        std::fs::create_dir(&data).map_err(|e| fail("data folder", &e))?;
        let log = server.dir.path().join("log");
        std::fs::write(&log, b"").map_err(|e| fail("log", &e))?;
        if as_root() {
            sh("chown", &["postgres:postgres".as_ref(), log.as_os_str()])?;
            // The server's account must reach its folder; the data stays private to it.
            sh("chmod", &["a+rx".as_ref(), server.dir.path().as_os_str()])?;
            sh("chmod", &["a+r".as_ref(), pwfile.as_os_str()])?;
            sh(
                "chown",
                &[
                    "-R".as_ref(),
                    "postgres:postgres".as_ref(),
                    data.as_os_str(),
                ],
            )?;
        }
        let auth_arg = format!("--auth-host={auth}");
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "-D".as_ref(),
            data.as_os_str(),
            "-U".as_ref(),
            "postgres".as_ref(),
            "--auth-local=trust".as_ref(),
            auth_arg.as_ref(),
            "-E".as_ref(),
            "UTF8".as_ref(),
            "--no-sync".as_ref(),
            "--locale=C".as_ref(),
        ];
        if !password.is_empty() {
            args.extend(["--pwfile".as_ref(), pwfile.as_os_str()]);
        }
        server.run("initdb", &args)?;
        let mut server = server;
        if tls {
            let (crt, key) = (server.certificate(), server.dir.path().join("server.key"));
            self_signed(&crt, &key, "127.0.0.1")?;
            if as_root() {
                sh("chown", &["postgres:postgres".as_ref(), key.as_os_str()])?;
            }
            sh("chmod", &["0600".as_ref(), key.as_os_str()])?;
            server.options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                crt.display(),
                key.display()
            ));
        }
        server.pg_ctl(&["start", "-w", "-t", "60"])?;
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
        self.pg_ctl(&["stop", "-w", "-m", mode])
    }

    /// `pg_ctl start`, waiting until the server accepts connections.
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn start_again(&self) -> Result<(), Error> {
        self.pg_ctl(&["start", "-w", "-t", "60"])
    }

    /// A streaming replica of this server, of its own: `pg_basebackup -R` into a temporary
    /// folder, started (hot standby) on another free port; stopped when dropped.
    ///
    /// # Errors
    /// When `pg_basebackup` or the start fails (with the replica's log).
    pub fn replica(&self) -> Result<Self, Error> {
        let dir = tempfile::tempdir().map_err(Error::database)?;
        let fail = |what: &str, e: &dyn std::fmt::Display| Error::ConnectionLost {
            message: format!("{what}: {e}"),
        };
        let port = free_port()?;
        let replica = OwnServer {
            bin: self.bin.clone(),
            port,
            options: format!(
                "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' \
                 -c max_connections=100 -c fsync=off -c hot_standby=on"
            ),
            dir,
        };
        let data = replica.data();
        let log = replica.dir.path().join("log");
        std::fs::write(&log, b"").map_err(|e| fail("log", &e))?;
        std::fs::create_dir(&data).map_err(|e| fail("data folder", &e))?;
        if as_root() {
            sh("chown", &["postgres:postgres".as_ref(), log.as_os_str()])?;
            sh("chmod", &["a+rx".as_ref(), replica.dir.path().as_os_str()])?;
            sh("chown", &["postgres:postgres".as_ref(), data.as_os_str()])?;
        }
        sh("chmod", &["0700".as_ref(), data.as_os_str()])?;
        let from = self.port.to_string();
        replica.run(
            "pg_basebackup",
            &[
                "-h".as_ref(),
                "127.0.0.1".as_ref(),
                "-p".as_ref(),
                from.as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
                "-R".as_ref(),
                "-X".as_ref(),
                "stream".as_ref(),
                "-c".as_ref(),
                "fast".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        replica.pg_ctl(&["start", "-w", "-t", "60"])?;
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
        let path = self.data().join("postgresql.auto.conf");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::ConnectionLost {
                message: format!("{}: {e}", path.display()),
            })?;
        writeln!(file, "{name} = '{value}'").map_err(Error::database)?;
        self.pg_ctl(&["reload"])
    }

    /// Adds server settings (`-c name=value …`, as `postgres` takes them) and restarts
    /// (`-m fast`) so that they apply: `shared_preload_libraries`, say.
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn restart_with(&mut self, settings: &str) -> Result<(), Error> {
        self.options.push(' ');
        self.options.push_str(settings);
        self.restart("fast")
    }

    /// `pg_ctl restart -m MODE`, waiting until the server accepts connections again.
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn restart(&self, mode: &str) -> Result<(), Error> {
        self.pg_ctl(&["restart", "-w", "-t", "60", "-m", mode])
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), Error> {
        let data = self.data();
        let log = self.dir.path().join("log");
        let mut all: Vec<&std::ffi::OsStr> = vec!["-D".as_ref(), data.as_os_str()];
        if args
            .first()
            .is_some_and(|a| *a == "start" || *a == "restart")
        {
            all.extend([
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                self.options.as_ref(),
            ]);
        }
        all.extend(args.iter().map(std::ffi::OsStr::new));
        self.run("pg_ctl", &all)
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> Result<(), Error> {
        let path = self.bin.join(program);
        let mut cmd = if as_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            std::process::Command::new(&path)
        };
        let out = cmd.args(args).output().map_err(|e| Error::ConnectionLost {
            message: format!("{}: {e}", path.display()),
        })?;
        if out.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        Err(Error::ConnectionLost {
            message: format!(
                "{program} failed: {}{}\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
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
        let fail = |what: &str, e: &dyn std::fmt::Display| Error::ConnectionLost {
            message: format!("pgbouncer {what}: {e}"),
        };
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
        let ini = path("pgbouncer.ini");
        let mut cmd = if as_root() {
            sh(
                "chown",
                &[
                    "-R".as_ref(),
                    "postgres:postgres".as_ref(),
                    dir.path().as_os_str(),
                ],
            )?;
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", "pgbouncer"]);
            c
        } else {
            std::process::Command::new("pgbouncer")
        };
        let ok = cmd
            .arg("-d")
            .arg(&ini)
            .status()
            .map_err(|e| fail("start", &e))?
            .success();
        let bouncer = OwnPgBouncer { dir, port };
        let start = std::time::Instant::now();
        while !ok || std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if !ok || start.elapsed() > std::time::Duration::from_secs(30) {
                let log = std::fs::read_to_string(bouncer.dir.path().join("log"));
                return Err(fail("did not start", &log.unwrap_or_default()));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
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
        let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pid")) else {
            return;
        };
        let pid = pid.trim();
        let _ = sh("kill", &["-KILL".as_ref(), pid.as_ref()]);
        let start = std::time::Instant::now();
        while sh("kill", &["-0".as_ref(), pid.as_ref()]).is_ok()
            && start.elapsed() < std::time::Duration::from_secs(10)
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.stop("immediate");
    }
}

/// Writes a self-signed certificate for the IP address `ip` and its key (PEM).
///
/// # Errors
/// When `openssl` is missing or fails.
pub fn self_signed(crt: &std::path::Path, key: &std::path::Path, ip: &str) -> Result<(), Error> {
    let subject = format!("/CN={ip}");
    let san = format!("subjectAltName=IP:{ip}");
    sh(
        "openssl",
        &[
            "req".as_ref(),
            "-x509".as_ref(),
            "-newkey".as_ref(),
            "rsa:2048".as_ref(),
            "-nodes".as_ref(),
            "-days".as_ref(),
            "2".as_ref(),
            "-subj".as_ref(),
            subject.as_ref(),
            "-addext".as_ref(),
            san.as_ref(),
            "-keyout".as_ref(),
            key.as_os_str(),
            "-out".as_ref(),
            crt.as_os_str(),
        ],
    )
}

/// A port of 127.0.0.1 that nothing listens on now.
fn free_port() -> Result<u16, Error> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::ConnectionLost {
            message: format!("no free port: {e}"),
        })
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

fn as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn sh(program: &str, args: &[&std::ffi::OsStr]) -> Result<(), Error> {
    let ok = std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(Error::database(format!("{program} {args:?} failed")))
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

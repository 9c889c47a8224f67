//! PostgreSQL servers and PgBouncer as processes, with the standard library only, so that
//! `cargo xtask` shares this code without linking libpq: a data folder made by `initdb` or
//! `pg_basebackup` and served by `pg_ctl`, and PgBouncer started from its configuration.
//! As root every program runs as the `postgres` account (`runuser`), which owns what the
//! server writes: `initdb`, `pg_ctl`, `postgres` and `pgbouncer` refuse to run as root.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// What failed, in words: the command and what it printed (and the server's log).
#[derive(Debug)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// A step's outcome.
pub type Outcome = Result<(), Failure>;

/// Whether this process runs as root.
pub fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command that runs `program` as the server's account: `postgres` when root, else
/// this process's.
pub fn as_server(program: impl AsRef<OsStr>) -> Command {
    if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Runs `program` with `args`, its output discarded.
///
/// # Errors
/// When it cannot start or fails, naming it.
pub fn sh(program: &str, args: &[&OsStr]) -> Outcome {
    let ok = Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(Failure(format!("{program} {args:?} failed")))
    }
}

/// Gives `path`, and everything below it, to the server's account (when root).
///
/// # Errors
/// When `chown` fails (no `postgres` account, say).
pub fn give_to_server(path: &Path) -> Outcome {
    if !as_root() {
        return Ok(());
    }
    sh(
        "chown",
        &[
            "-R".as_ref(),
            "postgres:postgres".as_ref(),
            path.as_os_str(),
        ],
    )
    .map_err(|e| Failure(format!("{e} (does the postgres account exist?)")))
}

/// Sends `signal` (`-INT`, `-KILL`) to process `pid` and waits up to `wait` until it is
/// gone.
///
/// # Errors
/// When `kill` fails or the process outlives the wait.
pub fn kill_and_wait(pid: u32, signal: &str, wait: Duration) -> Outcome {
    let pid = pid.to_string();
    sh("kill", &[signal.as_ref(), pid.as_ref()])?;
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        if start.elapsed() > wait {
            return Err(Failure(format!("process {pid} outlived {wait:?}")));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Starts PgBouncer `binary` daemonised (`-d`) from the configuration file `ini`, whose
/// folder it gets to own, and waits up to `wait` until it accepts connections on `port`
/// of 127.0.0.1.
///
/// # Errors
/// When it fails to start or to listen, with its `log`.
pub fn start_pgbouncer(
    binary: &Path,
    ini: &Path,
    port: u16,
    log: &Path,
    wait: Duration,
) -> Outcome {
    if let Some(folder) = ini.parent() {
        give_to_server(folder)?;
    }
    let out = as_server(binary)
        .arg("-d")
        .arg(ini)
        .output()
        .map_err(|e| Failure(format!("{}: {e}", binary.display())))?;
    let log = || std::fs::read_to_string(log).unwrap_or_default();
    if !out.status.success() {
        return Err(Failure(format!(
            "pgbouncer failed to start: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            log()
        )));
    }
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > wait {
            return Err(Failure(format!(
                "pgbouncer did not listen on port {port} within {wait:?}:\n{}",
                log()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// One PostgreSQL cluster: the folder of its binaries, its data folder, its log file and
/// the options `postgres` starts with (`-p PORT -c name=value …`).
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The folder of `initdb`, `pg_ctl`, `pg_basebackup`.
    pub bin: PathBuf,
    /// The data folder.
    pub data: PathBuf,
    /// The server's log.
    pub log: PathBuf,
    /// The options of `postgres` (`pg_ctl -o`).
    pub options: String,
}

impl Cluster {
    /// Whether the data folder holds a cluster.
    pub fn exists(&self) -> bool {
        self.data.join("PG_VERSION").exists()
    }

    /// `initdb` into the data folder (made private to the server's account): superuser
    /// `postgres`, UTF8, locale C, no sync, and `args`.
    ///
    /// # Errors
    /// When a folder cannot be made or `initdb` fails.
    pub fn initdb(&self, args: &[&OsStr]) -> Outcome {
        self.prepare()?;
        let mut all: Vec<&OsStr> = vec!["-D".as_ref(), self.data.as_os_str()];
        all.extend(
            ["-U", "postgres", "-E", "UTF8", "--no-sync", "--locale=C"]
                .iter()
                .map(OsStr::new),
        );
        all.extend_from_slice(args);
        self.run("initdb", &all)
    }

    /// `pg_basebackup -R` of the server on `port` of 127.0.0.1 into the data folder (made
    /// private to the server's account): a streaming replica once started.
    ///
    /// # Errors
    /// When a folder cannot be made or `pg_basebackup` fails.
    pub fn basebackup(&self, port: u16) -> Outcome {
        self.prepare()?;
        let port = port.to_string();
        let mut all: Vec<&OsStr> = ["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-D"]
            .into_iter()
            .map(OsStr::new)
            .collect();
        all.push(self.data.as_os_str());
        all.extend(
            ["-R", "-X", "stream", "-c", "fast", "--no-sync"]
                .iter()
                .map(OsStr::new),
        );
        self.run("pg_basebackup", &all)
    }

    /// `pg_ctl ARGS` on the data folder; `start` and `restart` with the log and the
    /// options.
    ///
    /// # Errors
    /// When `pg_ctl` fails, with its output and the log.
    pub fn pg_ctl(&self, args: &[&str]) -> Outcome {
        let mut all: Vec<&OsStr> = vec!["-D".as_ref(), self.data.as_os_str()];
        if matches!(args.first(), Some(&"start" | &"restart")) {
            all.extend([
                "-l".as_ref(),
                self.log.as_os_str(),
                "-o".as_ref(),
                self.options.as_ref(),
            ]);
        }
        if matches!(args.first(), Some(&"start" | &"restart")) {
            self.log_file()?;
        }
        all.extend(args.iter().map(OsStr::new));
        self.run("pg_ctl", &all)
    }

    /// Whether the server runs (`pg_ctl status`).
    pub fn running(&self) -> bool {
        self.exists()
            && as_server(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .arg("status")
                .output()
                .is_ok_and(|o| o.status.success())
    }

    /// The data folder (0700) and the log, both the server's account's.
    fn prepare(&self) -> Outcome {
        std::fs::create_dir_all(&self.data)
            .map_err(|e| Failure(format!("{}: {e}", self.data.display())))?;
        give_to_server(&self.data)?;
        sh("chmod", &["0700".as_ref(), self.data.as_os_str()])?;
        self.log_file()
    }

    /// The log, made the server's account's when missing (the server may not create files
    /// in the folder that holds it).
    fn log_file(&self) -> Outcome {
        if self.log.exists() {
            return Ok(());
        }
        std::fs::write(&self.log, b"")
            .map_err(|e| Failure(format!("{}: {e}", self.log.display())))?;
        give_to_server(&self.log)
    }

    fn run(&self, program: &str, args: &[&OsStr]) -> Outcome {
        let path = self.bin.join(program);
        let out = as_server(&path)
            .args(args)
            .output()
            .map_err(|e| Failure(format!("{}: {e}", path.display())))?;
        if out.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        Err(Failure(format!(
            "{program} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )))
    }
}

//! PostgreSQL servers and PgBouncer as processes, with the standard library only, so that
//! `cargo xtask` shares this code without linking libpq: a data folder made by `initdb` or
//! `pg_basebackup` and served by `pg_ctl`, and PgBouncer started from its configuration.
//! As root every program runs as the `postgres` account (`runuser`), which owns what the
//! server writes: `initdb`, `pg_ctl`, `postgres` and `pgbouncer` refuse to run as root.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
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

/// Whether this process runs as root (asked of `id` once).
pub fn as_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    })
}

/// Debian's `pgbouncer` (`/usr/sbin`, which a user's `PATH` may lack), else the one on
/// `PATH`; `None` when there is none.
pub fn pgbouncer_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(PathBuf::from)
        .chain(on_path)
        .map(|dir| dir.join("pgbouncer"))
        .find(|p| p.is_file())
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

/// Runs `program` with `args`.
///
/// # Errors
/// When it cannot start or fails, naming it, with what it printed on stderr.
pub fn sh(program: &str, args: &[&OsStr]) -> Outcome {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(Failure(format!(
            "{program} {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
        Err(e) => Err(Failure(format!("{program}: {e}"))),
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
        self.run("initdb", &all, false)
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
        self.run("pg_basebackup", &all, false)
    }

    /// `pg_ctl ARGS` on the data folder; `start` and `restart` with the log and the
    /// options.
    ///
    /// # Errors
    /// When `pg_ctl` fails, with its output and the server's log.
    pub fn pg_ctl(&self, args: &[&str]) -> Outcome {
        let mut all: Vec<&OsStr> = vec!["-D".as_ref(), self.data.as_os_str()];
        if matches!(args.first(), Some(&"start" | &"restart")) {
            self.log_file()?;
            all.extend([
                "-l".as_ref(),
                self.log.as_os_str(),
                "-o".as_ref(),
                self.options.as_ref(),
            ]);
        }
        all.extend(args.iter().map(OsStr::new));
        self.run("pg_ctl", &all, true)
    }

    /// Whether the server runs (`pg_ctl status`: 0 running, 3 not).
    ///
    /// # Errors
    /// When `pg_ctl` cannot be run, or answers neither.
    pub fn running(&self) -> Result<bool, Failure> {
        if !self.exists() {
            return Ok(false);
        }
        let pg_ctl = self.bin.join("pg_ctl");
        let out = as_server(&pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .arg("status")
            .output()
            .map_err(|e| Failure(format!("{}: {e}", pg_ctl.display())))?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            _ => Err(Failure(format!(
                "pg_ctl status failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))),
        }
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

    /// Runs `program` of the binaries as the server's account; its failure says what it
    /// printed, and with `with_log` the server's log (the start of a server that failed).
    fn run(&self, program: &str, args: &[&OsStr], with_log: bool) -> Outcome {
        let path = self.bin.join(program);
        let out = as_server(&path)
            .args(args)
            .output()
            .map_err(|e| Failure(format!("{}: {e}", path.display())))?;
        if out.status.success() {
            return Ok(());
        }
        let mut message = format!(
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if with_log {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            message.push_str(&format!(
                "\nthe server's log ({}):\n{log}",
                self.log.display()
            ));
        }
        Err(Failure(message))
    }
}

//! Runs the real docker CLIs with a bounded time, piped stdin and captured output.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// A docker CLI binary. `cli28` demands a 101 for hijacks; `cli20` (Debian's docker.io)
/// also accepts a 200 that ends with the connection.
#[derive(Clone, Debug)]
pub struct Cli {
    pub name: &'static str,
    pub path: PathBuf,
}

impl Cli {
    /// The CLIs present on this machine (at least one is required).
    pub fn all() -> Vec<Cli> {
        let mut v = Vec::new();
        for (name, path) in [
            ("cli28", "/usr/local/bin/docker"),
            ("cli20", "/usr/bin/docker"),
        ] {
            if std::path::Path::new(path).exists() {
                v.push(Cli {
                    name,
                    path: path.into(),
                });
            }
        }
        assert!(!v.is_empty(), "no docker CLI found");
        v
    }

    /// The CLI used for setup and teardown on the direct socket.
    pub fn setup() -> Cli {
        Cli::all().remove(0)
    }
}

#[derive(Clone, Debug)]
pub enum Input {
    None,
    Bytes(Vec<u8>),
    /// Lines written with a pause before each, and one more pause before EOF.
    Slow(Vec<String>, Duration),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub timed_out: bool,
}

impl Out {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// A one-line summary for tables and assertion messages.
    pub fn brief(&self) -> String {
        // The start and the end: errors come last.
        let cut = |s: &str| {
            let s = s.replace('\n', "\\n").replace('\r', "\\r");
            let chars: Vec<char> = s.chars().collect();
            if chars.len() > 400 {
                let head: String = chars[..100].iter().collect();
                let tail: String = chars[chars.len() - 300..].iter().collect();
                format!("{head}...{tail}")
            } else {
                s
            }
        };
        format!(
            "code={:?}{} stdout={:?} stderr={:?}",
            self.code,
            if self.timed_out { " TIMEOUT" } else { "" },
            cut(&self.stdout_str()),
            cut(&self.stderr)
        )
    }
}

/// An empty `DOCKER_CONFIG` so that the user's config does not leak into tests.
fn config_dir() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("config.json"), "{}").unwrap();
        d
    })
    .path()
    .to_path_buf()
}

/// Runs `docker args...` against `host`; kills it after `timeout`.
pub fn docker(cli: &Cli, host: &str, args: &[&str], input: Input, timeout: Duration) -> Out {
    docker_env(cli, host, args, input, timeout, &[])
}

/// A host that the CLI reaches with `--tlsverify` and the certificates in `cert_dir`
/// (`ca.pem`, `cert.pem`, `key.pem`, as `DOCKER_CERT_PATH`): `tls://ADDR#DIR`, which
/// [`command`] turns into `DOCKER_HOST=tcp://ADDR`, `DOCKER_TLS_VERIFY=1` and
/// `DOCKER_CERT_PATH=DIR`. So every case runs unchanged over TLS.
pub fn tls_host(addr: &str, cert_dir: &std::path::Path) -> String {
    format!("tls://{addr}#{}", cert_dir.display())
}

/// A docker CLI command against `host`, with an empty configuration and none of the
/// caller's `DOCKER_*` settings; for processes a test drives itself (signals, pacing).
pub fn command(cli: &Cli, host: &str) -> Command {
    let mut cmd = Command::new(&cli.path);
    cmd.env("DOCKER_CLI_HINTS", "false")
        .env("DOCKER_CONFIG", config_dir())
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_CONTEXT");
    match host.strip_prefix("tls://").and_then(|t| t.split_once('#')) {
        Some((addr, dir)) => cmd
            .env("DOCKER_HOST", format!("tcp://{addr}"))
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", dir),
        None => cmd.env("DOCKER_HOST", host),
    };
    cmd
}

pub fn docker_env(
    cli: &Cli,
    host: &str,
    args: &[&str],
    input: Input,
    timeout: Duration,
    env: &[(&str, &str)],
) -> Out {
    let mut cmd = command(cli, host);
    cmd.args(args)
        .stdin(if matches!(input, Input::None) {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cli.path));

    let writer = child.stdin.take().map(|mut stdin| {
        thread::spawn(move || match input {
            Input::Bytes(b) => {
                let _ = stdin.write_all(&b);
            }
            Input::Slow(lines, pause) => {
                for l in lines {
                    thread::sleep(pause);
                    if stdin.write_all(format!("{l}\n").as_bytes()).is_err() {
                        return;
                    }
                }
                thread::sleep(pause);
            }
            Input::None => {}
        })
    });
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });

    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        thread::sleep(Duration::from_millis(10));
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    Out {
        code: status.code(),
        stdout: out_t.join().unwrap(),
        stderr: String::from_utf8_lossy(&err_t.join().unwrap()).into_owned(),
        timed_out,
    }
}

/// Setup/teardown helper on the direct socket: runs and expects success.
pub fn direct(args: &[&str]) -> String {
    let out = docker(
        &Cli::setup(),
        &crate::direct_host(),
        args,
        Input::None,
        Duration::from_secs(60),
    );
    assert!(
        out.ok(),
        "setup `docker {}` failed: {}",
        args.join(" "),
        out.brief()
    );
    out.stdout_str().trim().to_string()
}

/// Removes containers even if a test failed half-way.
pub struct Containers(pub Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let mut args = vec!["rm", "-f"];
        args.extend(self.0.iter().map(String::as_str));
        let _ = docker(
            &Cli::setup(),
            &crate::direct_host(),
            &args,
            Input::None,
            Duration::from_secs(30),
        );
    }
}

/// Runs a streaming command (`events`, `logs -f`) until its stdout contains `needle` or
/// `timeout` passes, then stops it. `code` is `Some(0)` when the needle was seen.
pub fn docker_until(cli: &Cli, host: &str, args: &[&str], needle: &str, timeout: Duration) -> Out {
    use std::io::BufRead;
    let mut child = command(cli, host)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cli.path));
    let stdout = child.stdout.take().unwrap();
    let needle = needle.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            seen.extend_from_slice(line.as_bytes());
            seen.push(b'\n');
            if String::from_utf8_lossy(&seen).contains(&needle) {
                let _ = tx.send((seen, true));
                return;
            }
        }
        let _ = tx.send((seen, false));
    });
    let result = rx.recv_timeout(timeout);
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    match result {
        Ok((stdout, found)) => Out {
            code: Some(if found { 0 } else { 1 }),
            stdout,
            stderr: err,
            timed_out: false,
        },
        Err(_) => Out {
            code: None,
            stdout: Vec::new(),
            stderr: err,
            timed_out: true,
        },
    }
}

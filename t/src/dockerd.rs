//! A dockerd of a test's own: own data root, exec root, pid file and socket, optionally a
//! TLS listener on loopback (`dockerd --tlsverify`), stopped and cleaned up on drop.
//!
//! It never touches the network of another daemon on the machine: it gets a bridge of
//! its own (a dockerd started with `--bridge none` deletes the default `docker0` bridge,
//! and so breaks a system daemon's containers), with an address in 198.18.0.0/15, the
//! range set aside for benchmarks, and no iptables rules. Tests run containers with
//! `--network none` or `host`, so the bridge carries no traffic.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::{docker, Input};
use crate::{unique, Cli};

/// The daemon's TLS listener: `-H tcp://127.0.0.1:port --tlsverify` with these files.
#[derive(Clone, Debug)]
pub struct DaemonTls {
    pub port: u16,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct PrivateDockerd {
    dir: tempfile::TempDir,
    exec_root: PathBuf,
    bridge: String,
    tls: Option<DaemonTls>,
    child: Option<Child>,
}

impl PrivateDockerd {
    pub fn start() -> PrivateDockerd {
        Self::start_with(None)
    }

    /// With a TLS listener as well as its unix socket.
    pub fn start_with(tls: Option<DaemonTls>) -> PrivateDockerd {
        let dir = tempfile::Builder::new()
            .prefix("nds-fd")
            .tempdir_in("/tmp")
            .unwrap();
        // containerd's sockets live under the exec root: keep it short (108-byte limit).
        let name = unique("nds-fd");
        let exec_root = PathBuf::from(format!("/run/{name}"));
        let bridge = make_bridge();
        let mut d = PrivateDockerd {
            dir,
            exec_root,
            bridge,
            tls,
            child: None,
        };
        d.launch();
        d
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock().display())
    }

    /// Starts dockerd with the same roots; returns once it answers.
    pub fn launch(&mut self) -> Duration {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("dockerd.log"))
            .unwrap();
        let t0 = Instant::now();
        let mut cmd = Command::new("dockerd");
        cmd.arg("--data-root")
            .arg(self.dir.path().join("data"))
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("--pidfile")
            .arg(self.dir.path().join("docker.pid"))
            .arg("-H")
            .arg(self.host())
            .args(["--bridge", &self.bridge])
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
            ])
            .args(["--ip-masq=false"]);
        if let Some(t) = &self.tls {
            cmd.args(["-H", &format!("tcp://127.0.0.1:{}", t.port), "--tlsverify"])
                .arg("--tlscacert")
                .arg(&t.ca)
                .arg("--tlscert")
                .arg(&t.cert)
                .arg("--tlskey")
                .arg(&t.key);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        self.child = Some(child);
        while !self.answers() {
            if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!("dockerd exited ({s}):\n{}", self.log_tail());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "dockerd did not answer:\n{}",
                self.log_tail()
            );
            thread::sleep(Duration::from_millis(20));
        }
        t0.elapsed()
    }

    /// `GET /_ping` answers `OK`.
    pub fn answers(&self) -> bool {
        answers_ping(&self.sock())
    }

    /// SIGTERM and wait; the time it took, `None` if it did not exit within `limit`.
    pub fn stop(&mut self, limit: Duration) -> Option<Duration> {
        let child = self.child.as_mut()?;
        let t0 = Instant::now();
        // SAFETY: a signal to the dockerd this test started.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        while t0.elapsed() < limit {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return Some(t0.elapsed());
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Runs the docker CLI against this daemon and expects success.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = docker(
            &Cli::setup(),
            &self.host(),
            args,
            Input::None,
            Duration::from_secs(60),
        );
        assert!(out.ok(), "`docker {}`: {}", args.join(" "), out.brief());
        out.stdout_str().trim().to_string()
    }

    /// A container `gw-<name>` of the test image that sleeps 10 minutes, without
    /// network; its id.
    pub fn named_sleeper(&self, name: &str) -> String {
        self.docker(&[
            "run",
            "-d",
            "--name",
            &format!("gw-{name}"),
            "--network",
            "none",
            &crate::image(),
            "sleep",
            "600",
        ])
    }

    /// Copies the test image from the shared daemon (`docker save | docker load`).
    pub fn load_test_image(&self) {
        load_test_image_into(&self.host());
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default();
        let lines: Vec<_> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// Whether the daemon (dockerd or podman) on the unix socket `sock` answers `/_ping`.
pub fn answers_ping(sock: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200")
}

/// Copies the test image from the shared daemon to the daemon at `host`
/// (`docker save | docker load`).
pub fn load_test_image_into(host: &str) {
    let saved = docker(
        &Cli::setup(),
        &crate::shared_host(),
        &["save", &crate::image()],
        Input::None,
        Duration::from_secs(60),
    );
    assert!(saved.ok(), "docker save: {}", saved.brief());
    let loaded = docker(
        &Cli::setup(),
        host,
        &["load"],
        Input::Bytes(saved.stdout),
        Duration::from_secs(60),
    );
    assert!(loaded.ok(), "docker load into {host}: {}", loaded.brief());
}

/// Bridges of private daemons whose test process was killed (its `Drop` never ran):
/// named `nds` and 10 hex digits, and no running dockerd has `--bridge` with that name.
/// Once per test process, before the first bridge is made.
fn remove_stale_bridges() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let links = Command::new("ip")
            .args(["-o", "link", "show", "type", "bridge"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let ours = |n: &str| {
            n.len() == 13 && n.starts_with("nds") && n[3..].bytes().all(|b| b.is_ascii_hexdigit())
        };
        let names: Vec<&str> = links
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n))
            .filter(|n| ours(n))
            .collect();
        if names.is_empty() {
            return;
        }
        let mut in_use = String::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                if cmdline.starts_with(b"dockerd\0")
                    || cmdline.windows(8).any(|w| w == b"dockerd\0")
                {
                    in_use.push_str(&String::from_utf8_lossy(&cmdline).replace('\0', " "));
                    in_use.push('\n');
                }
            }
        }
        for name in names {
            if !in_use.contains(&format!("--bridge {name} ")) {
                let _ = Command::new("ip").args(["link", "del", name]).status();
            }
        }
    });
}

/// A bridge for one private daemon, with a /24 of 198.18.0.0/15 that no other bridge on
/// the machine has.
fn make_bridge() -> String {
    remove_stale_bridges();
    let used = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for _ in 0..50 {
        let n = unique("b");
        // Interface names have at most 15 bytes.
        let name = format!("nds{}", &crate::sha256_hex(n.as_bytes())[..10]);
        let k = u32::from_str_radix(&crate::sha256_hex(n.as_bytes())[..4], 16).unwrap() % 500;
        let net = format!("198.{}.{}", 18 + k / 250, k % 250 + 1);
        if used.contains(&format!("{net}.")) {
            continue;
        }
        let add = Command::new("ip")
            .args(["link", "add", &name, "type", "bridge"])
            .status();
        if !add.is_ok_and(|s| s.success()) {
            continue;
        }
        let addr = Command::new("ip")
            .args(["addr", "add", &format!("{net}.1/24"), "dev", &name])
            .status();
        if addr.is_ok_and(|s| s.success()) {
            return name;
        }
        let _ = Command::new("ip").args(["link", "del", &name]).status();
    }
    panic!("could not create a bridge for a private dockerd (is `ip` there, are we root?)");
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        if self.child.is_some() && self.answers() {
            // Containers first, so that no shim outlives the daemon.
            let ps = docker(
                &Cli::setup(),
                &self.host(),
                &["ps", "-aq"],
                Input::None,
                Duration::from_secs(20),
            );
            let ids = ps.stdout_str();
            let mut args = vec!["rm", "-f"];
            args.extend(ids.split_whitespace());
            if args.len() > 2 {
                let _ = docker(
                    &Cli::setup(),
                    &self.host(),
                    &args,
                    Input::None,
                    Duration::from_secs(30),
                );
            }
        }
        if self.stop(Duration::from_secs(20)).is_none() {
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // Its containerd dies with it (parent-death signal); be sure anyway, if the pid
        // file still names a containerd of our exec root.
        let pid_file = self.exec_root.join("containerd/containerd.pid");
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let root = self.exec_root.to_string_lossy();
            if String::from_utf8_lossy(&cmdline).contains(root.as_ref()) {
                // SAFETY: a signal to the containerd our dockerd started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        // Whatever is still mounted below our directories (after a hard kill).
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|p| {
                Path::new(p).starts_with(&self.exec_root)
                    || Path::new(p).starts_with(self.dir.path())
            })
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let c = std::ffi::CString::new(p).unwrap();
            // SAFETY: a NUL-terminated path; a lazy unmount of our own leftovers.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        let _ = std::fs::remove_dir_all(&self.exec_root);
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

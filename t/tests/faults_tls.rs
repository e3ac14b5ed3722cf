//! Faults over TLS, with a scripted TLS peer (`t/tls-peer.py`, Python's ssl module over
//! memory BIOs) where dockerd and the docker CLI are too well-behaved: a TLS client that
//! vanishes mid-stream with a reset, or after half a TLS record (then FIN or reset), and
//! a daemon reached over TLS that does the same. Each tunnel ends with exactly one line
//! of the module saying how, the worker survives (same PID, nothing at alert level), and
//! a clean TLS half-close on the same nginx still works afterwards.

mod common;

use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Certs;
use nds_tests::fake::{write_all, FakeDaemon, Head};
use nds_tests::raw::{self, Conn};
use nds_tests::{root, Nginx, NginxConf, Recipe};

fn peer(args: &[&str]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("t/tls-peer.py")).args(args);
    cmd
}

/// The module's tunnel-end lines in the error log.
fn tunnel_lines(nginx: &Nginx) -> Vec<String> {
    nginx
        .error_log()
        .lines()
        .filter(|l| l.contains("docker_stream: ") && l.contains(" bytes sent to the client, "))
        .map(str::to_string)
        .collect()
}

fn wait_lines(nginx: &Nginx, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let lines = tunnel_lines(nginx);
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An echoing daemon on a unix socket (raw-stream 200, then every byte back; at the
/// client's end of input it says "bye" and closes).
fn echo_daemon() -> FakeDaemon {
    FakeDaemon::start(|_h: Head, mut r: BufReader<UnixStream>| {
        use std::io::Read;
        let _ = write_all(
            &mut r,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n",
        );
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 || write_all(&mut r, &buf[..n]).is_err() {
                return;
            }
        }
        let _ = write_all(&mut r, b"bye\n");
    })
}

fn run_client(nginx: &Nginx, certs: &Certs, fault: &str) -> String {
    let out = peer(&[
        "client",
        &nginx.addr(),
        &certs.path_str("good/ca.pem"),
        &certs.path_str("good/cert.pem"),
        &certs.path_str("good/key.pem"),
        fault,
    ])
    .output()
    .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.ends_with("ok\n"),
        "tls-peer client {fault}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn tls_client_faults_mid_stream() {
    let certs = Certs::generate();
    let daemon = echo_daemon();
    let mut conf = NginxConf::new(true, Recipe::Defaults, &daemon.upstream());
    conf.listen = " ssl".into();
    conf.server = certs.nginx_tls_listener();
    let nginx = Nginx::start(&conf);
    let workers = nginx.worker_pids();
    // nginx reads a TLS connection reset without a close_notify as an EOF (OpenSSL
    // reports no error for it); the module says so. A FIN, even after half a record, is
    // a clean end for nginx's OpenSSL (SSL_OP_IGNORE_UNEXPECTED_EOF), as for a client
    // killed with SIGKILL. Either way the daemon gets the end of input and closes.
    let unclean = "stream closed by the daemon after the client's connection ended without a TLS close_notify";
    let clean = "stream closed by the daemon after the client's end of input";
    let cases = [
        ("rst", unclean),
        ("truncate-rst", unclean),
        ("truncate-fin", clean),
        // The control: a clean close_notify is the client's end of input.
        ("close-notify", clean),
    ];
    for (i, (fault, want)) in cases.iter().enumerate() {
        let out = run_client(&nginx, &certs, fault);
        let lines = wait_lines(&nginx, i + 1);
        println!(
            "  client {fault:13} -> {}",
            lines.last().map_or("", |l| l.as_str())
        );
        assert_eq!(
            lines.len(),
            i + 1,
            "one line per tunnel:\n{}",
            nginx.error_log()
        );
        assert!(lines[i].contains(want), "{fault}: {}", lines[i]);
        // (Whether "bye" reaches a client after its close_notify is shown with the real
        // docker CLI in tls.rs: Python's unwrap() discards what arrives after it.)
        assert!(out.contains("ping\\n"), "{out}");
    }
    assert_eq!(nginx.worker_pids(), workers, "a worker died");
    nginx.assert_healthy();
    println!("error log:\n{}", nginx.error_log());
}

/// A TLS daemon scripted by tls-peer.py, listening on a port it writes to a file.
struct TlsDaemon {
    child: Child,
    port: u16,
}

impl TlsDaemon {
    fn start(certs: &Certs, fault: &str, dir: &Path) -> TlsDaemon {
        let portfile = dir.join(format!("port-{fault}"));
        let child = peer(&[
            "server",
            &portfile.display().to_string(),
            &certs.path_str("server/ca.pem"),
            &certs.path_str("server/server-cert.pem"),
            &certs.path_str("server/server-key.pem"),
            fault,
        ])
        .stdin(Stdio::null())
        .spawn()
        .expect("python3");
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Some(p) = std::fs::read_to_string(&portfile)
                .ok()
                .and_then(|p| p.trim().parse().ok())
            {
                break p;
            }
            assert!(Instant::now() < deadline, "tls-peer server did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        TlsDaemon { child, port }
    }
}

impl Drop for TlsDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tls_daemon_faults_mid_stream() {
    let certs = Certs::generate();
    let dir = tempfile::tempdir().unwrap();
    let unclean = "stream closed by the daemon without a TLS close_notify;";
    let cases = [
        ("rst", unclean),
        ("truncate-rst", unclean),
        ("truncate-fin", "stream closed by the daemon;"),
        ("close-notify", "stream closed by the daemon;"),
    ];
    for (fault, want) in cases {
        let daemon = TlsDaemon::start(&certs, fault, dir.path());
        let mut conf = NginxConf::new(true, Recipe::Defaults, "");
        conf.location = format!(
            "proxy_pass https://127.0.0.1:{}; {}",
            daemon.port,
            certs.nginx_tls_upstream()
        );
        let nginx = Nginx::start(&conf);
        let workers = nginx.worker_pids();
        let mut conn = Conn::connect(&nginx.addr());
        let r = raw::request(
            &mut conn,
            "POST /containers/x/attach HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\
             Upgrade: tcp\r\nConnection: Upgrade\r\n\r\n",
        );
        assert_eq!(r.status(), 101, "{fault}");
        let (got, eof) = raw::read_to_eof(&mut conn, r.rest, Duration::from_secs(15));
        let lines = wait_lines(&nginx, 1);
        println!(
            "  daemon {fault:13} -> client got {:?} (eof {eof}); {}",
            String::from_utf8_lossy(&got),
            lines.first().map_or("", |l| l.as_str())
        );
        assert!(eof, "{fault}: the client's stream did not end");
        assert!(
            got.starts_with(b"hello from the daemon\n"),
            "{fault}: {:?}",
            String::from_utf8_lossy(&got)
        );
        assert_eq!(
            lines.len(),
            1,
            "one line per tunnel:\n{}",
            nginx.error_log()
        );
        assert!(lines[0].contains(want), "{fault}: {}", lines[0]);
        assert_eq!(nginx.worker_pids(), workers, "a worker died");
        nginx.assert_healthy();
        println!("error log:\n{}", nginx.error_log());
    }
}

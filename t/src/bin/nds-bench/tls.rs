//! `--only tls`: real `docker exec` with TLS on the client leg and on both legs, against
//! the same daemon reached directly over its own Go TLS (`dockerd --tlsverify`, a private
//! one) in the same run, rounds interleaved; with each proxy's CPU seconds per GiB (its
//! processes' user + system time from /proc) beside HAProxy doing the same TLS
//! termination.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Instant;

use nds_tests::certs::Certs;
use nds_tests::dockerd::PrivateDockerd;
use nds_tests::{free_port, Nginx, NginxConf, Recipe};

use crate::cost::cpu_seconds;
use crate::peers::{run_haproxy, which};
use crate::report::{Report, Stat};

/// One way to reach the daemon: the CLI's flags and the processes whose CPU time counts.
struct Path_ {
    name: &'static str,
    /// Global docker CLI arguments (`-H ...`, TLS flags).
    flags: Vec<String>,
    /// The proxy's processes (empty for the direct connection).
    pids: Vec<u32>,
}

fn tls_flags(host: String, certs: &Certs) -> Vec<String> {
    vec![
        "-H".into(),
        host,
        "--tlsverify".into(),
        "--tlscacert".into(),
        certs.path_str("good/ca.pem"),
        "--tlscert".into(),
        certs.path_str("good/cert.pem"),
        "--tlskey".into(),
        certs.path_str("good/key.pem"),
    ]
}

/// HAProxy terminating the same client TLS, to the daemon's socket or, with
/// `upstream_tls`, to its TLS port. TCP mode: in HTTP mode Debian 12's HAProxy 2.6 passes
/// the daemon a request it answers with 200 instead of 101, and the docker CLI fails with
/// `unable to upgrade to tcp, received 200` (Tecnativa's issue #132).
fn start_haproxy(
    certs: &Certs,
    sock: &Path,
    upstream_tls: Option<u16>,
) -> Option<(Child, u16, tempfile::TempDir)> {
    which("haproxy")?;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let pem = |name: &str| std::fs::read_to_string(certs.path(name)).unwrap();
    let server_pem = dir.path().join("server.pem");
    std::fs::write(
        &server_pem,
        pem("server/server-cert.pem") + &pem("server/server-key.pem"),
    )
    .unwrap();
    let client_pem = dir.path().join("client.pem");
    std::fs::write(&client_pem, pem("good/cert.pem") + &pem("good/key.pem")).unwrap();
    let ca = certs.path_str("server/ca.pem");
    let server = match upstream_tls {
        None => format!("unix@{}", sock.display()),
        Some(p) => format!(
            "127.0.0.1:{p} ssl crt {} ca-file {ca} verify required verifyhost localhost sni str(localhost)",
            client_pem.display()
        ),
    };
    let cfg = format!(
        "global\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 10s\n  timeout client 1h\n  \
         timeout server 1h\nfrontend f\n  bind 127.0.0.1:{port} ssl crt {} \
         ca-file {ca} verify required\n  default_backend b\nbackend b\n  server s {server}\n",
        server_pem.display()
    );
    run_haproxy(dir, port, &cfg)
}

pub fn real_docker_tls(report: &mut Report, quick: bool) {
    let mib: u64 = if quick { 256 } else { 1024 };
    let certs = Certs::generate();
    let tls_port = free_port();
    let daemon = PrivateDockerd::start_with(Some(certs.daemon_tls(tls_port)));
    daemon.load_test_image();
    let id = daemon.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        &nds_tests::image(),
        "sleep",
        "3600",
    ]);

    let sock = daemon.sock();
    let mut client_leg =
        NginxConf::new(true, Recipe::Defaults, &format!("unix:{}", sock.display()));
    client_leg.listen = " ssl".into();
    client_leg.server = certs.nginx_tls_listener();
    let client_leg = Nginx::start(&client_leg);
    let mut both = NginxConf::new(true, Recipe::Defaults, "");
    both.location = format!(
        "proxy_pass https://127.0.0.1:{tls_port}; {}",
        certs.nginx_tls_upstream()
    );
    both.listen = " ssl".into();
    both.server = certs.nginx_tls_listener();
    let both = Nginx::start(&both);
    let haproxy_client = start_haproxy(&certs, &sock, None);
    let haproxy_both = start_haproxy(&certs, &sock, Some(tls_port));

    let worker = |n: &Nginx| n.worker_pids().into_iter().map(|p| p as u32).collect();
    let mut paths = vec![
        Path_ {
            name: "direct TLS daemon (dockerd's Go TLS)",
            flags: tls_flags(format!("tcp://127.0.0.1:{tls_port}"), &certs),
            pids: vec![],
        },
        Path_ {
            name: "nginx + module, TLS client leg -> daemon socket",
            flags: tls_flags(client_leg.host(), &certs),
            pids: worker(&client_leg),
        },
        Path_ {
            name: "nginx + module, TLS on both legs",
            flags: tls_flags(both.host(), &certs),
            pids: worker(&both),
        },
    ];
    if let Some((c, port, _)) = &haproxy_client {
        paths.push(Path_ {
            name: "HAProxy, TLS client leg -> daemon socket",
            flags: tls_flags(format!("tcp://127.0.0.1:{port}"), &certs),
            pids: vec![c.id()],
        });
    }
    if let Some((c, port, _)) = &haproxy_both {
        paths.push(Path_ {
            name: "HAProxy, TLS on both legs",
            flags: tls_flags(format!("tcp://127.0.0.1:{port}"), &certs),
            pids: vec![c.id()],
        });
    }

    let cli = nds_tests::Cli::setup();
    let count = (mib * 16).to_string();
    // (MB/s, proxy CPU seconds per GiB); None when the transfer came out short.
    let run = |p: &Path_, down: bool| -> Option<(f64, f64)> {
        let docker = format!("{} {}", cli.path.display(), p.flags.join(" "));
        let shell = if down {
            format!("timeout 300 {docker} exec {id} dd if=/dev/zero bs=64k count={count} 2>/dev/null | wc -c")
        } else {
            format!(
                "dd if=/dev/zero bs=64k count={count} 2>/dev/null | timeout 300 {docker} exec -i {id} sh -c 'cat | wc -c'"
            )
        };
        let cpu0 = cpu_seconds(&p.pids);
        let start = Instant::now();
        let out = Command::new("sh").arg("-c").arg(&shell).output().unwrap();
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds(&p.pids) - cpu0;
        let n: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        if n != mib << 20 {
            eprintln!(
                "  short transfer through {}: {n} bytes: {}",
                p.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(((mib << 20) as f64 / secs / 1e6, cpu / (mib as f64 / 1024.0)))
    };
    let rounds = 3;
    // Per path, per direction: throughputs and CPU per GiB.
    let mut v: Vec<[(Vec<f64>, Vec<f64>); 2]> =
        (0..paths.len()).map(|_| Default::default()).collect();
    let mut failed = vec![false; paths.len()];
    for _ in 0..rounds {
        for (i, p) in paths.iter().enumerate() {
            for (d, down) in [(0, true), (1, false)] {
                match run(p, down) {
                    Some((mbs, cpu)) => {
                        v[i][d].0.push(mbs);
                        v[i][d].1.push(cpu);
                    }
                    None => failed[i] = true,
                }
            }
        }
    }
    report.line(format!(
        "TLS: docker exec, {mib} MiB of output and of input through a daemon reached over TLS, \
         {rounds} rounds: MB/s, ratio to the direct TLS daemon, proxy CPU seconds per GiB"
    ));
    report.table_head(&[
        "path",
        "exec output",
        "ratio",
        "CPU s/GiB",
        "exec input",
        "ratio",
        "CPU s/GiB",
    ]);
    let med = |x: &Vec<f64>| (!x.is_empty()).then(|| Stat::of(x.clone()).median);
    let base = [med(&v[0][0].0), med(&v[0][1].0)];
    let keys: [[&'static str; 4]; 5] = [
        ["", "", "", ""],
        [
            "tls.client.out",
            "tls.client.in",
            "tls.client.cpu.out",
            "tls.client.cpu.in",
        ],
        [
            "tls.both.out",
            "tls.both.in",
            "tls.both.cpu.out",
            "tls.both.cpu.in",
        ],
        [
            "",
            "",
            "haproxy.tls.client.cpu.out",
            "haproxy.tls.client.cpu.in",
        ],
        [
            "",
            "",
            "haproxy.tls.both.cpu.out",
            "haproxy.tls.both.cpu.in",
        ],
    ];
    for (i, p) in paths.iter().enumerate() {
        let mut cols = vec![p.name.to_string()];
        if failed[i] {
            cols[0] += " (some transfers failed)";
        }
        for d in 0..2 {
            let mbs = med(&v[i][d].0);
            let cpu = med(&v[i][d].1);
            let ratio = mbs.zip(base[d]).map(|(a, b)| a / b);
            cols.push(mbs.map_or("failed".into(), |_| Stat::of(v[i][d].0.clone()).show()));
            cols.push(ratio.map_or("-".into(), |r| format!("{r:.2}")));
            cols.push(if i == 0 {
                "-".into()
            } else {
                cpu.map_or("-".into(), |c| format!("{c:.2}"))
            });
            if i > 0 && !failed[i] {
                if let (Some(r), false) = (ratio, keys[i][d].is_empty()) {
                    report.figure(keys[i][d], r);
                }
                if let Some(c) = cpu {
                    report.figure(keys[i][2 + d], c);
                }
            }
        }
        report.row(&cols);
    }
    report.text += "\nKernel TLS (`ssl_conf_command Options KTLS`) is not measured: this machine's kernel has no `tls` module (no /proc/net/tls_stat), so OpenSSL falls back to user-space TLS.\n";
    drop(haproxy_client.map(|(mut c, _, d)| {
        let _ = c.kill();
        let _ = c.wait();
        d
    }));
    drop(haproxy_both.map(|(mut c, _, d)| {
        let _ = c.kill();
        let _ = c.wait();
        d
    }));
}

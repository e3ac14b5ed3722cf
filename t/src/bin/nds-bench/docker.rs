//! The real daemon: `docker exec` output and input through the module, against the
//! direct socket.

use std::process::Command;
use std::time::Instant;

use nds_tests::{Nginx, NginxConf, Recipe};

use crate::report::{Report, Stat};

/// `docker exec` through the real daemon: output and input, direct and through the module.
pub fn real_docker(report: &mut Report, quick: bool) {
    let sock = nds_tests::docker_sock();
    if !sock.exists() {
        report.line("Real dockerd: skipped (no daemon socket; set NDS_DOCKER_SOCK)".into());
        return;
    }
    let mib: u64 = if quick { 256 } else { 1024 };
    let cli = nds_tests::Cli::setup();
    let direct = nds_tests::direct_host();
    let id = nds_tests::cli::direct(&[
        "run",
        "-d",
        "--network",
        "none",
        &nds_tests::image(),
        "sleep",
        "3600",
    ]);
    let _rm = nds_tests::cli::Containers(vec![id.clone()]);
    let mut conf = NginxConf::docker(true, Recipe::Defaults);
    let listen_dir = tempfile::tempdir().unwrap();
    let listen_sock = listen_dir.path().join("nds.sock");
    conf.server = format!("listen unix:{};", listen_sock.display());
    let nginx = Nginx::start(&conf);
    let paths = [
        ("direct socket", direct.clone()),
        ("nginx + module", nginx.host()),
        (
            "nginx + module, listening on a unix socket",
            format!("unix://{}", listen_sock.display()),
        ),
    ];
    let count = (mib * 16).to_string();
    let run = |host: &str, down: bool| -> f64 {
        let start = Instant::now();
        let shell = if down {
            format!(
                "{} -H {host} exec {id} dd if=/dev/zero bs=64k count={count} 2>/dev/null | wc -c",
                cli.path.display()
            )
        } else {
            format!(
                "dd if=/dev/zero bs=64k count={count} 2>/dev/null | {} -H {host} exec -i {id} sh -c 'cat | wc -c'",
                cli.path.display()
            )
        };
        let out = Command::new("sh").arg("-c").arg(&shell).output().unwrap();
        let n: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        assert_eq!(n, mib << 20, "short transfer through {host}: {shell}");
        (mib << 20) as f64 / start.elapsed().as_secs_f64() / 1e6
    };
    let rounds = 3;
    let mut v: Vec<[Vec<f64>; 2]> = vec![Default::default(); paths.len()];
    for _ in 0..rounds {
        for (i, (_, host)) in paths.iter().enumerate() {
            v[i][0].push(run(host, true));
            v[i][1].push(run(host, false));
        }
    }
    let stats: Vec<(Stat, Stat)> = v
        .into_iter()
        .map(|[d, u]| (Stat::of(d), Stat::of(u)))
        .collect();
    report.line(format!(
        "Real dockerd: docker exec, {mib} MiB of output and of input, {rounds} rounds, MB/s"
    ));
    report.table_head(&["path", "exec output", "ratio", "exec input", "ratio"]);
    for (i, key) in [
        (1, ["docker.tcp.out", "docker.tcp.in"]),
        (2, ["docker.unix.out", "docker.unix.in"]),
    ] {
        report.figure(key[0], stats[i].0.median / stats[0].0.median);
        report.figure(key[1], stats[i].1.median / stats[0].1.median);
    }
    for (i, (name, _)) in paths.iter().enumerate() {
        report.row(&[
            name.to_string(),
            stats[i].0.show(),
            format!("{:.2}", stats[i].0.median / stats[0].0.median),
            stats[i].1.show(),
            format!("{:.2}", stats[i].1.median / stats[0].1.median),
        ]);
    }
    report.text += "\nStock nginx is not in this table: with the CLI 28 it fails (`unable to upgrade`), and with the WebSocket recipe it loses `exec`'s output.\n";
}

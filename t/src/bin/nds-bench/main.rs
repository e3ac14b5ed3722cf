//! `scripts/bench`: throughput, CPU per GiB, latency, hijack set-up and idle-memory
//! figures of the tunnel, each measured side by side in the same run against baselines
//! (the direct connection, stock nginx, HAProxy, socat, a splice relay as the floor),
//! printed as tables and written to bench/RESULTS.md with the targets
//! (`targets.rs`, explained in bench/TARGETS.md). The synthetic daemon it measures
//! against is `nds_tests::synthetic`. One module per measurement.

use std::path::PathBuf;
use std::process::Command;

use nds_tests::free_port;
use nds_tests::synthetic::{daemon_tcp, daemon_unix};

mod cost;
mod docker;
mod idle;
mod latency;
mod ordinary;
mod peers;
mod report;
mod targets;
mod throughput;
mod tls;

use peers::{wait_port, Peers, Target};
use report::Report;

fn main() {
    raise_nofile();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--relay") {
        cost::relay_main(&args[2], &args[3]);
        return;
    }
    if args.get(1).map(String::as_str) == Some("--daemon") {
        // The synthetic daemon runs in a process of its own: the idle test's client ends
        // and daemon ends would not fit in one process's descriptor limit.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let sock = PathBuf::from(&args[2]);
        let port: u16 = args[3].parse().unwrap();
        rt.spawn(daemon_unix(sock));
        rt.block_on(daemon_tcp(port));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    // --only throughput,latency,setup,idle,ordinary,instructions,docker,tls
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let want = |name: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|x| x == name))
    };
    let out_md = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("daemon.sock");
    let tcp_port = free_port();
    let mut daemon = Command::new(std::env::current_exe().unwrap())
        .arg("--daemon")
        .arg(&sock)
        .arg(tcp_port.to_string())
        .spawn()
        .unwrap();
    wait_port(tcp_port);

    let mut report = Report::default();
    let bytes: u64 = if quick { 256 << 20 } else { 1 << 30 };
    let rounds = if quick { 3 } else { 5 };

    let peers = Peers::start(&Target::Unix(sock.clone()));
    if want("throughput") {
        let tcp_peers = Peers::start(&Target::Tcp(tcp_port));
        for (peers, at) in [(&peers, "a unix socket"), (&tcp_peers, "TCP")] {
            throughput::throughput_table(&mut report, peers, at, bytes, rounds);
        }
    }
    if want("latency") {
        let mut pids: Vec<u32> = vec![daemon.id()];
        for n in [
            &peers.module,
            &peers.module_copy,
            &peers.module_splice,
            &peers.stock,
        ] {
            pids.extend(n.worker_pids().into_iter().map(|p| p as u32));
        }
        pids.extend(peers.haproxy.as_ref().map(|(c, _, _)| c.id()));
        pids.extend(peers.socat.as_ref().map(|(c, _)| c.id()));
        pids.extend(peers.relay.as_ref().map(|(c, _)| c.id()));
        latency::latency_table(&mut report, &peers, tcp_port, quick, None);
        // The same with every process on one CPU: the proxies' own cost, without the
        // cross-CPU wake-ups (an IPI to a halted vCPU here) that dominate the above.
        latency::latency_table(&mut report, &peers, tcp_port, quick, Some(&pids));
    }
    if want("setup") {
        let (sessions, setup_rounds) = if quick { (300, 3) } else { (1000, 5) };
        cost::setup_table(&mut report, &peers, sessions, setup_rounds);
    }
    if want("idle") {
        let wanted = if quick { 2000 } else { 10000 };
        let idle = idle::idle_capacity(wanted);
        report.line(format!("Idle tunnels: {idle} concurrent, one nginx worker"));
        if idle < wanted {
            report.text += &format!(
            "{wanted} do not fit here: each tunnel takes two descriptors in the worker and the \
             hard RLIMIT_NOFILE is {} (no CAP_SYS_RESOURCE to raise it).\n\n",
            2 * idle + 500
        );
        }
        report.table_head(&[
            "path",
            "worker RSS growth (KiB)",
            "per tunnel (KiB)",
            "all echo after",
        ]);
        for (name, nginx) in [
            ("nginx + module", &peers.module),
            ("stock nginx (WebSocket recipe)", &peers.stock),
        ] {
            let (growth, ok) = rt.block_on(idle::idle_tunnels(nginx, idle));
            if name == "nginx + module" {
                report.figure("idle.kib", growth as f64 / idle as f64);
                report.figure("idle.echoing", ok as f64);
            }
            report.row(&[
                name.to_string(),
                format!("{growth}"),
                format!("{:.1}", growth as f64 / idle as f64),
                format!("{ok}/{idle}"),
            ]);
        }
    }
    if want("ordinary") {
        ordinary::ordinary_requests(&mut report, quick);
    }
    if want("instructions") {
        ordinary::instructions_per_request(&mut report, quick);
    }
    if want("docker") {
        docker::real_docker(&mut report, quick);
    }
    if want("tls") {
        tls::real_docker_tls(&mut report, quick);
    }

    targets::targets_summary(&mut report);
    print!("{}", report.text);
    if let Some(path) = out_md {
        std::fs::write(&path, report.text).unwrap();
        eprintln!("written to {path}");
    }
    drop(peers);
    let _ = daemon.kill();
    let _ = daemon.wait();
}

/// Raises the soft descriptor limit to the hard one.
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

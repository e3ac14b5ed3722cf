//! Tunnel throughput through every path, both directions, with the proxy's CPU per GiB
//! over the same transfers (`cost`).

use std::time::Instant;

use nds_tests::synthetic::PAYLOAD;

use crate::cost;
use crate::peers::{open, Peers, Target};
use crate::report::{Report, Stat};

#[derive(Clone, Copy)]
pub enum Dir {
    Down,
    Up,
}

/// One table: every path to a daemon streaming from memory, both directions, rounds
/// interleaved across paths so that drift in the machine's load spreads over all of them.
pub fn throughput_table(report: &mut Report, peers: &Peers, at: &str, bytes: u64, rounds: usize) {
    report.line(format!(
        "Synthetic tunnel throughput, daemon on {at}: {} MiB per round, {rounds} rounds, median (min-max) MB/s",
        bytes >> 20
    ));
    report.table_head(&["path", "download", "ratio", "upload", "ratio"]);
    let targets = peers.targets();
    let mut down: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    let mut up: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    let mut cpu: cost::CpuRounds = vec![[Vec::new(), Vec::new()]; targets.len()];
    let gib = bytes as f64 / f64::from(1u32 << 30);
    for _ in 0..rounds {
        for (i, t) in targets.iter().enumerate() {
            for (d, dir) in [Dir::Down, Dir::Up].into_iter().enumerate() {
                let before = cost::cpu_seconds(&t.pids);
                let mbs = throughput(&t.target, dir, bytes);
                if !t.pids.is_empty() {
                    cpu[i][d].push((cost::cpu_seconds(&t.pids) - before) / gib);
                }
                [&mut down, &mut up][d][i].push(mbs);
            }
        }
    }
    let down: Vec<Stat> = down.into_iter().map(Stat::of).collect();
    let up: Vec<Stat> = up.into_iter().map(Stat::of).collect();
    // The baseline: the direct connection to the same daemon.
    let (bd, bu) = (down[0].median, up[0].median);
    let median = |v: &[Stat], name: &str| {
        targets
            .iter()
            .position(|t| t.name == name)
            .map(|i| v[i].median)
    };
    let unix = at == "a unix socket";
    let module = median(&down, "nginx + module").zip(median(&up, "nginx + module"));
    if let Some((d, u)) = module {
        let (kd, ku) = if unix {
            ("tput.unix.tcp.down", "tput.unix.tcp.up")
        } else {
            ("tput.tcp.down", "tput.tcp.up")
        };
        report.figure(kd, d / bd);
        report.figure(ku, u / bu);
        for (peer, kd, ku) in [
            (
                "stock nginx (WebSocket recipe)",
                ["stock.unix.down", "stock.tcp.down"],
                ["stock.unix.up", "stock.tcp.up"],
            ),
            (
                "HAProxy (docker-socket-proxy style)",
                ["haproxy.unix.down", "haproxy.tcp.down"],
                ["haproxy.unix.up", "haproxy.tcp.up"],
            ),
        ] {
            let i = usize::from(!unix);
            if let Some((pd, pu)) = median(&down, peer).zip(median(&up, peer)) {
                report.figure(kd[i], d / pd);
                report.figure(ku[i], u / pu);
            }
        }
    }
    let listener = "nginx + module, listening on a unix socket";
    if let Some((d, u)) = median(&down, listener).zip(median(&up, listener)) {
        report.figure("tput.unix.unix.down", d / bd);
        report.figure("tput.unix.unix.up", u / bu);
    }
    for (i, t) in targets.iter().enumerate() {
        report.row(&[
            t.name.to_string(),
            down[i].show(),
            format!("{:.2}", down[i].median / bd),
            up[i].show(),
            format!("{:.2}", up[i].median / bu),
        ]);
    }
    let names: Vec<&str> = targets.iter().map(|t| t.name).collect();
    cost::cpu_table(report, at, &names, cpu);
}

/// MB/s of one transfer of `bytes`.
pub fn throughput(t: &Target, dir: Dir, bytes: u64) -> f64 {
    let start = Instant::now();
    match dir {
        Dir::Down => {
            let (mut s, rest) = open(t, &format!("/down/{bytes}"));
            let mut got = rest.len() as u64;
            let mut buf = vec![0u8; 1 << 18];
            while got < bytes {
                let n = s.io().read(&mut buf).unwrap();
                assert!(n > 0, "short download: {got}");
                got += n as u64;
            }
        }
        Dir::Up => {
            let (mut s, _) = open(t, &format!("/up/{bytes}"));
            let mut left = bytes;
            while left > 0 {
                let k = left.min(PAYLOAD.len() as u64) as usize;
                s.io().write_all(&PAYLOAD[..k]).unwrap();
                left -= k as u64;
            }
            let mut ok = [0u8; 2];
            s.io().read_exact(&mut ok).unwrap();
        }
    }
    bytes as f64 / start.elapsed().as_secs_f64() / 1e6
}

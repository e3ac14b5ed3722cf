//! Interactive latency: 1-byte round trips through an echo tunnel, per path.

use std::time::Instant;

use crate::peers::{open, Path, Peers, Target};
use crate::report::{Report, Stat};

/// Sets the CPU affinity of every thread of `pids` and of the calling thread; `None`:
/// all CPUs again.
pub fn pin(pids: &[u32], cpu: Option<usize>) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    for c in 0..all {
        if cpu.is_none_or(|one| one == c) {
            // SAFETY: c < the number of CPUs, within the set's size.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
    }
    let size = core::mem::size_of::<libc::cpu_set_t>();
    let mut tids = vec![0];
    for pid in pids {
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            tids.extend(dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()));
        }
    }
    for tid in tids {
        // SAFETY: a plain syscall on a valid set; a vanished thread only fails.
        unsafe { libc::sched_setaffinity(tid, size, &set) };
    }
}

/// The latency table: rounds of round trips per path, interleaved; with `pinned`, every
/// process involved (and this thread) on CPU 0.
pub fn latency_table(
    report: &mut Report,
    peers: &Peers,
    tcp_port: u16,
    quick: bool,
    pinned: Option<&[u32]>,
) {
    let rounds = if quick { 3 } else { 7 };
    let n = if quick { 1000 } else { 2000 };
    report.line(format!(
        "Interactive latency{}: 1-byte round trips through an echo tunnel, {rounds} rounds \
         of {n} per path, interleaved; median of the rounds (µs)",
        if pinned.is_some() {
            ", every process on one CPU"
        } else {
            ""
        }
    ));
    report.table_head(&[
        "path",
        "p50",
        "p99 (min-max of rounds)",
        "p99 added over direct unix",
        "over direct TCP",
    ]);
    let mut targets = peers.targets();
    targets.insert(
        1,
        Path {
            name: "direct (TCP)",
            target: Target::Tcp(tcp_port),
            pids: Vec::new(),
        },
    );
    // One p99 is a few dozen samples: on 2 shared cores a single preemption moves it, so
    // each path gets several short rounds spread over the whole table.
    let mut p50s: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    let mut p99s: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    if let Some(pids) = pinned {
        pin(pids, Some(0));
    }
    for _ in 0..rounds {
        for (i, t) in targets.iter().enumerate() {
            let (p50, p99) = latency(&t.target, n);
            p50s[i].push(p50);
            p99s[i].push(p99);
        }
    }
    if let Some(pids) = pinned {
        pin(pids, None);
    }
    let p50s: Vec<Stat> = p50s.into_iter().map(Stat::of).collect();
    let p99s: Vec<Stat> = p99s.into_iter().map(Stat::of).collect();
    let (unix, tcp) = (p99s[0].median, p99s[1].median);
    let added = p99s[2].median - unix;
    report.figure(
        if pinned.is_some() {
            "latency.pinned"
        } else {
            "latency"
        },
        added,
    );
    for (i, t) in targets.iter().enumerate() {
        let p99 = &p99s[i];
        report.row(&[
            t.name.to_string(),
            format!("{:.1}", p50s[i].median),
            format!("{:.1} ({:.1}-{:.1})", p99.median, p99.min, p99.max),
            format!("{:.1}", p99.median - unix),
            format!("{:.1}", p99.median - tcp),
        ]);
    }
}

/// (p50, p99) in µs of 1-byte round trips.
pub fn latency(t: &Target, n: usize) -> (f64, f64) {
    let (mut s, _) = open(t, "/echo");
    let mut samples = Vec::with_capacity(n);
    let mut b = [0u8; 1];
    for i in 0..n + 200 {
        let start = Instant::now();
        s.io().write_all(b"x").unwrap();
        s.io().read_exact(&mut b).unwrap();
        if i >= 200 {
            samples.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (samples[n / 2], samples[n * 99 / 100])
}

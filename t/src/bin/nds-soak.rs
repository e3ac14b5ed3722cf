//! `scripts/soak`: mixed Docker traffic through nginx with the module for a while (default
//! 30 minutes, 50 concurrent clients): attach and exec with checksummed stdin/stdout,
//! `logs -f`, and ordinary API calls. Reports the worker's RSS over time, error-log lines
//! by level, and every byte mismatch or failed command.
//!
//!   nds-soak [--minutes M] [--clients N] [--out FILE]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nds_tests::cli::{direct, docker, Containers, Input};
use nds_tests::{image, pseudo_random, sha256_hex, Cli, Nginx, NginxConf, Recipe};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Counts {
    ops: AtomicU64,
    bytes: AtomicU64,
    mismatches: AtomicU64,
    failures: AtomicU64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let minutes = arg(&args, "--minutes", 30);
    let clients = arg(&args, "--clients", 50) as usize;
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .cloned();

    let nginx = Nginx::start(&NginxConf::docker(true, Recipe::Recommended));
    let host = nginx.host();
    let mut keep = Containers(vec![]);
    let sleeper = direct(&[
        "run",
        "-d",
        "--network",
        "none",
        &image(),
        "sleep",
        "100000",
    ]);
    keep.0.push(sleeper.clone());
    let logger = direct(&[
        "run",
        "-d",
        "--network",
        "none",
        &image(),
        "sh",
        "-c",
        "i=0; while true; do echo line $i; i=$((i+1)); usleep 200000; done",
    ]);
    keep.0.push(logger.clone());

    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let deadline = Instant::now() + Duration::from_secs(minutes * 60);
    let cli = Cli::setup();

    let workers: Vec<_> = (0..clients)
        .map(|w| {
            let (host, cli, counts, stop, errors) = (
                host.clone(),
                cli.clone(),
                counts.clone(),
                stop.clone(),
                errors.clone(),
            );
            let (sleeper, logger) = (sleeper.clone(), logger.clone());
            std::thread::spawn(move || {
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    round += 1;
                    let seed = (w as u64) << 32 | round;
                    let t = Duration::from_secs(120);
                    let (name, ok, moved) = match round % 4 {
                        0 => {
                            let data = pseudo_random(256 << 10, seed);
                            let o = docker(
                                &cli,
                                &host,
                                &["exec", "-i", &sleeper, "cat"],
                                Input::Bytes(data.clone()),
                                t,
                            );
                            let same = o.ok() && sha256_hex(&o.stdout) == sha256_hex(&data);
                            if o.ok() && !same {
                                counts.mismatches.fetch_add(1, Ordering::Relaxed);
                            }
                            ("exec -i cat", same, 2 * data.len() as u64)
                        }
                        1 => {
                            let data = pseudo_random(64 << 10, seed);
                            let o = docker(
                                &cli,
                                &host,
                                &["run", "--rm", "-i", "--network", "none", &image(), "cat"],
                                Input::Bytes(data.clone()),
                                t,
                            );
                            let same = o.ok() && o.stdout == data;
                            if o.ok() && !same {
                                counts.mismatches.fetch_add(1, Ordering::Relaxed);
                            }
                            ("run -i cat", same, 2 * data.len() as u64)
                        }
                        2 => {
                            let o = docker(
                                &cli,
                                &host,
                                &["logs", "--tail", "5", &logger],
                                Input::None,
                                t,
                            );
                            (
                                "logs",
                                o.ok() && o.stdout_str().contains("line"),
                                o.stdout.len() as u64,
                            )
                        }
                        _ => {
                            let o = docker(&cli, &host, &["ps", "-q"], Input::None, t);
                            ("ps", o.ok(), o.stdout.len() as u64)
                        }
                    };
                    counts.ops.fetch_add(1, Ordering::Relaxed);
                    counts.bytes.fetch_add(moved, Ordering::Relaxed);
                    if !ok {
                        counts.failures.fetch_add(1, Ordering::Relaxed);
                        errors
                            .lock()
                            .unwrap()
                            .push(format!("{name} (client {w}, round {round})"));
                    }
                }
            })
        })
        .collect();

    let mut rss = Vec::new();
    let start = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(
            Duration::from_secs(10).min(deadline.saturating_duration_since(Instant::now())),
        );
        rss.push((
            start.elapsed().as_secs(),
            nginx.worker_rss_kib(),
            counts.ops.load(Ordering::Relaxed),
        ));
        eprintln!(
            "  {:>5} s  worker RSS {:>7} KiB  {:>7} ops",
            rss.last().unwrap().0,
            rss.last().unwrap().1,
            rss.last().unwrap().2
        );
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }

    let log = nginx.error_log();
    let level = |l: &str| {
        log.lines()
            .filter(|x| x.contains(&format!("[{l}]")))
            .count()
    };
    let mut report = format!(
        "# Soak\n\n{minutes} min, {clients} concurrent clients (docker CLI 28), through nginx with the module \
         and docker-api.conf, against dockerd.\n\n\
         - operations: {} (exec -i / run -i with checksummed data, logs, ps), {:.1} MB moved through tunnels\n\
         - byte mismatches: {}\n- failed operations: {}\n\
         - error log: {} emerg, {} alert, {} crit, {} error, {} warn lines; workers died: {}\n\n\
         | time (s) | worker RSS (KiB) | operations |\n|---|---|---|\n",
        counts.ops.load(Ordering::Relaxed),
        counts.bytes.load(Ordering::Relaxed) as f64 / 1e6,
        counts.mismatches.load(Ordering::Relaxed),
        counts.failures.load(Ordering::Relaxed),
        level("emerg"),
        level("alert"),
        level("crit"),
        level("error"),
        level("warn"),
        log.matches("exited on signal").count(),
    );
    for (t, kib, ops) in &rss {
        report += &format!("| {t} | {kib} | {ops} |\n");
    }
    let errs = errors.lock().unwrap();
    if !errs.is_empty() {
        report += &format!(
            "\nFailures (first 20):\n\n{}\n",
            errs.iter()
                .take(20)
                .map(|e| format!("- {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    print!("{report}");
    if let Some(path) = out {
        std::fs::write(path, &report).unwrap();
    }
    let bad = counts.mismatches.load(Ordering::Relaxed) + counts.failures.load(Ordering::Relaxed);
    std::process::exit(if bad == 0 && !log.contains("exited on signal") {
        0
    } else {
        1
    });
}

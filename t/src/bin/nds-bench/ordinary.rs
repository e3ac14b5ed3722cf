//! The module's cost to everything else: ordinary proxied requests per second (wrk) and
//! instructions per request (callgrind), with and without the module.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nds_tests::{free_port, Nginx, NginxConf, Recipe};

use crate::peers::which;
use crate::report::{Report, Stat};

/// A location proxying to a tiny backend (another server block in the same nginx).
fn plain_proxy(module: bool) -> Nginx {
    let backend = free_port();
    let mut c = NginxConf::new(module, Recipe::Defaults, &format!("127.0.0.1:{backend}"));
    c.http = format!("access_log off; server {{ listen 127.0.0.1:{backend}; location / {{ return 200 'ok'; }} }}");
    c.location = format!(
        "proxy_http_version 1.1; proxy_set_header Connection \"\"; {}",
        c.location
    );
    c.http += &format!(" upstream ordinary {{ server 127.0.0.1:{backend}; keepalive 16; }}");
    c.location = c
        .location
        .replace(&format!("http://127.0.0.1:{backend}"), "http://ordinary");
    Nginx::start(&c)
}

/// Requests per second of one wrk run; `None` when wrk failed or any response was not a
/// 2xx (a proxy answering errors fast would otherwise look faster).
fn wrk_rps(port: u16, secs: u32) -> Option<f64> {
    let out = Command::new("wrk")
        .args([
            "-t1",
            "-c32",
            &format!("-d{secs}s"),
            &format!("http://127.0.0.1:{port}/"),
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if let Some(bad) = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses"))
    {
        eprintln!("wrk on port {port}: {}", bad.trim());
        return None;
    }
    text.lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

pub fn ordinary_requests(report: &mut Report, quick: bool) {
    if which("wrk").is_none() {
        report.line("Ordinary requests: skipped (wrk is not installed)".into());
        return;
    }
    let (with, without) = (plain_proxy(true), plain_proxy(false));
    // Short interleaved rounds: the machine's drift spreads over both, and the median of
    // 9 moves less than that of 5 (the true difference is about 1%, see the
    // instruction count).
    let rounds = if quick { 3 } else { 9 };
    let secs = if quick { 3 } else { 4 };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(wrk_rps(with.port, secs).unwrap_or(0.0));
        b.push(wrk_rps(without.port, secs).unwrap_or(0.0));
    }
    let (a, b) = (Stat::of(a), Stat::of(b));
    report.line(format!(
        "Ordinary proxied requests (wrk -t1 -c32, {rounds} x {secs} s, interleaved), requests/s"
    ));
    report.table_head(&["nginx", "requests/s", "ratio"]);
    report.row(&["module not loaded".into(), b.show(), "1.00".into()]);
    report.row(&[
        "module loaded".into(),
        a.show(),
        format!("{:.3}", a.median / b.median),
    ]);
    report.figure("ordinary", a.median / b.median);
}

/// Instructions nginx executes per ordinary proxied request, counted by callgrind (exact
/// and repeatable, unlike timings), with and without the module.
pub fn instructions_per_request(report: &mut Report, quick: bool) {
    if which("valgrind").is_none() {
        report.line("Instructions per request: skipped (valgrind is not installed)".into());
        return;
    }
    // Two runs of different lengths per build: their difference leaves out start-up and
    // shutdown (module loading, configuration), which are not per-request costs.
    let (n1, n2) = if quick { (100, 400) } else { (200, 1200) };
    let mut per = [0.0f64; 2];
    for (i, module) in [false, true].into_iter().enumerate() {
        let t1 = callgrind_total(module, n1);
        let t2 = callgrind_total(module, n2);
        per[i] = t2.saturating_sub(t1) as f64 / (n2 - n1) as f64;
    }
    report.line(format!(
        "Instructions per ordinary proxied request (callgrind; runs of {n1} and {n2} requests, difference)"
    ));
    report.table_head(&["nginx", "instructions / request", "added by the module"]);
    report.row(&[
        "module not loaded".into(),
        format!("{:.0}", per[0]),
        "-".into(),
    ]);
    report.row(&[
        "module loaded".into(),
        format!("{:.0}", per[1]),
        format!(
            "{:+.0} ({:+.2}%)",
            per[1] - per[0],
            (per[1] / per[0] - 1.0) * 100.0
        ),
    ]);
}

/// Total instructions of a single-process nginx serving `n` proxied requests.
fn callgrind_total(module: bool, n: usize) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let backend = free_port();
    let load = if module {
        format!("load_module {};", nds_tests::module_path().display())
    } else {
        String::new()
    };
    let conf = format!(
        "{load}\nmaster_process off; daemon off; error_log {d}/error.log error; pid {d}/nginx.pid;\n\
         events {{}}\nhttp {{ access_log off;\n\
         server {{ listen 127.0.0.1:{backend}; location / {{ return 200 'ok'; }} }}\n\
         server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://127.0.0.1:{backend}; }} }} }}\n",
        d = dir.path().display()
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let out = dir.path().join("callgrind.out");
    let mut child = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(nds_tests::nginx_bin())
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx under callgrind did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..n {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut v = Vec::new();
        let _ = s.read_to_end(&mut v);
    }
    // SAFETY: a signal to our own child; callgrind writes its totals on exit.
    unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
    // Without a master process nginx checks the quit flag after each event loop turn; a
    // signal that arrives outside epoll_wait() (valgrind delivers them late) leaves it
    // blocked there until some event. Connections are events.
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        let _ = std::net::TcpStream::connect(("127.0.0.1", port));
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary: ")
                .or_else(|| l.strip_prefix("totals: "))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

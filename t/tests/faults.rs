//! Faults with many tunnels open: configuration reload and binary upgrade while 100
//! tunnels stream both ways; every byte must arrive, and new sessions must work at once.

use std::io::{BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nds_tests::fake::{write_all, FakeDaemon, Head};
use nds_tests::raw::{self, Conn};
use nds_tests::{pseudo_random, Nginx, NginxConf, Recipe};

const RAW: &str = "application/vnd.docker.raw-stream";
const TUNNELS: usize = 100;
const BYTES: usize = 1 << 20;

/// Echoes everything, then "bye" after the client's EOF.
fn echo_daemon() -> FakeDaemon {
    FakeDaemon::start(|_h: Head, mut r: BufReader<UnixStream>| {
        let _ = write_all(
            &mut r,
            format!("HTTP/1.1 200 OK\r\nContent-Type: {RAW}\r\n\r\n").as_bytes(),
        );
        let mut buf = [0u8; 65536];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if write_all(&mut r, &buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = write_all(&mut r, b"bye");
    })
}

/// One tunnel: writes `BYTES` slowly (about 2 s), half-closes, and checks the echo.
fn tunnel(addr: &str, seed: u64) -> Result<(), String> {
    let mut conn = Conn::connect(addr);
    let r = raw::request(
        &mut conn,
        "POST /containers/x/attach HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n",
    );
    if r.status() != 101 {
        return Err(format!("status {}", r.status()));
    }
    let payload = pseudo_random(BYTES, seed);
    let Conn::Tcp(tcp) = &conn else {
        unreachable!()
    };
    let mut w = tcp.try_clone().unwrap();
    let sent = payload.clone();
    let writer = std::thread::spawn(move || {
        for chunk in sent.chunks(1 << 15) {
            if w.write_all(chunk).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(60));
        }
        let _ = w.shutdown(std::net::Shutdown::Write);
    });
    let (got, eof) = raw::read_to_eof(&mut conn, r.rest, Duration::from_secs(60));
    writer.join().unwrap();
    if !eof {
        return Err("no EOF".into());
    }
    if got.len() != BYTES + 3 || got[..BYTES] != payload[..] || !got.ends_with(b"bye") {
        return Err(format!("{} bytes, content differs", got.len()));
    }
    Ok(())
}

/// Runs `TUNNELS` tunnels and calls `fault` once they are all streaming.
fn under_fault(nginx: &Nginx, fault: impl FnOnce()) -> Vec<String> {
    let addr = nginx.addr();
    let handles: Vec<_> = (0..TUNNELS)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || tunnel(&addr, i as u64 + 1))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    fault();
    // New sessions work at once, on the new workers.
    let t0 = Instant::now();
    if let Err(e) = tunnel(&addr, 999) {
        panic!(
            "a new tunnel right after the fault: {e}\n{}",
            nginx.error_log()
        );
    }
    assert!(t0.elapsed() < Duration::from_secs(10));
    handles
        .into_iter()
        .enumerate()
        .filter_map(|(i, h)| h.join().unwrap().err().map(|e| format!("tunnel {i}: {e}")))
        .collect()
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: a signal to a process of our own.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

#[test]
fn reload_keeps_open_tunnels_intact() {
    let fake = echo_daemon();
    let nginx = Nginx::start(&NginxConf::new(true, Recipe::Defaults, &fake.upstream()));
    let master = nginx.master_pid();
    let failures = under_fault(&nginx, || signal(master, libc::SIGHUP));
    assert!(failures.is_empty(), "{failures:#?}\n{}", nginx.error_log());
    let log = nginx.error_log();
    assert!(log.contains("reconfiguring"), "{log}");
    nginx.assert_healthy();
}

#[test]
fn binary_upgrade_keeps_open_tunnels_intact() {
    let fake = echo_daemon();
    let mut conf = NginxConf::new(true, Recipe::Defaults, &fake.upstream());
    conf.daemon = true;
    let nginx = Nginx::start(&conf);
    let old = nginx.master_pid();
    let pid_file = nginx.dir.path().join("logs/nginx.pid");
    let mut new_master = 0;
    let failures = under_fault(&nginx, || {
        signal(old, libc::SIGUSR2);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(p) = std::fs::read_to_string(&pid_file) {
                if let Ok(p) = p.trim().parse::<i32>() {
                    if p != old {
                        new_master = p;
                        break;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "no new master: {}",
                nginx.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(500));
        // The old master shuts down gracefully: its workers finish their tunnels.
        signal(old, libc::SIGQUIT);
    });
    let log = nginx.error_log();
    assert!(new_master > 0);
    assert!(failures.is_empty(), "{failures:#?}\n{log}");
    nginx.assert_healthy();
}

#[test]
fn slow_tunnels_without_faults() {
    let fake = echo_daemon();
    let nginx = Nginx::start(&NginxConf::new(true, Recipe::Defaults, &fake.upstream()));
    let failures = under_fault(&nginx, || {});
    assert!(failures.is_empty(), "{failures:#?}\n{}", nginx.error_log());
    nginx.assert_healthy();
}

/// A client reading slowly while the daemon writes 64 MiB as fast as it can: flow control
/// holds the daemon back, nginx's memory stays flat, and every byte arrives.
#[test]
fn slow_reader_keeps_memory_bounded() {
    const N: usize = 64 << 20;
    let fake = FakeDaemon::start(|_h: Head, mut r: BufReader<UnixStream>| {
        let _ = write_all(
            &mut r,
            format!("HTTP/1.1 200 OK\r\nContent-Type: {RAW}\r\n\r\n").as_bytes(),
        );
        let data = pseudo_random(N, 77);
        let _ = write_all(&mut r, &data);
    });
    let nginx = Nginx::start(&NginxConf::new(true, Recipe::Defaults, &fake.upstream()));
    let before = nginx.worker_rss_kib();
    let mut conn = Conn::connect(&nginx.addr());
    let r = raw::request(
        &mut conn,
        "POST /containers/x/attach HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n",
    );
    let mut got = r.rest;
    let mut buf = vec![0u8; 16 << 10];
    let mut peak = 0;
    // About 300 KB/s for 3 s.
    for _ in 0..60 {
        let n = conn.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
        std::thread::sleep(Duration::from_millis(50));
        peak = peak.max(nginx.worker_rss_kib());
    }
    let (got, eof) = raw::read_to_eof(&mut conn, got, Duration::from_secs(60));
    assert!(eof);
    assert!(
        got == pseudo_random(N, 77),
        "bytes differ ({} of {N})",
        got.len()
    );
    let growth = peak.saturating_sub(before);
    println!("worker RSS growth with a slow reader: {growth} KiB");
    assert!(
        growth < 4096,
        "worker RSS grew {growth} KiB while the client read slowly"
    );
    nginx.assert_healthy();
}

/// A daemon that stops reading while the client writes 32 MiB: the client is held back,
/// nginx's memory stays flat, and every byte arrives once the daemon reads again.
#[test]
fn stalled_daemon_keeps_memory_bounded() {
    const N: usize = 32 << 20;
    let fake = FakeDaemon::start(|_h: Head, mut r: BufReader<UnixStream>| {
        let _ = write_all(
            &mut r,
            format!("HTTP/1.1 200 OK\r\nContent-Type: {RAW}\r\n\r\n").as_bytes(),
        );
        std::thread::sleep(Duration::from_secs(3));
        let mut all = Vec::new();
        let _ = r.read_to_end(&mut all);
        let ok = all == pseudo_random(N, 78);
        let _ = write_all(&mut r, format!("{} {ok}", all.len()).as_bytes());
    });
    let nginx = Nginx::start(&NginxConf::new(true, Recipe::Defaults, &fake.upstream()));
    let before = nginx.worker_rss_kib();
    let mut conn = Conn::connect(&nginx.addr());
    let r = raw::request(
        &mut conn,
        "POST /containers/x/attach HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n",
    );
    let Conn::Tcp(tcp) = &conn else {
        unreachable!()
    };
    let mut w = tcp.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        w.write_all(&pseudo_random(N, 78)).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut peak = 0;
    for _ in 0..25 {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(nginx.worker_rss_kib());
    }
    let (got, _) = raw::read_to_eof(&mut conn, r.rest, Duration::from_secs(60));
    writer.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&got), format!("{N} true"));
    let growth = peak.saturating_sub(before);
    println!("worker RSS growth with a stalled daemon: {growth} KiB");
    assert!(
        growth < 4096,
        "worker RSS grew {growth} KiB while the daemon did not read"
    );
    nginx.assert_healthy();
}

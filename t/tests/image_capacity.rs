//! The image's capacity and limits: with the default `WORKER_CONNECTIONS`, one worker
//! holds 4,000 idle attach tunnels and still answers `docker ps` and a new `exec -i` at
//! once; `MAX_CONNECTIONS_PER_CLIENT` refuses the client's next request with a JSON 429
//! and lets it in again once one of its tunnels ended.

mod common;

use std::time::{Duration, Instant};

use common::{raw, run_and_exec, Proxy};
use nds_tests::cli::{direct, docker, Containers, Input};
use nds_tests::raw::{read_head, Conn};
use nds_tests::{image, Cli};

/// An idle attach tunnel to `id` (stdout only, `Upgrade: tcp`): the connection, once the
/// 101 came.
fn attach(addr: &str, id: &str) -> Result<Conn, String> {
    let mut conn = Conn::connect(addr);
    let head = format!(
        "POST /v1.41/containers/{id}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n\
         Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    );
    std::io::Write::write_all(&mut conn, head.as_bytes()).map_err(|e| e.to_string())?;
    let r = read_head(&mut conn);
    if r.status() == 101 {
        Ok(conn)
    } else {
        Err(format!(
            "{} {:?}",
            r.status_line,
            String::from_utf8_lossy(&r.rest)
        ))
    }
}

/// Lets this process hold `n` more sockets.
fn raise_nofile(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(lim.rlim_cur.max(n));
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    assert!(
        lim.rlim_cur >= n,
        "this test needs {n} open files, the hard limit is {}",
        lim.rlim_max
    );
}

#[test]
fn image_holds_4000_idle_tunnels_and_answers() {
    const TUNNELS: usize = 4000;
    raise_nofile(TUNNELS as u64 + 512);
    let proxy = Proxy::start(&run_and_exec(&[
        ("WORKER_PROCESSES", "1"),
        ("ACCESS_LOG", "0"),
    ]));
    let mut c = Containers(vec![]);
    let id = direct(&["run", "-d", "--network", "none", &image(), "sleep", "600"]);
    c.0.push(id.clone());
    let addr = proxy.addr();
    let started = Instant::now();
    let tunnels: Vec<Conn> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (addr, id) = (&addr, &id);
                s.spawn(move || {
                    (0..TUNNELS / 8)
                        .map(|i| attach(addr, id).unwrap_or_else(|e| panic!("tunnel {i}: {e}")))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    println!(
        "  {} idle attach tunnels open in {:.1?}",
        tunnels.len(),
        started.elapsed()
    );
    for cli in Cli::all() {
        let t0 = Instant::now();
        let ps = docker(
            &cli,
            &proxy.host(),
            &["ps", "-q", "--no-trunc"],
            Input::None,
            Duration::from_secs(30),
        );
        let ps_took = t0.elapsed();
        let t0 = Instant::now();
        let exec = docker(
            &cli,
            &proxy.host(),
            &["exec", "-i", &id, "tr", "a-z", "A-Z"],
            Input::Bytes(b"still here\n".to_vec()),
            Duration::from_secs(30),
        );
        let exec_took = t0.elapsed();
        println!(
            "  {:5} with {TUNNELS} tunnels open: ps {ps_took:.1?}, exec -i {exec_took:.1?}",
            cli.name
        );
        assert!(ps.ok() && ps.stdout_str().contains(&id), "{}", ps.brief());
        assert!(
            exec.ok() && exec.stdout_str() == "STILL HERE\n",
            "{}",
            exec.brief()
        );
        assert!(
            // Measured ~0.1 s; generous for a loaded machine, short of a stuck worker.
            ps_took < Duration::from_secs(15) && exec_took < Duration::from_secs(20),
            "slow with {TUNNELS} tunnels: ps {ps_took:?}, exec {exec_took:?}"
        );
    }
    drop(tunnels);
    let logs = proxy.logs();
    assert!(
        !logs.stderr.contains("worker_connections are not enough")
            && !logs.stderr.contains("Too many open files"),
        "{}",
        logs.brief()
    );

    // The control: the image's former fixed 1024 connections hold about 500 tunnels.
    let small = Proxy::start(&[
        ("CONTAINERS", "1"),
        ("ALLOW_EXEC", "1"),
        ("ALLOW_ATTACH", "1"),
        ("POST", "1"),
        ("WORKER_PROCESSES", "1"),
        ("WORKER_CONNECTIONS", "1024"),
    ]);
    let addr = small.addr();
    let mut held = Vec::new();
    let mut refused = None;
    for i in 0..700 {
        let addr = addr.clone();
        let id = id.clone();
        match std::panic::catch_unwind(move || attach(&addr, &id)) {
            Ok(Ok(conn)) => held.push(conn),
            Ok(Err(e)) => {
                refused = Some(format!("tunnel {i}: {e}"));
                break;
            }
            Err(_) => {
                refused = Some(format!("tunnel {i}: connection closed"));
                break;
            }
        }
    }
    println!("  control, WORKER_CONNECTIONS=1024: {refused:?}");
    assert!(refused.is_some(), "700 tunnels through 1024 connections");
    // docker logs copies the container's output as it comes: poll for the line.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut logs = small.logs();
    while !logs.stderr.contains("worker_connections are not enough") {
        assert!(Instant::now() < deadline, "{}", logs.brief());
        std::thread::sleep(Duration::from_millis(250));
        logs = small.logs();
    }
}

#[test]
fn image_limits_connections_per_client() {
    let proxy = Proxy::start(&[
        ("CONTAINERS", "1"),
        ("ALLOW_EXEC", "1"),
        ("ALLOW_ATTACH", "1"),
        ("POST", "1"),
        ("MAX_CONNECTIONS_PER_CLIENT", "3"),
    ]);
    let mut c = Containers(vec![]);
    let id = direct(&["run", "-d", "--network", "none", &image(), "sleep", "600"]);
    c.0.push(id.clone());
    let addr = proxy.addr();
    let mut held: Vec<Conn> = (0..3).map(|_| attach(&addr, &id).unwrap()).collect();
    let (status, ctype, body) = raw(&addr, "GET", "/v1.41/containers/json", "");
    println!("  a 4th request: {status} {body:?}");
    assert_eq!(
        (status, ctype.as_str()),
        (429, "application/json"),
        "{body}"
    );
    assert!(
        body.contains(
            "too many concurrent requests from this client (MAX_CONNECTIONS_PER_CLIENT=3)"
        ),
        "{body}"
    );
    // One tunnel ends (the client resets it): the client gets in again. (A client that
    // only closes its side, FIN, leaves a stdout-only attach open as on the daemon's
    // socket, until output fails or STREAM_IDLE_TIMEOUT.)
    held.pop().unwrap().reset();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, body) = raw(&addr, "GET", "/v1.41/containers/json", "");
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {status} {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// STREAM_IDLE_TIMEOUT: a tunnel silent for that long is closed.
#[test]
fn image_closes_idle_tunnels_when_asked() {
    let proxy = Proxy::start(&[
        ("CONTAINERS", "1"),
        ("ALLOW_EXEC", "1"),
        ("ALLOW_ATTACH", "1"),
        ("POST", "1"),
        ("STREAM_IDLE_TIMEOUT", "1s"),
    ]);
    let mut c = Containers(vec![]);
    let id = direct(&["run", "-d", "--network", "none", &image(), "sleep", "600"]);
    c.0.push(id.clone());
    let mut conn = attach(&proxy.addr(), &id).unwrap();
    let started = Instant::now();
    let (_, eof) = nds_tests::raw::read_to_eof(&mut conn, vec![], Duration::from_secs(10));
    println!("  idle tunnel closed after {:.1?}", started.elapsed());
    assert!(eof, "the idle tunnel was not closed");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

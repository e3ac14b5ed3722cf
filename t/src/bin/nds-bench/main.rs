//! `scripts/bench`: throughput, latency and idle-memory figures of the tunnel, each measured
//! side by side in the same run against baselines (the direct connection, stock nginx,
//! HAProxy, socat), printed as a table and written to bench/RESULTS.md.
//!
//! The synthetic daemon streams from memory: `POST /down/N` sends N bytes after the head,
//! `POST /up/N` reads N bytes then answers `ok`, `POST /echo` echoes. It answers `101`
//! when the request carries `Upgrade` (as dockerd does), else a raw-stream `200`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nds_tests::{free_port, Nginx, NginxConf, Recipe};

mod cost;
mod tls;

const RAW: &str = "application/vnd.docker.raw-stream";
static PAYLOAD: [u8; 1 << 18] = [b'x'; 1 << 18];

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
            throughput_table(&mut report, peers, at, bytes, rounds);
        }
    }
    if want("latency") {
        let mut pids: Vec<u32> = vec![daemon.id()];
        for n in [&peers.module, &peers.module_copy, &peers.stock] {
            pids.extend(n.worker_pids().into_iter().map(|p| p as u32));
        }
        pids.extend(peers.haproxy.as_ref().map(|(c, _, _)| c.id()));
        pids.extend(peers.socat.as_ref().map(|(c, _)| c.id()));
        pids.extend(peers.relay.as_ref().map(|(c, _)| c.id()));
        latency_table(&mut report, &peers, tcp_port, quick, None);
        // The same with every process on one CPU: the proxies' own cost, without the
        // cross-CPU wake-ups (an IPI to a halted vCPU here) that dominate the above.
        latency_table(&mut report, &peers, tcp_port, quick, Some(&pids));
    }
    if want("setup") {
        let (sessions, setup_rounds) = if quick { (300, 3) } else { (1000, 5) };
        cost::setup_table(&mut report, &peers, sessions, setup_rounds);
    }
    if want("idle") {
        let wanted = if quick { 2000 } else { 10000 };
        let idle = idle_capacity(wanted);
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
            let (growth, ok) = rt.block_on(idle_tunnels(nginx, idle));
            if name == "nginx + module" {
                report.figure("idle.kib", growth as f64 / idle as f64);
                report.figure("idle.n", idle as f64);
                report.figure("idle.ok", ok as f64);
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
        ordinary_requests(&mut report, quick);
    }
    if want("instructions") {
        instructions_per_request(&mut report, quick);
    }
    if want("docker") {
        real_docker(&mut report, quick);
    }
    if want("tls") {
        tls::real_docker_tls(&mut report, quick);
    }

    targets_summary(&mut report);
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

/// Tunnels one nginx worker can hold here: two descriptors each, within the hard limit.
fn idle_capacity(wanted: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscall on a valid struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    wanted.min((lim.rlim_max as usize).saturating_sub(500) / 2)
}

// ---------------------------------------------------------------------------------------
// The synthetic daemon

async fn serve(mut s: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).to_lowercase();
    let path = text.split(' ').nth(1).unwrap_or("/").to_string();
    let answer = if text.contains("\r\nupgrade:") {
        format!("HTTP/1.1 101 UPGRADED\r\nContent-Type: {RAW}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Type: {RAW}\r\n\r\n")
    };
    if s.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let n = |p: &str| {
        p.rsplit('/')
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    if path.starts_with("/down/") {
        let mut left = n(&path);
        while left > 0 {
            let k = left.min(PAYLOAD.len() as u64) as usize;
            if s.write_all(&PAYLOAD[..k]).await.is_err() {
                return;
            }
            left -= k as u64;
        }
    } else if path.starts_with("/up/") {
        let mut left = n(&path);
        let mut buf = vec![0u8; 1 << 18];
        while left > 0 {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(k) => left = left.saturating_sub(k as u64),
            }
        }
        let _ = s.write_all(b"ok").await;
    } else {
        let mut buf = vec![0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(k) => {
                    if s.write_all(&buf[..k]).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
    let _ = s.shutdown().await;
}

async fn daemon_unix(path: PathBuf) {
    let l = tokio::net::UnixListener::bind(path).unwrap();
    loop {
        let Ok((s, _)) = l.accept().await else {
            continue;
        };
        tokio::spawn(serve(s));
    }
}

async fn daemon_tcp(port: u16) {
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    loop {
        let Ok((s, _)) = l.accept().await else {
            continue;
        };
        s.set_nodelay(true).ok();
        tokio::spawn(serve(s));
    }
}

// ---------------------------------------------------------------------------------------
// The peers

#[derive(Clone)]
enum Target {
    Unix(PathBuf),
    Tcp(u16),
}

impl Target {
    /// As nginx's `proxy_pass http://...` names it.
    fn nginx_upstream(&self) -> String {
        match self {
            Target::Unix(p) => format!("unix:{}", p.display()),
            Target::Tcp(port) => format!("127.0.0.1:{port}"),
        }
    }
}

/// The proxies in front of one synthetic daemon (on a unix socket or on TCP).
struct Peers {
    daemon: Target,
    listen_dir: tempfile::TempDir,
    module: Nginx,
    module_copy: Nginx,
    stock: Nginx,
    haproxy: Option<(Child, u16, tempfile::TempDir)>,
    socat: Option<(Child, u16)>,
    /// The floor: a splice relay written for the benchmark.
    relay: Option<(Child, u16)>,
}

/// One path to the daemon: its name in the tables, where a client connects, and the
/// processes that carry it (none for the direct connection).
struct Path {
    name: &'static str,
    target: Target,
    pids: Vec<u32>,
}

impl Peers {
    fn start(daemon: &Target) -> Peers {
        let upstream = daemon.nginx_upstream();
        let tune = |mut c: NginxConf| {
            c.http = "proxy_read_timeout 1h; access_log off;".into();
            c.main = "worker_rlimit_nofile 20000;".into();
            c.worker_connections = 19900;
            c
        };
        let mut module = tune(NginxConf::new(true, Recipe::Defaults, &upstream));
        // The same nginx also listens on a unix socket: a local proxy for docker.sock.
        let listen_dir = tempfile::tempdir().unwrap();
        let listen_sock = listen_dir.path().join("nds.sock");
        module.server = format!("listen unix:{};", listen_sock.display());
        let mut module_copy = tune(NginxConf::new(true, Recipe::Defaults, &upstream));
        module_copy.location = format!("docker_stream_splice off; {}", module_copy.location);
        let stock = tune(NginxConf::new(false, Recipe::WebSocket, &upstream));
        Peers {
            daemon: daemon.clone(),
            listen_dir,
            module: Nginx::start(&module),
            module_copy: Nginx::start(&module_copy),
            stock: Nginx::start(&stock),
            haproxy: start_haproxy(daemon),
            socat: start_socat(daemon),
            relay: cost::start_relay(daemon),
        }
    }

    /// The paths to the daemon, the direct connection first.
    fn targets(&self) -> Vec<Path> {
        let workers = |n: &Nginx| n.worker_pids().into_iter().map(|p| p as u32).collect();
        let mut v = vec![Path {
            name: match &self.daemon {
                Target::Unix(_) => "direct (unix socket)",
                Target::Tcp(_) => "direct (TCP)",
            },
            target: self.daemon.clone(),
            pids: Vec::new(),
        }];
        v.push(Path {
            name: "nginx + module",
            target: Target::Tcp(self.module.port),
            pids: workers(&self.module),
        });
        if let Target::Unix(_) = self.daemon {
            v.push(Path {
                name: "nginx + module, listening on a unix socket",
                target: Target::Unix(self.listen_dir.path().join("nds.sock")),
                pids: workers(&self.module),
            });
        }
        v.push(Path {
            name: "nginx + module, splice off",
            target: Target::Tcp(self.module_copy.port),
            pids: workers(&self.module_copy),
        });
        v.push(Path {
            name: "stock nginx (WebSocket recipe)",
            target: Target::Tcp(self.stock.port),
            pids: workers(&self.stock),
        });
        if let Some((c, port, _)) = &self.haproxy {
            v.push(Path {
                name: "HAProxy (docker-socket-proxy style)",
                target: Target::Tcp(*port),
                pids: vec![c.id()],
            });
        }
        if let Some((c, port)) = &self.socat {
            v.push(Path {
                name: "socat",
                target: Target::Tcp(*port),
                pids: vec![c.id()],
            });
        }
        if let Some((c, port)) = &self.relay {
            v.push(Path {
                name: cost::FLOOR,
                target: Target::Tcp(*port),
                pids: vec![c.id()],
            });
        }
        v
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        if let Some((c, _, _)) = &mut self.haproxy {
            let _ = c.kill();
            let _ = c.wait();
        }
        for (c, _) in [&mut self.socat, &mut self.relay].into_iter().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_haproxy(daemon: &Target) -> Option<(Child, u16, tempfile::TempDir)> {
    which("haproxy")?;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = match daemon {
        Target::Unix(p) => format!("unix@{}", p.display()),
        Target::Tcp(port) => format!("127.0.0.1:{port}"),
    };
    // As Tecnativa's docker-socket-proxy: HTTP mode, tunnel timeout for hijacks.
    let cfg = format!(
        "global\n  maxconn 4000\ndefaults\n  mode http\n  timeout connect 10s\n  timeout client 1h\n  \
         timeout server 1h\n  timeout tunnel 1h\nfrontend f\n  bind 127.0.0.1:{port}\n  default_backend b\n\
         backend b\n  server s {server}\n"
    );
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let child = Command::new("haproxy")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_port(port);
    Some((child, port, dir))
}

fn start_socat(daemon: &Target) -> Option<(Child, u16)> {
    which("socat")?;
    let port = free_port();
    let to = match daemon {
        Target::Unix(p) => format!("UNIX-CONNECT:{}", p.display()),
        Target::Tcp(port) => format!("TCP:127.0.0.1:{port}"),
    };
    let child = Command::new("socat")
        .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"))
        .arg(to)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_port(port);
    Some((child, port))
}

fn which(cmd: &str) -> Option<()> {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .stdout(Stdio::null())
        .status()
        .ok()?
        .success()
        .then_some(())
}

fn wait_port(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("port {port} did not open");
}

// ---------------------------------------------------------------------------------------
// Measurements

enum Stream {
    Unix(UnixStream),
    Tcp(std::net::TcpStream),
}

impl Stream {
    fn connect(t: &Target) -> Stream {
        match t {
            Target::Unix(p) => Stream::Unix(UnixStream::connect(p).unwrap()),
            Target::Tcp(port) => {
                let s = std::net::TcpStream::connect(("127.0.0.1", *port)).unwrap();
                s.set_nodelay(true).unwrap();
                Stream::Tcp(s)
            }
        }
    }
    fn io(&mut self) -> &mut dyn ReadWrite {
        match self {
            Stream::Unix(s) => s,
            Stream::Tcp(s) => s,
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Opens a tunnel to `path` and returns it with any bytes read past the head.
fn open(t: &Target, path: &str) -> (Stream, Vec<u8>) {
    let mut s = Stream::connect(t);
    let req = format!("POST {path} HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n");
    s.io().write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        let n = s.io().read(&mut b).unwrap();
        assert!(n > 0, "closed before the head");
        buf.extend_from_slice(&b[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_string();
            assert!(head.starts_with("HTTP/1.1 101"), "{head}");
            return (s, buf[i + 4..].to_vec());
        }
    }
}

#[derive(Clone, Copy)]
enum Dir {
    Down,
    Up,
}

/// One table: every path to a daemon streaming from memory, both directions, rounds
/// interleaved across paths so that drift in the machine's load spreads over all of them.
fn throughput_table(report: &mut Report, peers: &Peers, at: &str, bytes: u64, rounds: usize) {
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
fn throughput(t: &Target, dir: Dir, bytes: u64) -> f64 {
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

/// Sets the CPU affinity of every thread of `pids` and of the calling thread; `None`:
/// all CPUs again.
fn pin(pids: &[u32], cpu: Option<usize>) {
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
fn latency_table(
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
fn latency(t: &Target, n: usize) -> (f64, f64) {
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

struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

impl Stat {
    fn show(&self) -> String {
        format!("{:.0} ({:.0}-{:.0})", self.median, self.min, self.max)
    }
}

impl Stat {
    fn of(mut v: Vec<f64>) -> Stat {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let n = v.len();
        Stat {
            median: v[n / 2],
            min: v[0],
            max: v[n - 1],
        }
    }
}

/// Opens `n` idle echo tunnels; returns the worker's RSS growth and how many still echo.
async fn idle_tunnels(nginx: &Nginx, n: usize) -> (u64, usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let before = nginx.worker_rss_kib();
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", nginx.port))
            .await
            .unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n")
            .await
            .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).await.unwrap() == 0 {
                break;
            }
            head.push(b[0]);
        }
        conns.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = nginx.worker_rss_kib();
    let mut ok = 0;
    for s in conns.iter_mut() {
        let mut b = [0u8; 1];
        if s.write_all(b"z").await.is_ok()
            && tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut b))
                .await
                .is_ok()
            && b[0] == b'z'
        {
            ok += 1;
        }
    }
    (after.saturating_sub(before), ok)
}

#[derive(Default)]
struct Report {
    text: String,
    /// Figures the targets summary is made of, by key.
    figures: std::collections::BTreeMap<&'static str, f64>,
}

impl Report {
    fn figure(&mut self, key: &'static str, value: f64) {
        self.figures.insert(key, value);
    }
    fn line(&mut self, s: String) {
        self.text += &format!("\n### {s}\n\n");
    }
    fn table_head(&mut self, cols: &[&str]) {
        self.text += &format!("| {} |\n|{}\n", cols.join(" | "), "---|".repeat(cols.len()));
    }
    fn row(&mut self, cols: &[String]) {
        self.text += &format!("| {} |\n", cols.join(" | "));
        eprintln!("  {}", cols.join("  "));
    }
}

// ---------------------------------------------------------------------------------------
// Cost to everything else, and the real daemon

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
    text.lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn ordinary_requests(report: &mut Report, quick: bool) {
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
fn instructions_per_request(report: &mut Report, quick: bool) {
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

/// `docker exec` through the real daemon: output and input, direct and through the module.
fn real_docker(report: &mut Report, quick: bool) {
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

/// The targets against this run's figures, and for each one not met what limits
/// it (as measured on this machine: see the README's Performance section).
/// A row name made at run time, for the summary's table of `&str`s.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn targets_summary(report: &mut Report) {
    let f = report.figures.clone();
    let get = |k: &str| f.get(k).copied();
    let pair = |a: &str, b: &str| get(a).zip(get(b));
    let ratio2 = |(a, b): (f64, f64)| format!("{a:.2} / {b:.2}");
    let times2 = |(a, b): (f64, f64)| format!("{a:.2}x / {b:.2}x");
    let min2 = |(a, b): (f64, f64)| a.min(b);
    // (figure, target, measured, met, what limits it when not met)
    let mut rows: Vec<(&str, &str, String, bool, &str)> = Vec::new();
    let tcp_limit = "a TCP listener: on loopback the kernel's TCP work (the sender also runs \
        the receiver's softirq processing) falls on the proxy's one worker thread, and \
        client, proxy and daemon share 2 cores; every proxy in the table pays it, the \
        module least";
    if let Some(v) = pair("tput.unix.unix.down", "tput.unix.unix.up") {
        rows.push((
            "throughput vs direct, nginx on a unix socket (down / up)",
            ">= 0.8",
            ratio2(v),
            min2(v) >= 0.8,
            "three busy processes (client, nginx, daemon) on 2 cores, where the direct \
             connection has two; this row moves most between runs (0.69 to 0.90 down on \
             the development machine)",
        ));
    }
    if let Some(v) = pair("tput.unix.tcp.down", "tput.unix.tcp.up") {
        rows.push((
            "throughput vs direct unix socket, nginx on TCP (down / up)",
            ">= 0.8",
            ratio2(v),
            min2(v) >= 0.8,
            tcp_limit,
        ));
    }
    if let Some(v) = pair("tput.tcp.down", "tput.tcp.up") {
        rows.push((
            "throughput vs direct TCP, daemon on TCP (down / up)",
            ">= 0.8",
            ratio2(v),
            min2(v) >= 0.8,
            "as above, twice: the proxy receives and sends over loopback TCP, about the \
             daemon's own kernel work again on 2 shared cores",
        ));
    }
    for (name, keys) in [
        (
            "vs stock nginx, daemon on unix / on TCP (down, up)",
            [
                "stock.unix.down",
                "stock.unix.up",
                "stock.tcp.down",
                "stock.tcp.up",
            ],
        ),
        (
            "vs HAProxy, daemon on unix / on TCP (down, up)",
            [
                "haproxy.unix.down",
                "haproxy.unix.up",
                "haproxy.tcp.down",
                "haproxy.tcp.up",
            ],
        ),
    ] {
        let v: Vec<f64> = keys.iter().filter_map(|k| get(k)).collect();
        if v.len() == 4 {
            let want = if name.starts_with("vs stock") {
                1.5
            } else {
                1.0
            };
            rows.push((
                name,
                if want > 1.0 { ">= 1.5x" } else { ">= 1.0x" },
                format!("{} ; {}", times2((v[0], v[1])), times2((v[2], v[3]))),
                v.iter().all(|x| *x >= want),
                "",
            ));
        }
    }
    if let Some(v) = pair("docker.unix.out", "docker.unix.in") {
        rows.push((
            "real docker exec vs direct, nginx on a unix socket (out / in)",
            ">= 0.95",
            ratio2(v),
            min2(v) >= 0.95,
            "dockerd is the bottleneck, and nginx's copy or splice work competes with it \
             for the 2 cores; runs on the development machine gave 0.90 to 1.00 out and \
             0.91 to 1.10 in",
        ));
    }
    if let Some(v) = pair("docker.tcp.out", "docker.tcp.in") {
        rows.push((
            "real docker exec vs direct socket, nginx on TCP (out / in)",
            ">= 0.95",
            ratio2(v),
            min2(v) >= 0.95,
            "the CLI reading over loopback TCP instead of the unix socket: that kernel work \
             competes with dockerd (the bottleneck) for the 2 cores",
        ));
    }
    for (name, keys) in [
        (
            "real docker exec over TLS vs the direct TLS daemon, TLS client leg (out / in)",
            ("tls.client.out", "tls.client.in"),
        ),
        (
            "real docker exec over TLS vs the direct TLS daemon, TLS on both legs (out / in)",
            ("tls.both.out", "tls.both.in"),
        ),
    ] {
        if let Some(v) = pair(keys.0, keys.1) {
            rows.push((
                name,
                ">= 0.9",
                ratio2(v),
                min2(v) >= 0.9,
                "the proxy decrypts and encrypts every byte (user-space OpenSSL: no kernel TLS \
                 here) on the same 2 cores as dockerd, itself the bottleneck, and the CLI",
            ));
        }
    }
    for (name, ours, theirs) in [
        (
            "proxy CPU s/GiB over TLS vs HAProxy, TLS client leg (out / in)",
            ("tls.client.cpu.out", "tls.client.cpu.in"),
            ("haproxy.tls.client.cpu.out", "haproxy.tls.client.cpu.in"),
        ),
        (
            "proxy CPU s/GiB over TLS vs HAProxy, TLS on both legs (out / in)",
            ("tls.both.cpu.out", "tls.both.cpu.in"),
            ("haproxy.tls.both.cpu.out", "haproxy.tls.both.cpu.in"),
        ),
    ] {
        if let (Some(a), Some(b)) = (pair(ours.0, ours.1), pair(theirs.0, theirs.1)) {
            rows.push((
                name,
                "< HAProxy",
                format!("{:.2} / {:.2} vs {:.2} / {:.2}", a.0, a.1, b.0, b.1),
                a.0 < b.0 && a.1 < b.1,
                "both proxies spend nearly all of it in OpenSSL's record encryption; the \
                 difference left is the size of the records and writes each proxy makes",
            ));
        }
    }
    for at in ["unix", "tcp"] {
        let k = |what: &str, dir: &str| get(&format!("cpu.{at}.{what}.{dir}"));
        let (Some(md), Some(mu)) = (k("module", "down"), k("module", "up")) else {
            continue;
        };
        let daemon = if at == "unix" { "a unix socket" } else { "TCP" };
        if let (Some(fd), Some(fu)) = (k("floor", "down"), k("floor", "up")) {
            rows.push((
                leak(format!(
                    "proxy CPU per GiB vs the splice relay floor, daemon on {daemon} (down / up)"
                )),
                "<= 1.3x",
                times2((md / fd, mu / fu)),
                md / fd <= 1.3 && mu / fu <= 1.3,
                "towards a daemon on TCP the module copies through its buffer (`auto` splices \
                 only into unix sockets, which measured fastest), where the floor splices; \
                 with `docker_stream_splice on` a quick run measured 0.32 s/GiB both ways \
                 against the floor's 0.16 to 0.20: the rest is nginx's event loop per \
                 wake-up and 256 KiB pipes against the floor's 1 MiB",
            ));
        }
        let peers: Vec<(&str, f64, f64)> = ["stock", "haproxy", "socat"]
            .into_iter()
            .filter_map(|p| Some((p, k(p, "down")?, k(p, "up")?)))
            .collect();
        if !peers.is_empty() {
            let shown: Vec<String> = peers
                .iter()
                .map(|(p, d, u)| format!("{p} {d:.3} / {u:.3}"))
                .collect();
            rows.push((
                leak(format!(
                    "proxy CPU per GiB vs every peer, daemon on {daemon} (down / up, s/GiB)"
                )),
                "< each",
                format!("{md:.3} / {mu:.3} vs {}", shown.join(", ")),
                peers.iter().all(|(_, d, u)| md < *d && mu < *u),
                "",
            ));
        }
    }
    if let Some((m, s)) = pair("setup.unix.module", "setup.unix.stock") {
        rows.push((
            "hijack set-up vs direct, daemon on a unix socket: module (stock nginx)",
            ">= 0.9x stock nginx",
            format!("{m:.2} ({s:.2})"),
            m >= 0.9 * s,
            "",
        ));
    }
    if let Some(v) = get("latency") {
        rows.push((
            "added p99 of 1-byte round trips",
            "<= 50 us",
            format!("{v:.1} us"),
            v <= 50.0,
            "cross-CPU wake-ups: each hop through a third process wakes a halted vCPU \
             (an IPI and a VM exit here); every proxy adds about as much, and with all \
             processes on one CPU (next row) the proxies' own cost is small",
        ));
    }
    if let Some(v) = get("latency.pinned") {
        rows.push((
            "added p99, every process on one CPU",
            "<= 50 us",
            format!("{v:.1} us"),
            v <= 50.0,
            "",
        ));
    }
    if let (Some(kib), Some(n), Some(ok)) = (get("idle.kib"), get("idle.n"), get("idle.ok")) {
        rows.push((
            "idle tunnel memory",
            "<= 16 KiB at 10,000",
            format!("{kib:.1} KiB at {n:.0} ({ok:.0} echo after)"),
            kib <= 16.0 && n >= 10000.0 && ok == n,
            "10,000 tunnels need 20,000+ descriptors in the worker; the hard RLIMIT_NOFILE here \
             is 20,000 (no CAP_SYS_RESOURCE): measured at the most that fits",
        ));
    }
    if let Some(v) = get("ordinary") {
        rows.push((
            "ordinary requests vs nginx without the module",
            ">= 0.99",
            format!("{v:.3}"),
            v >= 0.99,
            "run-to-run noise of wrk on 2 shared cores is about +-2%; rerun with --only ordinary",
        ));
    }
    if rows.is_empty() {
        return;
    }
    report.line("Targets (issues #4 and #9) against this run".into());
    report.table_head(&["figure", "target", "measured", "met"]);
    let mut limits = String::new();
    for (name, target, measured, met, limit) in &rows {
        report.row(&[
            name.to_string(),
            target.to_string(),
            measured.clone(),
            if *met { "yes" } else { "no" }.to_string(),
        ]);
        if !met && !limit.is_empty() {
            limits += &format!("- {name}: {limit}.\n");
        }
    }
    if !limits.is_empty() {
        report.text += &format!("\nWhat limits the figures not met:\n\n{limits}");
    }
}

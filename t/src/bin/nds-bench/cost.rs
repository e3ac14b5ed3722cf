//! The proxies' own cost, beside the throughput: CPU seconds per GiB moved (user +
//! system time of the proxy's processes, read from /proc around each transfer of the
//! throughput tables), against a minimal splice relay written for the benchmark as the
//! floor; and hijack set-up, sessions opened and closed per second by a raw client.
//!
//! On 2 shared cores a throughput ratio moves with the client's own CPU use; what the
//! proxy spends per byte does not, so CPU per GiB is the figure to optimise.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use nds_tests::free_port;

use crate::peers::{open, wait_port, Peers, Stream, Target};
use crate::report::{Report, Stat};

/// User + system CPU seconds of `pids` (whole thread groups) so far, with their
/// children: those that ended and were waited for (cutime, cstime) and those still
/// running (socat forks a process per connection, which ends some time after it).
/// A child moving from running to waited for keeps the sum continuous.
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    let children = children_of(pids);
    pids.iter()
        .map(|pid| stat_seconds(*pid))
        .chain(children.iter().map(|pid| stat_seconds(*pid)))
        .sum()
}

/// utime + stime of `pid` and of its waited-for children.
fn stat_seconds(pid: u32) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3; ppid 4;
    // utime, stime, cutime and cstime are fields 14 to 17.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15) + ticks(16) + ticks(17)) / hz
}

/// The running processes whose parent is one of `pids`.
fn children_of(pids: &[u32]) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            rest.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|ppid| pids.contains(&ppid))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The floor: a splice relay

/// Starts the floor relay in a process of its own (this binary, `--relay`): a byte
/// relay that splices each direction through a pipe, with nothing else to do.
pub fn start_relay(daemon: &Target) -> Option<(Child, u16)> {
    let port = free_port();
    let to = match daemon {
        Target::Unix(p) => format!("unix:{}", p.display()),
        Target::Tcp(port) => format!("tcp:{port}"),
    };
    let child = Command::new(std::env::current_exe().ok()?)
        .arg("--relay")
        .arg(port.to_string())
        .arg(to)
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    wait_port(port);
    Some((child, port))
}

/// `--relay PORT unix:PATH|tcp:PORT`: accepts on 127.0.0.1:PORT and relays each
/// connection to the daemon, one thread per direction.
pub fn relay_main(port: &str, to: &str) {
    let listener = TcpListener::bind(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
    for conn in listener.incoming() {
        let Ok(client) = conn else { continue };
        client.set_nodelay(true).ok();
        let daemon: OwnedFd = match to.split_once(':') {
            Some(("unix", path)) => match UnixStream::connect(path) {
                Ok(s) => s.into(),
                Err(_) => continue,
            },
            Some(("tcp", p)) => {
                match TcpStream::connect(("127.0.0.1", p.parse::<u16>().unwrap())) {
                    Ok(s) => {
                        s.set_nodelay(true).ok();
                        s.into()
                    }
                    Err(_) => continue,
                }
            }
            _ => panic!("--relay: {to}"),
        };
        let client: OwnedFd = client.into();
        let (c2, d2) = (client.try_clone().unwrap(), daemon.try_clone().unwrap());
        std::thread::spawn(move || splice_one_way(&client, &daemon));
        std::thread::spawn(move || splice_one_way(&d2, &c2));
    }
}

/// Moves `from` → pipe → `to` until EOF or an error, then half-closes `to`.
fn splice_one_way(from: &OwnedFd, to: &OwnedFd) {
    let mut fds = [-1i32; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    // SAFETY: pipe2 succeeded: two open descriptors nothing else owns.
    let (pr, pw) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on an open descriptor.
    unsafe { libc::fcntl(pw.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    let splice = |a: &OwnedFd, b: &OwnedFd, n: usize| {
        // SAFETY: splice between open descriptors, no offsets.
        unsafe {
            libc::splice(
                a.as_raw_fd(),
                core::ptr::null_mut(),
                b.as_raw_fd(),
                core::ptr::null_mut(),
                n,
                libc::SPLICE_F_MOVE,
            )
        }
    };
    loop {
        let n = splice(from, &pw, 1 << 20);
        if n <= 0 {
            break;
        }
        let mut left = n as usize;
        while left > 0 {
            let m = splice(&pr, to, left);
            if m <= 0 {
                return;
            }
            left -= m as usize;
        }
    }
    // SAFETY: shutdown on an open socket.
    unsafe { libc::shutdown(to.as_raw_fd(), libc::SHUT_WR) };
}

// ---------------------------------------------------------------------------------------
// CPU per GiB, from the throughput tables' transfers

/// Per path and direction, the CPU seconds per GiB of each round.
pub type CpuRounds = Vec<[Vec<f64>; 2]>;

/// The table of CPU per GiB for the paths of a throughput table (`names[0]` is the
/// direct connection, which has no proxy); targets: less than every peer, within 1.3x
/// of the floor.
pub fn cpu_table(report: &mut Report, at: &str, names: &[&str], cpu: CpuRounds) {
    report.line(format!(
        "Proxy CPU per GiB moved, daemon on {at}: user + system seconds of the proxy's processes (/proc) over the same transfers, median (min-max) of the rounds"
    ));
    report.table_head(&[
        "path",
        "download s/GiB",
        "upload s/GiB",
        "vs floor (down / up)",
    ]);
    let stats: Vec<Option<[Stat; 2]>> = cpu
        .into_iter()
        .map(|[d, u]| (!d.is_empty()).then(|| [Stat::of(d), Stat::of(u)]))
        .collect();
    let floor = names
        .iter()
        .position(|n| *n == FLOOR)
        .and_then(|i| stats[i].as_ref());
    let unix = at == "a unix socket";
    let key = |what: &str, dir: usize| -> &'static str {
        let k = format!(
            "cpu.{}.{what}.{}",
            if unix { "unix" } else { "tcp" },
            ["down", "up"][dir]
        );
        Box::leak(k.into_boxed_str())
    };
    for (i, name) in names.iter().enumerate() {
        let Some(s) = &stats[i] else {
            report.row(&[name.to_string(), "-".into(), "-".into(), "-".into()]);
            continue;
        };
        let vs = floor.map_or("-".into(), |f| {
            format!(
                "{:.2} / {:.2}",
                s[0].median / f[0].median,
                s[1].median / f[1].median
            )
        });
        let what = match *name {
            "nginx + module" => Some("module"),
            FLOOR => Some("floor"),
            "stock nginx (WebSocket recipe)" => Some("stock"),
            "HAProxy (docker-socket-proxy style)" => Some("haproxy"),
            "socat" => Some("socat"),
            _ => None,
        };
        if let Some(what) = what {
            for (dir, stat) in s.iter().enumerate() {
                report.figure(key(what, dir), stat.median);
            }
        }
        report.row(&[name.to_string(), show(&s[0]), show(&s[1]), vs]);
    }
}

fn show(s: &Stat) -> String {
    format!("{:.3} ({:.3}-{:.3})", s.median, s.min, s.max)
}

/// The floor's name in the tables.
pub const FLOOR: &str = "splice relay (the floor, written for the benchmark)";

// ---------------------------------------------------------------------------------------
// Hijack set-up

/// Sessions opened and closed per second through each path: a raw client opens a
/// hijacked session (`POST /down/0` with `Upgrade`: the `101`, then the daemon's close),
/// reads it to the end and closes, one after another; rounds interleaved across paths.
pub fn setup_table(report: &mut Report, peers: &Peers, sessions: usize, rounds: usize) {
    report.line(format!(
        "Hijack set-up: sessions opened and closed per second by one raw client, {rounds} rounds of {sessions} per path, interleaved; median (min-max)"
    ));
    report.table_head(&["path", "sessions/s", "ratio"]);
    let targets = peers.targets();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    for _ in 0..rounds {
        for (i, t) in targets.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..sessions {
                let (mut s, _) = open(&t.target, "/down/0");
                let mut rest = Vec::new();
                let _ = s.io().read_to_end(&mut rest);
                if let Stream::Tcp(tcp) = &s {
                    let _ = tcp.shutdown(Shutdown::Both);
                }
            }
            rates[i].push(sessions as f64 / start.elapsed().as_secs_f64());
        }
    }
    let stats: Vec<Stat> = rates.into_iter().map(Stat::of).collect();
    let base = stats[0].median;
    let unix = matches!(peers.daemon, Target::Unix(_));
    for (i, t) in targets.iter().enumerate() {
        let key = match (t.name, unix) {
            ("nginx + module", true) => Some("setup.unix.module"),
            ("nginx + module", false) => Some("setup.tcp.module"),
            ("stock nginx (WebSocket recipe)", true) => Some("setup.unix.stock"),
            ("stock nginx (WebSocket recipe)", false) => Some("setup.tcp.stock"),
            _ => None,
        };
        if let Some(key) = key {
            report.figure(key, stats[i].median / base);
        }
        report.row(&[
            t.name.to_string(),
            stats[i].show(),
            format!("{:.2}", stats[i].median / base),
        ]);
    }
}

//! Faults with the real dockerd and 100 sessions open: `docker exec -i <container> cat`
//! echo tunnels streaming both ways through nginx, some run by the real docker CLIs, the
//! rest by raw API clients. Then, one test each: a client killed with SIGKILL, a container
//! killed, the daemon restarted (a private dockerd, so the shared one is not disturbed).
//! Sessions not hit must return every byte (checksums); the hit ones must end within a
//! bound; new sessions must work at once; no worker may die; the error log is checked
//! line by line for each event.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nds_tests::cli::{self, direct, docker, Containers, Input};
use nds_tests::dockerd::PrivateDockerd;
use nds_tests::{image, pseudo_random, sha256_hex, unique, Cli, Nginx, NginxConf, Recipe};

/// Containers per test; each carries `PER_CONTAINER` sessions, `CLI_PER_CONTAINER` of
/// them real docker CLI processes, the rest raw API clients.
const CONTAINERS: usize = 4;
const PER_CONTAINER: usize = 25;
const CLI_PER_CONTAINER: usize = 4;
/// Each session writes `CHUNKS` chunks of `CHUNK` bytes: the first before the faults'
/// start signal, the others one every `PACE` after it (about 10 s of streaming: the
/// faults, 1 s in, and what they set off must happen while sessions still stream, on a
/// loaded machine too).
const CHUNK: usize = 8 << 10;
const CHUNKS: usize = 100;
const PACE: Duration = Duration::from_millis(100);
/// All sessions echoing their first chunk.
const READY_LIMIT: Duration = Duration::from_secs(60);
/// A session's whole life.
const SESSION_LIMIT: Duration = Duration::from_secs(100);
/// From the fault to the end of each session it hit.
const HIT_LIMIT: Duration = Duration::from_secs(15);
/// A new session right after a fault (it runs while the others still stream).
const FRESH_LIMIT: Duration = Duration::from_secs(10);

/// The tests of this file run one at a time: each opens 100 sessions on 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------
// Sessions

/// The start signal: sessions write their first chunk, report when it came back, and
/// stream the rest once the gate opens.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
    arrived: AtomicUsize,
}

impl Gate {
    fn wait_open(&self, limit: Duration) -> bool {
        let g = self.open.lock().unwrap();
        let (g, _) = self.cv.wait_timeout_while(g, limit, |o| !*o).unwrap();
        *g
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    /// Waits until `n` sessions arrived (first chunk echoed, or failed before).
    fn wait_arrived(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.arrived.load(Ordering::SeqCst) < n {
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

/// Counts a session as arrived exactly once: when its first chunk is back, or when it
/// ends before that (so that the driver never waits for a session that failed).
struct Arrival {
    gate: Option<Arc<Gate>>,
}

impl Arrival {
    fn arrive(&mut self) {
        if let Some(g) = self.gate.take() {
            g.arrived.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        self.arrive();
    }
}

#[derive(Clone)]
struct Spec {
    label: String,
    /// nginx's `host:port`.
    addr: String,
    container: String,
    /// Which container of the test (faults hit one group).
    group: usize,
    cli: Option<Cli>,
    seed: u64,
    /// Wait for the gate and pace the writes (false: a quick session after a fault).
    gated: bool,
}

impl Spec {
    fn payload(&self) -> Vec<u8> {
        let chunks = if self.gated { CHUNKS } else { 8 };
        pseudo_random(CHUNK * chunks, self.seed)
    }
}

/// How a session ended.
#[derive(Debug)]
struct Outcome {
    label: String,
    group: usize,
    exec_id: Option<String>,
    /// The echo is the payload, byte for byte, and the session ended cleanly.
    intact: bool,
    /// What came back is the start of the payload (nothing wrong, maybe something missing).
    prefix: bool,
    sent: usize,
    echoed: usize,
    /// When it ended; `None`: it did not end within `SESSION_LIMIT` (hung).
    ended: Option<Instant>,
    /// EOF, the error, or the CLI's exit code and stderr.
    how: String,
}

impl Outcome {
    fn brief(&self) -> String {
        format!(
            "{} (group {}): intact={} prefix={} sent={} echoed={} ended={} {}",
            self.label,
            self.group,
            self.intact,
            self.prefix,
            self.sent,
            self.echoed,
            self.ended.is_some(),
            self.how
        )
    }
}

/// Splits a multiplexed stream as it arrives: stdout kept, anything else counted.
#[derive(Default)]
struct Demux {
    pending: Vec<u8>,
    stdout: Vec<u8>,
    other: usize,
}

impl Demux {
    fn push(&mut self, data: &[u8]) -> Result<(), String> {
        self.pending.extend_from_slice(data);
        let mut at = 0;
        while self.pending.len() - at >= 8 {
            let h = &self.pending[at..at + 8];
            if h[0] > 2 || h[1..4] != [0, 0, 0] {
                return Err(format!("bad frame header {h:?}"));
            }
            let n = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
            if self.pending.len() - at - 8 < n {
                break;
            }
            let body = &self.pending[at + 8..at + 8 + n];
            if h[0] == 1 {
                self.stdout.extend_from_slice(body);
            } else {
                self.other += n;
            }
            at += 8 + n;
        }
        self.pending.drain(..at);
        Ok(())
    }
}

/// Writes the payload chunk by chunk: the first at once, the rest after the gate opens,
/// one every `PACE`. Returns the bytes written; stops at the first error.
fn write_paced(
    w: &mut impl Write,
    payload: &[u8],
    gated: bool,
    gate: &Gate,
    abort: &AtomicBool,
) -> usize {
    let mut sent = 0;
    for (i, chunk) in payload.chunks(CHUNK).enumerate() {
        if gated {
            if i == 1 && !gate.wait_open(SESSION_LIMIT) {
                return sent;
            }
            if i > 0 {
                thread::sleep(PACE);
            }
        }
        if abort.load(Ordering::SeqCst) || w.write_all(chunk).is_err() {
            return sent;
        }
        sent += chunk.len();
    }
    sent
}

/// A running session; `pid` is the docker CLI's; `abort` makes a raw client vanish (its
/// socket closed with `SO_LINGER` 0: the kernel sends RST, as for a process killed with
/// unread data).
struct Running {
    pid: Option<u32>,
    abort: Arc<AtomicBool>,
    handle: JoinHandle<Outcome>,
}

fn start(spec: Spec, gate: &Arc<Gate>) -> Running {
    let arrival = Arrival {
        gate: spec.gated.then(|| gate.clone()),
    };
    let gate = gate.clone();
    let abort = Arc::new(AtomicBool::new(false));
    let stop = abort.clone();
    match spec.cli.clone() {
        Some(cli) => {
            let child = cli::command(&cli, &format!("tcp://{}", spec.addr))
                .args(["exec", "-i", &spec.container, "cat"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn docker");
            let pid = child.id();
            Running {
                pid: Some(pid),
                abort,
                handle: thread::spawn(move || cli_session(spec, child, gate, arrival)),
            }
        }
        None => Running {
            pid: None,
            abort,
            handle: thread::spawn(move || raw_session(spec, gate, arrival, stop)),
        },
    }
}

fn finish(r: Running, label: &str) -> Outcome {
    r.handle
        .join()
        .unwrap_or_else(|e| panic!("session {label} panicked: {e:?}"))
}

fn cli_session(spec: Spec, mut child: Child, gate: Arc<Gate>, mut arrival: Arrival) -> Outcome {
    let payload = spec.payload();
    let t0 = Instant::now();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (gated, g, data) = (spec.gated, gate.clone(), payload.clone());
    let writer = thread::spawn(move || {
        let n = write_paced(&mut stdin, &data, gated, &g, &AtomicBool::new(false));
        drop(stdin);
        n
    });
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if got.len() >= CHUNK {
                arrival.arrive();
            }
        }
        got
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut ended = None;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            ended = Some(Instant::now());
            break Some(s);
        }
        if t0.elapsed() > SESSION_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let got = reader.join().unwrap();
    let sent = writer.join().unwrap();
    let stderr = err.join().unwrap();
    let code = status.and_then(|s| s.code());
    Outcome {
        intact: code == Some(0) && sha256_hex(&got) == sha256_hex(&payload),
        prefix: payload.starts_with(&got),
        label: spec.label,
        group: spec.group,
        exec_id: None,
        sent,
        echoed: got.len(),
        ended,
        how: format!(
            "exit {:?} {}, stderr {:?}",
            code,
            status.map(|s| s.to_string()).unwrap_or_default(),
            stderr.trim()
        ),
    }
}

fn raw_session(
    spec: Spec,
    gate: Arc<Gate>,
    mut arrival: Arrival,
    abort: Arc<AtomicBool>,
) -> Outcome {
    let t0 = Instant::now();
    let payload = spec.payload();
    let mut out = Outcome {
        label: spec.label.clone(),
        group: spec.group,
        exec_id: None,
        intact: false,
        prefix: true,
        sent: 0,
        echoed: 0,
        ended: None,
        how: String::new(),
    };
    let fail = |mut out: Outcome, how: String| {
        out.ended = Some(Instant::now());
        out.how = how;
        out
    };
    let body =
        r#"{"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Tty":false,"Cmd":["cat"]}"#;
    let id = match api(
        &spec.addr,
        "POST",
        &format!("/v1.41/containers/{}/exec", spec.container),
        body,
    ) {
        Ok((201, b)) => match json_id(&b) {
            Some(id) => id,
            None => return fail(out, format!("exec create answered {b:?}")),
        },
        Ok((s, b)) => return fail(out, format!("exec create: {s} {b}")),
        Err(e) => return fail(out, format!("exec create: {e}")),
    };
    out.exec_id = Some(id.clone());
    let mut conn = match TcpStream::connect(&spec.addr) {
        Ok(c) => c,
        Err(e) => return fail(out, format!("connect: {e}")),
    };
    let body = r#"{"Detach":false,"Tty":false}"#;
    let head = format!(
        "POST /v1.41/exec/{id}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n{body}",
        body.len()
    );
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    if let Err(e) = conn.write_all(head.as_bytes()) {
        return fail(out, format!("send start: {e}"));
    }
    // The response head, then the stream.
    let mut buf = vec![0u8; 65536];
    let mut got = Vec::new();
    let rest = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..i]).into_owned();
            if !head.starts_with("HTTP/1.1 101 ") {
                return fail(out, format!("start answered {head:?}"));
            }
            break got[i + 4..].to_vec();
        }
        if t0.elapsed() > SESSION_LIMIT {
            return fail(out, "no response head".into());
        }
        match conn.read(&mut buf) {
            Ok(0) => return fail(out, "closed before the response head".into()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if timed_out(&e) => {}
            Err(e) => return fail(out, format!("reading the head: {e}")),
        }
    };
    let mut w = conn.try_clone().unwrap();
    let (gated, g, data, stop) = (spec.gated, gate.clone(), payload.clone(), abort.clone());
    let writer = thread::spawn(move || {
        let n = write_paced(&mut w, &data, gated, &g, &stop);
        if !stop.load(Ordering::SeqCst) {
            let _ = w.shutdown(Shutdown::Write);
        }
        n
    });
    let mut demux = Demux::default();
    let mut how = demux.push(&rest).err();
    while how.is_none() {
        if demux.stdout.len() >= CHUNK {
            arrival.arrive();
        }
        if t0.elapsed() > SESSION_LIMIT {
            how = Some("hung".into());
            break;
        }
        if abort.load(Ordering::SeqCst) {
            nds_tests::raw::set_linger_zero(&conn);
            out.ended = Some(Instant::now());
            how = Some("aborted (RST)".into());
            break;
        }
        match conn.read(&mut buf) {
            Ok(0) => {
                out.ended = Some(Instant::now());
                how = Some("EOF".into());
            }
            Ok(n) => {
                if let Err(e) = demux.push(&buf[..n]) {
                    out.ended = Some(Instant::now());
                    how = Some(e);
                }
            }
            Err(e) if timed_out(&e) => {}
            Err(e) => {
                out.ended = Some(Instant::now());
                how = Some(format!("read: {e}"));
            }
        }
    }
    drop(conn);
    out.sent = writer.join().unwrap();
    out.echoed = demux.stdout.len();
    out.prefix = payload.starts_with(&demux.stdout);
    let how = how.unwrap();
    out.intact = how == "EOF"
        && demux.pending.is_empty()
        && demux.other == 0
        && sha256_hex(&demux.stdout) == sha256_hex(&payload);
    out.how = format!(
        "{how}{}{}",
        if demux.pending.is_empty() {
            String::new()
        } else {
            format!(", {} bytes of a partial frame", demux.pending.len())
        },
        if demux.other > 0 {
            format!(", {} bytes on stderr", demux.other)
        } else {
            String::new()
        }
    );
    out
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// One API request through nginx (`Connection: close`); returns status and body.
fn api(addr: &str, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&all);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no response head")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((status, if chunked { unchunk(body) } else { body.into() }))
}

fn unchunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// `{"Id":"..."}` → the id.
fn json_id(body: &str) -> Option<String> {
    let rest = body.split_once("\"Id\":\"")?.1;
    Some(rest.split_once('"')?.0.to_string())
}

/// `PER_CONTAINER` gated sessions in each container, the first `CLI_PER_CONTAINER` run by
/// the docker CLIs (in turn), the others raw; `addr(group)` is the nginx to go through.
fn specs(containers: &[String], addr: impl Fn(usize) -> String) -> Vec<Spec> {
    let clis = Cli::all();
    let mut v = Vec::new();
    for (group, c) in containers.iter().enumerate() {
        for i in 0..PER_CONTAINER {
            let n = v.len();
            let cli = (i < CLI_PER_CONTAINER).then(|| clis[n % clis.len()].clone());
            v.push(Spec {
                label: format!(
                    "{}{group}.{i}",
                    cli.as_ref().map(|c| c.name).unwrap_or("raw")
                ),
                addr: addr(group),
                container: c.clone(),
                group,
                cli,
                seed: 1000 + n as u64,
                gated: true,
            });
        }
    }
    v
}

/// A new session after a fault: both kinds, ungated; must be intact within `FRESH_LIMIT`.
fn fresh_sessions(addr: &str, container: &str, group: usize) -> Duration {
    let t0 = Instant::now();
    let gate = Arc::new(Gate::default());
    let runs: Vec<_> = [None, Some(Cli::setup())]
        .into_iter()
        .enumerate()
        .map(|(i, cli)| {
            let spec = Spec {
                label: format!("fresh-{}", cli.as_ref().map(|c| c.name).unwrap_or("raw")),
                addr: addr.to_string(),
                container: container.to_string(),
                group,
                cli,
                seed: 7 + i as u64,
                gated: false,
            };
            (spec.label.clone(), start(spec, &gate))
        })
        .collect();
    for (label, r) in runs {
        let o = finish(r, &label);
        assert!(o.intact, "a new session after the fault: {}", o.brief());
    }
    let took = t0.elapsed();
    assert!(took < FRESH_LIMIT, "new sessions took {took:?}");
    took
}

/// What a fault can pull on: a docker CLI's PID, a raw client's abort switch.
struct Lever {
    pid: Option<u32>,
    abort: Arc<AtomicBool>,
}

/// Opens every session, waits until all echo, opens the gate, lets them stream for a
/// second and calls `fault`, which returns when the fault happened.
fn run(specs: Vec<Spec>, fault: impl FnOnce(&[Lever]) -> Instant) -> (Vec<Outcome>, Instant) {
    let gate = Arc::new(Gate::default());
    let t0 = Instant::now();
    let n = specs.len();
    let runs: Vec<_> = specs
        .into_iter()
        .map(|s| (s.label.clone(), start(s, &gate)))
        .collect();
    assert!(
        gate.wait_arrived(n, READY_LIMIT),
        "only {} of {n} sessions echoed their first chunk within {READY_LIMIT:?}",
        gate.arrived.load(Ordering::SeqCst)
    );
    println!("{n} sessions streaming after {:?}", t0.elapsed());
    gate.open();
    thread::sleep(Duration::from_secs(1));
    if let Some(i) = runs.iter().position(|(_, r)| r.handle.is_finished()) {
        let (label, r) = runs.into_iter().nth(i).unwrap();
        panic!("ended before the fault: {}", finish(r, &label).brief());
    }
    let levers: Vec<_> = runs
        .iter()
        .map(|(_, r)| Lever {
            pid: r.pid,
            abort: r.abort.clone(),
        })
        .collect();
    let at = fault(&levers);
    let outcomes = runs.into_iter().map(|(l, r)| finish(r, &l)).collect();
    println!("all sessions ended {:?} after the start", t0.elapsed());
    (outcomes, at)
}

/// Sessions that should not have been touched: every one intact.
fn assert_intact<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>, log: &str) -> usize {
    let mut n = 0;
    let mut bad = Vec::new();
    for o in outcomes {
        n += 1;
        if !o.intact {
            bad.push(o.brief());
        }
    }
    assert!(
        bad.is_empty(),
        "sessions not hit but damaged:\n{bad:#?}\n{log}"
    );
    n
}

/// Sessions hit by the fault: each ended within `HIT_LIMIT` of it, what came back is the
/// start of what was sent, and a raw client saw a clean EOF. Returns the latest end.
fn assert_ended<'a>(
    outcomes: impl IntoIterator<Item = &'a Outcome>,
    at: Instant,
    log: &str,
) -> Duration {
    let mut latest = Duration::ZERO;
    for o in outcomes {
        let Some(t) = o.ended else {
            panic!("a session hit by the fault hung: {}\n{log}", o.brief());
        };
        let after = t.saturating_duration_since(at);
        assert!(
            after < HIT_LIMIT,
            "{} ended {after:?} after the fault\n{log}",
            o.brief()
        );
        assert!(o.prefix, "{}: the echo differs from the payload", o.brief());
        assert!(
            o.label.starts_with("cli") || o.how == "EOF",
            "{}: no clean end",
            o.brief()
        );
        latest = latest.max(after);
    }
    latest
}

/// The error log lines past `from` (a byte offset), without the lines every CLI leaves.
fn log_lines(nginx: &Nginx, from: usize) -> Vec<String> {
    let log = nginx.error_log();
    log.get(from..)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.contains("closed keepalive connection"))
        .map(str::to_string)
        .collect()
}

/// The number of finished hijacks in the access log (nginx logs a request when it ends).
fn tunnels_logged(nginx: &Nginx) -> usize {
    nginx
        .access_log()
        .lines()
        .filter(|l| l.contains("/exec/") && l.contains("/start 101 ds=upgrade"))
        .count()
}

/// Waits (bounded) until the access log shows `n` finished hijacks; returns how long.
fn wait_tunnels_logged(nginx: &Nginx, n: usize) -> Duration {
    let t0 = Instant::now();
    while tunnels_logged(nginx) < n {
        assert!(
            t0.elapsed() < HIT_LIMIT,
            "{} of {n} tunnels finished within {HIT_LIMIT:?}\n{}",
            tunnels_logged(nginx),
            nginx.error_log()
        );
        thread::sleep(Duration::from_millis(20));
    }
    t0.elapsed()
}

/// The exec id of the tunnel an error log line is about (nginx names the request).
fn tunnel_of(line: &str) -> Option<&str> {
    let rest = line.split_once("request: \"POST /v1.41/exec/")?.1;
    let (id, rest) = rest.split_once('/')?;
    rest.starts_with("start ").then_some(id)
}

/// What the error log said for one event: printed, then checked (see `tunnel_lines`).
fn check_event(what: &str, lines: &[String]) -> BTreeMap<String, String> {
    println!("error log for {what}: {} line(s)", lines.len());
    for l in lines {
        println!("    {l}");
    }
    tunnel_lines(what, lines)
}

/// Every line that names a tunnel is the module's one `info` line for it (nginx adds
/// none of its own), and no tunnel is named twice. Returns each named tunnel's line.
fn tunnel_lines(what: &str, lines: &[String]) -> BTreeMap<String, String> {
    let mut tunnels = BTreeMap::new();
    for l in lines {
        let Some(id) = tunnel_of(l) else { continue };
        assert!(
            l.contains(" [info] ") && l.contains("docker_stream: "),
            "{what}: not the module's info line about a tunnel: {l}"
        );
        let before = tunnels.insert(id.to_string(), l.clone());
        assert!(
            before.is_none(),
            "{what}: two lines for tunnel {id}:\n{before:?}\n{l}"
        );
    }
    tunnels
}

/// Over the whole run: one module line per finished tunnel (as many as the access log
/// has), and each raw session's line says how it ended (`end(outcome)`).
fn assert_one_line_per_tunnel(
    nginx: &Nginx,
    outcomes: &[Outcome],
    end: impl Fn(&Outcome) -> &'static str,
) {
    let named = tunnel_lines("the whole run", &log_lines(nginx, 0));
    assert_eq!(
        named.len(),
        tunnels_logged(nginx),
        "tunnels with a line in the error log vs tunnels in the access log"
    );
    for o in outcomes {
        let Some(id) = &o.exec_id else { continue };
        let line = named
            .get(id)
            .unwrap_or_else(|| panic!("no error-log line for {}", o.brief()));
        let want = end(o);
        assert!(
            line.contains(want),
            "{}: want {want:?} in {line}",
            o.brief()
        );
    }
    println!(
        "error log: one line for each of the {} tunnels, as the access log counts them",
        named.len()
    );
}

// ---------------------------------------------------------------------------------------
// Containers and a private dockerd

/// `n` containers running `cat`; `restart`: `--restart always` (they come back with
/// their daemon).
fn cat_containers(n: usize, restart: bool, docker: impl Fn(&[&str]) -> String) -> Vec<String> {
    let image = image();
    (0..n)
        .map(|_| {
            let name = unique("nds-fd");
            let mut args = vec!["run", "-d", "-i", "--network", "none", "--name", &name];
            if restart {
                // PID 1 ignores SIGTERM: a 1 s stop timeout keeps the shutdown short.
                args.extend(["--restart", "always", "--stop-timeout", "1"]);
            }
            args.extend([image.as_str(), "cat"]);
            docker(&args)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The tests

/// A fault's result: the sessions `is_hit` picks ended within `HIT_LIMIT` of `at` (two
/// are printed), all the others are intact, and nginx logged every tunnel (the sessions
/// and the two new ones). Returns (hit, latest end of a hit one, intact).
fn check_outcomes(
    nginx: &Nginx,
    outcomes: &[Outcome],
    at: Instant,
    is_hit: impl Fn(&Outcome) -> bool,
) -> (usize, Duration, usize) {
    let log = nginx.error_log();
    let (hit, rest): (Vec<_>, Vec<_>) = outcomes.iter().partition(|o| is_hit(o));
    for o in &hit[CLI_PER_CONTAINER - 1..=CLI_PER_CONTAINER] {
        println!("hit, e.g.: {}", o.brief());
    }
    let latest = assert_ended(hit.iter().copied(), at, &log);
    let n = assert_intact(rest, &log);
    wait_tunnels_logged(nginx, outcomes.len() + 2);
    (hit.len(), latest, n)
}

/// nginx (the module, nginx defaults) in front of the shared daemon, and `CONTAINERS`
/// `cat` containers on it (removed on drop).
fn on_shared_daemon() -> (Nginx, Vec<String>, Containers) {
    let nginx = Nginx::start(&NginxConf::docker(true, Recipe::Defaults));
    let mut guard = Containers(vec![]);
    let ids = cat_containers(CONTAINERS, false, direct);
    guard.0.extend(ids.iter().cloned());
    (nginx, ids, guard)
}

/// The same workers as before the fault, and nothing at `alert` or worse in the log.
fn assert_workers_alive(nginx: &Nginx, before: &[i32]) {
    assert_eq!(
        nginx.worker_pids(),
        before,
        "a worker died\n{}",
        nginx.error_log()
    );
    nginx.assert_healthy();
}

/// `nginx -s reload` (SIGHUP), then a binary upgrade (USR2, then QUIT to the old master)
/// while 100 real sessions stream: every one finishes byte-exact on the old workers, new
/// sessions work at once on the new ones, one log line per tunnel.
#[test]
fn reload_and_binary_upgrade_mid_stream() {
    let _serial = serial();
    let mut conf = NginxConf::docker(true, Recipe::Defaults);
    // nginx refuses USR2 while the process that started it is its parent.
    conf.daemon = true;
    let nginx = Nginx::start(&conf);
    let mut guard = Containers(vec![]);
    let ids = cat_containers(CONTAINERS, false, direct);
    guard.0.extend(ids.iter().cloned());
    let specs = specs(&ids, |_| nginx.addr());
    let old = nginx.master_pid();
    let signal = |sig| {
        // SAFETY: a signal to the nginx master this test started.
        assert_eq!(unsafe { libc::kill(old, sig) }, 0);
    };
    let mut fresh = Duration::ZERO;
    let (outcomes, _) = run(specs, |_| {
        let at = Instant::now();
        signal(libc::SIGHUP);
        thread::sleep(Duration::from_millis(300));
        signal(libc::SIGUSR2);
        let t0 = Instant::now();
        while nginx.master_pid() == old {
            assert!(
                t0.elapsed() < HIT_LIMIT,
                "no new master:\n{}",
                nginx.error_log()
            );
            thread::sleep(Duration::from_millis(20));
        }
        thread::sleep(Duration::from_millis(300));
        // The old master shuts down gracefully: its workers finish their tunnels.
        signal(libc::SIGQUIT);
        fresh = fresh_sessions(&nginx.addr(), &ids[0], 0);
        at
    });
    let log = nginx.error_log();
    assert!(log.contains("reconfiguring"), "{log}");
    let n = assert_intact(&outcomes, &log);
    wait_tunnels_logged(&nginx, outcomes.len() + 2);
    println!(
        "{n} sessions intact across a reload and a binary upgrade ({} KiB each way each); \
         new sessions on the new master in {fresh:?}",
        CHUNK * CHUNKS / 1024
    );
    assert_one_line_per_tunnel(&nginx, &outcomes, |_| {
        "stream closed by the daemon after the client's end of input"
    });
    nginx.assert_healthy();
}

/// A docker CLI killed with SIGKILL, then a raw client vanishing (RST), one after the
/// other while 100 sessions stream.
#[test]
fn client_killed_mid_stream() {
    let _serial = serial();
    let (nginx, ids, _containers) = on_shared_daemon();
    let specs = specs(&ids, |_| nginx.addr());
    let cli_victim = specs.iter().position(|s| s.cli.is_some()).unwrap();
    let raw_victim = specs.iter().position(|s| s.cli.is_none()).unwrap();
    let workers = nginx.worker_pids();
    let (mut killed_log, mut reset_log) = (vec![], vec![]);
    let mut fresh = Duration::ZERO;
    let (outcomes, _) = run(specs, |levers| {
        let mark = nginx.error_log().len();
        let pid = levers[cli_victim].pid.unwrap();
        // SAFETY: a signal to a docker CLI process this test started.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
        let at = Instant::now();
        let took = wait_tunnels_logged(&nginx, 1);
        println!("the killed CLI's tunnel was over and logged {took:?} after SIGKILL");
        thread::sleep(Duration::from_millis(300));
        killed_log = log_lines(&nginx, mark);

        let mark = nginx.error_log().len();
        levers[raw_victim].abort.store(true, Ordering::SeqCst);
        let took = wait_tunnels_logged(&nginx, 2);
        println!("the vanished client's tunnel was over and logged {took:?} after its RST");
        thread::sleep(Duration::from_millis(300));
        reset_log = log_lines(&nginx, mark);

        fresh = fresh_sessions(&nginx.addr(), &ids[1], 1);
        at
    });
    let log = nginx.error_log();
    for v in [cli_victim, raw_victim] {
        println!("victim: {}", outcomes[v].brief());
    }
    assert!(outcomes[cli_victim].how.contains("signal: 9"));
    assert!(outcomes[cli_victim].prefix && outcomes[raw_victim].prefix);
    let n = assert_intact(
        outcomes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != cli_victim && *i != raw_victim)
            .map(|(_, o)| o),
        &log,
    );
    wait_tunnels_logged(&nginx, outcomes.len() + 2);
    println!(
        "{n} other sessions intact ({} KiB each way each); new sessions in {fresh:?}",
        CHUNK * CHUNKS / 1024
    );
    // SIGKILL closes the CLI's socket with a FIN when nothing is left unread: nginx sees
    // a half-close, passes it on, `cat` ends and the daemon closes: a normal end, which
    // the module's line tells apart by the client's end of input coming first. A CLI
    // slowed by a loaded machine may leave echoed bytes unread: the kernel then resets
    // the connection, and the line is the reset's. Either way one line, and no other.
    let killed = check_event("SIGKILL of a docker CLI", &killed_log);
    assert!(
        killed.len() == 1
            && killed.values().all(|l| {
                l.contains("stream closed by the daemon after the client's end of input")
                    || l.contains("docker_stream: client connection failed")
            }),
        "{killed_log:#?}"
    );
    // A reset: the module's one line, and no lingering close after it (nginx's own
    // `shutdown() failed (107: ...)` line once followed).
    let reset = check_event("a raw client vanishing (RST)", &reset_log);
    let id = outcomes[raw_victim].exec_id.as_deref().unwrap();
    assert!(
        reset.len() == 1 && reset[id].contains("docker_stream: client connection failed"),
        "{reset_log:#?}"
    );
    assert!(
        !reset_log.iter().any(|l| l.contains("shutdown() failed")),
        "{reset_log:#?}"
    );
    assert_one_line_per_tunnel(&nginx, &outcomes, |o| {
        if o.exec_id.as_deref() == Some(id) {
            "client connection failed"
        } else {
            "stream closed by the daemon after the client's end of input"
        }
    });
    assert_workers_alive(&nginx, &workers);
}

/// `docker kill` (through nginx) of one of 4 containers while 100 sessions stream.
#[test]
fn container_killed_mid_stream() {
    let _serial = serial();
    let (nginx, ids, _containers) = on_shared_daemon();
    let specs = specs(&ids, |_| nginx.addr());
    let workers = nginx.worker_pids();
    let victim = CONTAINERS - 1;
    let mut kill_log = vec![];
    let mut fresh = Duration::ZERO;
    let (outcomes, at) = run(specs, |_| {
        let mark = nginx.error_log().len();
        let at = Instant::now();
        let out = docker(
            &Cli::setup(),
            &nginx.host(),
            &["kill", &ids[victim]],
            Input::None,
            Duration::from_secs(30),
        );
        assert!(out.ok(), "docker kill: {}", out.brief());
        println!("docker kill took {:?}", at.elapsed());
        fresh = fresh_sessions(&nginx.addr(), &ids[0], 0);
        // nginx logs a request when its connection is closed: for a client that is still
        // sending, after nginx's lingering close, i.e. once the client stops.
        wait_tunnels_logged(&nginx, PER_CONTAINER + 2);
        thread::sleep(Duration::from_millis(300));
        kill_log = log_lines(&nginx, mark);
        at
    });
    let (hit, latest, n) = check_outcomes(&nginx, &outcomes, at, |o| o.group == victim);
    println!(
        "the {hit} sessions of the killed container ended within {latest:?} of the kill; \
         {n} other sessions intact ({} KiB each way each); new sessions in {fresh:?}",
        CHUNK * CHUNKS / 1024
    );
    // For nginx the daemon closed the streams: the killed container's sessions end with
    // the daemon closing while their clients were still sending.
    let killed = check_event("docker kill of a container", &kill_log);
    let cut = killed
        .values()
        .filter(|l| l.contains("stream closed by the daemon;"))
        .count();
    assert_eq!(cut, hit, "lines for the killed container's sessions");
    assert_one_line_per_tunnel(&nginx, &outcomes, |o| {
        if o.group == victim {
            "stream closed by the daemon;"
        } else {
            "stream closed by the daemon after the client's end of input"
        }
    });
    assert_workers_alive(&nginx, &workers);
}

/// A private dockerd restarted (SIGTERM, then started again with the same roots) while 50
/// sessions stream through it and 50 more through the same nginx worker to the shared
/// daemon. Without `--live-restore` (as here) dockerd stops the containers when it
/// stops, which ends their exec sessions; `--restart always` brings them back with the
/// daemon. (With `--live-restore` the containers would stay, but the sessions would end
/// all the same: the hijacked connections are the daemon's.)
#[test]
fn daemon_restarted_mid_stream() {
    let _serial = serial();
    let mut daemon = PrivateDockerd::start();
    daemon.load_test_image();
    let private = cat_containers(CONTAINERS / 2, true, |a| daemon.docker(a));
    let mut guard = Containers(vec![]);
    let shared = cat_containers(CONTAINERS / 2, false, direct);
    guard.0.extend(shared.iter().cloned());

    let mut conf = NginxConf::new(
        true,
        Recipe::Defaults,
        &format!("unix:{}", daemon.sock().display()),
    );
    let port2 = nds_tests::free_port();
    conf.http = format!(
        "server {{ listen 127.0.0.1:{port2}; location / {{ proxy_pass http://unix:{}; }} }}",
        nds_tests::docker_sock().display()
    );
    let nginx = Nginx::start(&conf);
    let addr2 = format!("127.0.0.1:{port2}");
    let ids: Vec<String> = private.iter().chain(&shared).cloned().collect();
    let specs = specs(&ids, |g| {
        if g < private.len() {
            nginx.addr()
        } else {
            addr2.clone()
        }
    });
    let workers = nginx.worker_pids();
    let (mut stop_log, mut down_log, mut up_log) = (vec![], vec![], vec![]);
    let mut fresh = Duration::ZERO;
    let (outcomes, at) = run(specs, |_| {
        let mark = nginx.error_log().len();
        let at = Instant::now();
        let down = daemon
            .stop(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("dockerd did not stop:\n{}", daemon.log_tail()));
        println!("dockerd stopped in {down:?}");
        stop_log = log_lines(&nginx, mark);

        // While it is down: an answer at once.
        let mark = nginx.error_log().len();
        let t0 = Instant::now();
        let r = api(&nginx.addr(), "GET", "/_ping", "");
        let took = t0.elapsed();
        assert!(matches!(r, Ok((502, _))), "{r:?}");
        println!("_ping while the daemon is down: 502 in {took:?}");
        thread::sleep(Duration::from_millis(100));
        down_log = log_lines(&nginx, mark);

        let mark = nginx.error_log().len();
        let up = daemon.launch();
        println!("dockerd answers again {up:?} after its start");
        fresh = fresh_sessions(&nginx.addr(), &private[0], 0);
        up_log = log_lines(&nginx, mark);
        at
    });
    let (hit, latest, n) = check_outcomes(&nginx, &outcomes, at, |o| o.group < private.len());
    println!(
        "the {hit} sessions through the restarted daemon ended within {latest:?} of \
         SIGTERM; {n} sessions to the other daemon intact ({} KiB each way each); \
         new sessions after the restart in {fresh:?}",
        CHUNK * CHUNKS / 1024
    );
    check_event("dockerd stopping (SIGTERM)", &stop_log);
    // The docker CLIs' requests after their streams ended (`GET /exec/{id}/json`) found
    // no daemon: nginx's own line for each, as for any request while it is down. Every
    // line is about a request (none about the worker).
    for l in &stop_log {
        assert!(l.contains(", request: \""), "unexpected: {l}");
    }
    // A CLI slowed by a loaded machine may send its follow-up (`GET /exec/{id}/json`)
    // after the stop was logged: its line may fall into the windows below; not counted.
    let follow_up = |l: &String| l.contains("/exec/") && l.contains("/json HTTP/1.1\"");
    down_log.retain(|l| !follow_up(l));
    up_log.retain(|l| !follow_up(l));
    check_event("a request while dockerd is down", &down_log);
    assert!(
        down_log.len() == 1 && down_log[0].contains("connect() to unix:"),
        "{down_log:#?}"
    );
    // The new sessions' own lines (a normal end), nothing else.
    let fresh_lines = check_event("new sessions after the restart", &up_log);
    assert_eq!(fresh_lines.len(), up_log.len(), "{up_log:#?}");
    assert_one_line_per_tunnel(&nginx, &outcomes, |o| {
        if o.group < private.len() {
            "stream closed by the daemon;"
        } else {
            "stream closed by the daemon after the client's end of input"
        }
    });
    assert_workers_alive(&nginx, &workers);
}

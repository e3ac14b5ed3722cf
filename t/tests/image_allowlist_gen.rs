//! The image's allow-list against a reference model (nds_tests::allowlist), with a few
//! thousand generated request targets per configuration (issue #5: fuzzing the image's
//! config/allow-list code).
//!
//! Each configuration starts one container from the image in front of a fake daemon: a
//! unix socket in a temporary directory bind-mounted into the container (SOCKET_PATH),
//! which records every request line and answers 404. Every generated request goes to
//! the container over keep-alive connections on 127.0.0.1, and its outcome must be the
//! model's:
//! - denied: 403 with the model's JSON message, and nothing reached the daemon;
//! - allowed: the fake daemon's 404, and the daemon got exactly one request, with the
//!   same method, the model's normalized path (re-escaped by nginx: compared decoded)
//!   and the query string as sent;
//! - refused by nginx itself (400, 405): that status, and nothing reached the daemon.
//!
//! `NDS_ALLOWLIST_SEED` (decimal or 0x-hex) and `NDS_ALLOWLIST_REQUESTS` (per
//! configuration) replay or widen a run.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{AuthService, Proxy};
use nds_tests::allowlist::{
    percent_decode, random_env, requests, AllowList, Grants, Request, Rng, Tenant, Verdict,
};
use nds_tests::fake::{self, FakeDaemon};
use nds_tests::raw::Conn;

const DEFAULT_SEED: u64 = 0x4e44_5305;
const DEFAULT_REQUESTS: usize = 4000;
/// Where the fake daemon's directory is mounted in the container.
const MOUNT: &str = "/run/nds-fake";
const FAKE_BODY: &str = "{\"message\":\"page not found (nds fake daemon)\"}\n";

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("{name}={v}: {e}"))
        }
        Err(_) => default,
    }
}

/// A fake daemon that records every request line and answers 404, on a socket the
/// container's workers (www-data, with the socket's group) can reach.
struct Upstream {
    daemon: FakeDaemon,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    fn start() -> Upstream {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let daemon = FakeDaemon::start(move |head, mut r| {
            log.lock().unwrap().push(head.request_line.clone());
            let head_only = head.request_line.starts_with("HEAD ");
            let resp = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
                 X-Nds-Fake: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                FAKE_BODY.len(),
                if head_only { "" } else { FAKE_BODY }
            );
            let _ = fake::write_all(&mut r, resp.as_bytes());
        });
        let perm = |p: &std::path::Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        perm(daemon.dir.path(), 0o755);
        perm(&daemon.path, 0o666);
        Upstream { daemon, seen }
    }

    fn seen(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn since(&self, from: usize) -> Vec<String> {
        self.seen.lock().unwrap()[from..].to_vec()
    }
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A keep-alive client: reconnects when the server closes.
struct Client {
    addr: String,
    conn: Option<Conn>,
}

impl Client {
    /// `req`, with `headers` (whole lines) after Host.
    fn send(&mut self, req: &Request, headers: &str) -> Result<Answer, String> {
        if self.conn.is_none() {
            let tcp = TcpStream::connect(&self.addr).map_err(|e| format!("connect: {e}"))?;
            self.conn = Some(Conn::Tcp(tcp));
        }
        let conn = self.conn.as_mut().unwrap();
        conn.set_timeout(Duration::from_secs(10));
        let head = format!(
            "{} {} HTTP/1.1\r\nHost: docker\r\n{headers}\r\n",
            req.method, req.target
        );
        let answer = conn
            .write_all(head.as_bytes())
            .map_err(|e| format!("send: {e}"))
            .and_then(|()| read_answer(conn, req.method == "HEAD"));
        let close = answer.as_ref().map_or(true, |a| {
            a.header("Connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        });
        if close {
            self.conn = None;
        }
        answer
    }
}

fn read_more(conn: &mut Conn, buf: &mut Vec<u8>) -> Result<usize, String> {
    let mut chunk = [0u8; 8192];
    let n = conn.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// One response: its head, and its body by Content-Length, chunked or up to EOF.
fn read_answer(conn: &mut Conn, head_only: bool) -> Result<Answer, String> {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if read_more(conn, &mut buf)? == 0 || buf.len() > 65536 {
            return Err(format!(
                "no response head: {:?}",
                String::from_utf8_lossy(&buf)
            ));
        }
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {text:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut answer = Answer {
        status,
        headers,
        body: buf[end + 4..].to_vec(),
    };
    if head_only || status == 204 || status == 304 {
        return Ok(answer);
    }
    if let Some(len) = answer.header("Content-Length") {
        let len: usize = len.parse().map_err(|_| format!("Content-Length {len}"))?;
        while answer.body.len() < len {
            if read_more(conn, &mut answer.body)? == 0 {
                return Err("EOF inside the body".into());
            }
        }
    } else if answer
        .header("Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        while !answer.body.ends_with(b"0\r\n\r\n") {
            if read_more(conn, &mut answer.body)? == 0 {
                return Err("EOF inside a chunked body".into());
            }
        }
    } else {
        while read_more(conn, &mut answer.body)? > 0 {}
    }
    Ok(answer)
}

/// Why `answer` (and what the daemon saw) is not the model's `verdict`; None if it is.
fn mismatch(
    req: &Request,
    verdict: &Verdict,
    answer: &Answer,
    daemon: &[String],
) -> Option<String> {
    let head = req.method == "HEAD";
    let body = String::from_utf8_lossy(&answer.body);
    match verdict {
        Verdict::Rejected(status) => {
            if answer.status != *status {
                return Some(format!("status {}, want {status}", answer.status));
            }
        }
        Verdict::Denied(_) | Verdict::Refused(_) => {
            let want = verdict.body().unwrap();
            let ctype = answer.header("Content-Type").unwrap_or_default();
            let length = answer.header("Content-Length").unwrap_or_default();
            if answer.status != 403 {
                return Some(format!(
                    "status {} {body:?}, want 403 {want:?}",
                    answer.status
                ));
            }
            if ctype != "application/json"
                || length != want.len().to_string()
                || (!head && body != want)
            {
                return Some(format!("403 {ctype} {length} {body:?}, want {want:?}"));
            }
        }
        Verdict::Allowed { path, args } => {
            if answer.status != 404
                || answer.header("X-Nds-Fake") != Some("1")
                || (!head && body != FAKE_BODY)
            {
                return Some(format!(
                    "status {} {body:?}, want the daemon's 404",
                    answer.status
                ));
            }
            let [line] = daemon else {
                return Some(format!("the daemon saw {daemon:?}, want one request"));
            };
            let mut parts = line.splitn(3, ' ');
            let (method, target, version) = (parts.next(), parts.next(), parts.next());
            let target = target.unwrap_or_default();
            let (got_path, got_args) = target.split_once('?').unwrap_or((target, ""));
            let ok = method == Some(req.method.as_str())
                && version == Some("HTTP/1.1")
                && percent_decode(got_path.as_bytes()).as_ref() == Some(path)
                && got_args.as_bytes() == args.as_slice();
            if !ok {
                return Some(format!(
                    "the daemon got {line:?}, want path {:?} args {:?}",
                    String::from_utf8_lossy(path),
                    String::from_utf8_lossy(args)
                ));
            }
            return None;
        }
    }
    if !daemon.is_empty() {
        return Some(format!("reached the daemon: {daemon:?}"));
    }
    None
}

#[derive(Default)]
struct Tally {
    allowed: usize,
    denied: usize,
    rejected: usize,
    failures: Vec<String>,
}

/// Sends `n` requests generated from `seed` to a container with `env`, and compares
/// every outcome with the model. `base` is the run's seed (NDS_ALLOWLIST_SEED). With
/// `tenants`, the container is a gateway of tenants on its own daemon (`-`), named by an
/// authentication service; each request comes from one of them in turn, or from a
/// client in no tenant.
fn run_config(
    list: &AllowList,
    name: &str,
    env: &[(String, String)],
    tenants: &[Tenant],
    (base, seed): (u64, u64),
    n: usize,
) -> Tally {
    let started = Instant::now();
    let grants = Grants::from_env(list, env);
    let upstream = Upstream::start();
    let mount = format!("{}:{MOUNT}:ro", upstream.daemon.dir.path().display());
    let socket = format!(
        "{MOUNT}/{}",
        upstream.daemon.path.file_name().unwrap().to_str().unwrap()
    );
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.push(("SOCKET_PATH", &socket));
    let auth = AuthService::start();
    let auth_url = auth.url();
    let dir = tempfile::tempdir().unwrap();
    let tenants_mount = format!("{}:/tenants:ro", dir.path().display());
    let mut args = vec!["-v", mount.as_str()];
    if !tenants.is_empty() {
        let lines: Vec<String> = tenants.iter().map(Tenant::line).collect();
        std::fs::write(dir.path().join("tenants.conf"), lines.join("\n") + "\n").unwrap();
        pairs.extend([
            ("TENANTS", "/tenants/tenants.conf"),
            ("AUTH_URL", &auth_url),
        ]);
        args.extend(["-v", &tenants_mount]);
    }
    let proxy = Proxy::start_bare(&pairs, &args);
    let mut client = Client {
        addr: proxy.addr(),
        conn: None,
    };
    let mut tally = Tally::default();
    let mut env_text: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env_text.extend(tenants.iter().map(|t| format!("[{}]", t.line())));
    for (i, req) in requests(seed, n).iter().enumerate() {
        // Tenants in turn, then a client in no tenant.
        let (tenant, headers) = if tenants.is_empty() {
            (None, String::new())
        } else {
            match tenants.get(i % (tenants.len() + 1)) {
                Some(t) => (
                    Some(Some(t)),
                    format!("X-Auth-Token: tenant-{}\r\n", t.name),
                ),
                None => (Some(None), "X-Auth-Token: tenant-nobody\r\n".to_string()),
            }
        };
        let verdict = list.verdict_as(&grants, tenant, &req.method, &req.target);
        match verdict {
            Verdict::Allowed { .. } => tally.allowed += 1,
            Verdict::Denied(_) | Verdict::Refused(_) => tally.denied += 1,
            Verdict::Rejected(_) => tally.rejected += 1,
        }
        let before = upstream.seen();
        let problem = match client.send(req, &headers) {
            Ok(answer) => mismatch(req, &verdict, &answer, &upstream.since(before)),
            Err(e) => Some(e),
        };
        if let Some(p) = problem {
            tally.failures.push(format!(
                "[{name}: {}] NDS_ALLOWLIST_SEED={base:#x}, request #{i} of seed {seed:#x}: {} {} {}\n    model: {verdict:?}\n    {p}",
                env_text.join(" "),
                req.method,
                req.target,
                headers.trim_end(),
            ));
        }
    }
    assert!(
        proxy.running(),
        "[{name}] the proxy died:\n{}",
        proxy.logs().brief()
    );
    println!(
        "  {name:12} {:70} {n} requests: {} allowed, {} denied, {} refused by nginx (400, 405), {} mismatches ({:.1?})",
        env_text.join(" "),
        tally.allowed,
        tally.denied,
        tally.rejected,
        tally.failures.len(),
        started.elapsed()
    );
    tally
}

/// Generated request targets against the model, under the defaults, a few fixed grants
/// and a few random ones.
#[test]
fn image_allow_list_generated() {
    let seed = env_number("NDS_ALLOWLIST_SEED", DEFAULT_SEED);
    let n = env_number("NDS_ALLOWLIST_REQUESTS", DEFAULT_REQUESTS as u64) as usize;
    let list = AllowList::load();
    let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mut configs = vec![
        ("defaults".to_string(), owned(&[])),
        ("containers".to_string(), owned(&[("CONTAINERS", "1")])),
        (
            "run+exec".to_string(),
            owned(&[
                ("CONTAINERS", "1"),
                ("ALLOW_EXEC", "1"),
                ("ALLOW_ATTACH", "1"),
                ("POST", "1"),
                ("DELETE", "1"),
            ]),
        ),
        (
            "start-only".to_string(),
            owned(&[("ALLOW_START", "1"), ("POST", "1")]),
        ),
    ];
    let mut rng = Rng::new(seed ^ 0xe5e5);
    for k in 0..6 {
        configs.push((format!("random-{k}"), random_env(&list, &mut rng)));
    }
    println!("seed {seed:#x}, {n} requests per configuration");
    let started = Instant::now();
    let mut failures = Vec::new();
    for (k, (name, env)) in configs.iter().enumerate() {
        let tally = run_config(
            &list,
            name,
            env,
            &[],
            (seed, seed.wrapping_add(k as u64)),
            n,
        );
        failures.extend(tally.failures);
    }
    // Per-client switches: tenants on the proxy's daemon, each with its own.
    let env = owned(&[
        ("POST", "1"),
        ("DELETE", "1"),
        ("PUT", "1"),
        ("CONTAINERS", "1"),
    ]);
    let tenants = [
        Tenant::new(
            &list,
            &env,
            "ci",
            &[
                ("ALLOW_EXEC", "1"),
                ("IMAGES", "1"),
                ("ALLOW_PRIVILEGED", "1"),
                ("PUT", "0"),
            ],
        ),
        Tenant::new(
            &list,
            &env,
            "reader",
            &[("POST", "0"), ("DELETE", "0"), ("ALLOW_LOGS", "1")],
        ),
        Tenant::new(&list, &env, "plain", &[]),
    ];
    let k = configs.len() as u64;
    let tally = run_config(
        &list,
        "tenants",
        &env,
        &tenants,
        (seed, seed.wrapping_add(k)),
        n,
    );
    failures.extend(tally.failures);
    println!(
        "{} configurations, {} requests, {} mismatches in {:.1?}",
        configs.len() + 1,
        (configs.len() + 1) * n,
        failures.len(),
        started.elapsed()
    );
    for f in failures.iter().take(60) {
        println!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} mismatches with the model (the first 60 above)",
        failures.len()
    );
}

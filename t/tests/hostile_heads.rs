//! Randomized hostile upstream heads (deterministic seeds): status lines, header counts
//! and sizes up to and past nginx's buffer, Content-Type spellings, framing headers, and
//! closes at every point. nginx must answer or close within its timeouts, never crash,
//! and a switched tunnel must carry bytes intact.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use nds_tests::fake::{write_all, FakeDaemon};
use nds_tests::raw::Conn;
use nds_tests::{Nginx, NginxConf, Recipe};

const CASES: u64 = 120;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len() as u64) as usize]
    }
}

/// The head (and whether the daemon then echoes) for case `n`.
fn hostile_head(n: u64) -> (Vec<u8>, Option<usize>, bool) {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15 ^ (n + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let status = match r.below(8) {
        0 => "HTTP/1.1 200 OK".to_string(),
        1 => "HTTP/1.1 101 UPGRADED".to_string(),
        2 => format!("HTTP/1.1 {} X", 100 + r.below(500)),
        3 => format!("HTTP/1.0 200 {}", "R".repeat(r.below(3000) as usize)),
        4 => "HTTP/1.1 2000 OK".to_string(),
        5 => "HTTP/9.9 200 OK".to_string(),
        6 => "\x00\x7fHTTP".to_string(),
        _ => format!("HTTP/1.1 {} OK", 200 + r.below(7)),
    };
    let mut head = status + "\r\n";
    let ct = r.pick(&[
        "application/vnd.docker.raw-stream",
        "application/vnd.docker.multiplexed-stream",
        "APPLICATION/VND.DOCKER.RAW-STREAM; x=y",
        "application/vnd.docker.raw-stream\x01",
        "application/json",
        "",
        "application/vnd.docker.raw-stream;;;;;;",
    ]);
    if r.below(5) != 0 {
        head += &format!("Content-Type: {ct}\r\n");
    }
    for i in 0..r.below(60) {
        let len = r.below(200) as usize;
        head += &format!("X-Hostile-{i}: {}\r\n", "v".repeat(len));
    }
    match r.below(6) {
        0 => head += "Content-Length: 5\r\n",
        1 => head += "Transfer-Encoding: chunked\r\n",
        2 => head += "Content-Length: -1\r\n",
        3 => head += "Transfer-Encoding: gzip, chunked\r\n",
        _ => {}
    }
    if r.below(10) == 0 {
        head += &format!("X-Big: {}\r\n", "b".repeat(9000));
    }
    if r.below(4) == 0 {
        head += "Connection: Upgrade\r\nUpgrade: tcp\r\n";
    }
    head += "\r\n";
    let bytes = head.into_bytes();
    // Sometimes the daemon closes part-way through its head.
    let cut = (r.below(4) == 0).then(|| r.below(bytes.len() as u64) as usize);
    let upgrade = r.below(2) == 0;
    (bytes, cut, upgrade)
}

#[test]
fn hostile_heads_never_crash_or_hang() {
    let fake = FakeDaemon::start(|h, mut r| {
        let n: u64 = h
            .request_line
            .split('/')
            .nth(2)
            .and_then(|v| v.split(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (head, cut, _) = hostile_head(n);
        let end = cut.unwrap_or(head.len());
        if write_all(&mut r, &head[..end]).is_err() || cut.is_some() {
            return;
        }
        let mut buf = [0u8; 4096];
        while let Ok(k) = r.read(&mut buf) {
            if k == 0 || write_all(&mut r, &buf[..k]).is_err() {
                break;
            }
        }
    });
    let mut conf = NginxConf::new(true, Recipe::Defaults, &fake.upstream());
    conf.http = "proxy_read_timeout 1s; proxy_buffer_size 8k;".into();
    let nginx = Nginx::start(&conf);
    // Four clients at once (each case waits up to proxy_read_timeout): the cases are
    // independent connections to the same nginx.
    let addr = nginx.addr();
    let switched: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|k| {
                let addr = &addr;
                s.spawn(move || {
                    (k..CASES)
                        .step_by(4)
                        .filter(|&n| hostile_case(addr, n))
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    println!("{CASES} hostile heads, {switched} switched to tunnels");
    assert!(
        switched >= 3,
        "the generator should produce some valid hijacks"
    );
    nginx.assert_healthy();
}

/// One hostile head: sends case `n`'s request and checks that nginx answers or ends it.
/// True when nginx switched it to a tunnel.
fn hostile_case(addr: &str, n: u64) -> bool {
    let (_, _, upgrade) = hostile_head(n);
    let mut conn = Conn::connect(addr);
    conn.set_timeout(Duration::from_millis(100));
    let req = format!(
        "POST /case/{n} HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n{}\r\n",
        if upgrade {
            "Upgrade: tcp\r\nConnection: Upgrade\r\n"
        } else {
            ""
        }
    );
    conn.write_all(req.as_bytes()).unwrap();
    let t0 = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let mut closed = false;
    // Wait for a complete head (or the end).
    while t0.elapsed() < Duration::from_secs(4) && !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(_) => {}
        }
    }
    // A 101 the client did not ask for is no tunnel for nginx: it must just end.
    let switched = upgrade && got.starts_with(b"HTTP/1.1 101");
    if switched {
        let start = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        conn.write_all(b"ping").unwrap();
        conn.shutdown_write();
        let (rest, _) =
            nds_tests::raw::read_to_eof(&mut conn, got[start..].to_vec(), Duration::from_secs(5));
        assert!(
            rest.ends_with(b"ping"),
            "case {n}: tunnel lost bytes: {:?}",
            String::from_utf8_lossy(&rest)
        );
    } else if !closed {
        // Whatever it was (an answer, a 200 tunnel, a head still coming), it must end
        // once the client is done, within proxy_read_timeout and some slack.
        conn.shutdown_write();
        let (_, eof) = nds_tests::raw::read_to_eof(&mut conn, Vec::new(), Duration::from_secs(4));
        assert!(
            eof,
            "case {n}: still open 4 s after the client finished: {:?}",
            String::from_utf8_lossy(&hostile_head(n).0[..hostile_head(n).0.len().min(80)])
        );
    }
    switched
}

#[test]
#[ignore]
fn print_case() {
    let n: u64 = std::env::var("CASE").unwrap().parse().unwrap();
    let (h, cut, up) = hostile_head(n);
    println!(
        "cut={cut:?} upgrade={up}\n{}",
        String::from_utf8_lossy(&h).replace("\r\n", "\\r\\n\n")
    );
}

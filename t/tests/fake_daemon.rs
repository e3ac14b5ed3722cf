//! Byte-exact cases dockerd 20.10 cannot produce, against a scripted fake daemon, through
//! nginx with the module. Every test also checks that no worker died.

use std::io::{BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nds_tests::fake::{self, write_all, FakeDaemon, Head};
use nds_tests::raw::{self, read_at_least, read_to_eof, Conn};
use nds_tests::{Nginx, NginxConf, Recipe};

const RAW: &str = "application/vnd.docker.raw-stream";
const MUX: &str = "application/vnd.docker.multiplexed-stream";

/// Answers with `head`, then echoes every byte back (as a stdout frame when `frames`)
/// until the client's EOF, then sends `bye` and closes: a daemon that keeps talking after
/// stdin ends, like a container that prints after reading all input.
fn echo_daemon(head: String, frames: bool) -> FakeDaemon {
    FakeDaemon::start(move |_req: Head, mut r: BufReader<UnixStream>| {
        write_all(&mut r, head.as_bytes()).unwrap();
        let mut buf = [0u8; 65536];
        let frame = |data: &[u8]| -> Vec<u8> {
            if !frames {
                return data.to_vec();
            }
            let mut f = vec![1, 0, 0, 0];
            f.extend_from_slice(&(data.len() as u32).to_be_bytes());
            f.extend_from_slice(data);
            f
        };
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let f = frame(&buf[..n]);
                    if write_all(&mut r, &f).is_err() {
                        return;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = write_all(&mut r, &frame(b"bye\n"));
    })
}

/// Answers a raw-stream 200 and echoes every byte until the client's EOF.
fn raw_stream_echo(r: &mut BufReader<UnixStream>) {
    let _ = write_all(
        r,
        format!("HTTP/1.1 200 OK\r\nContent-Type: {RAW}\r\n\r\n").as_bytes(),
    );
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 || write_all(r, &buf[..n]).is_err() {
            break;
        }
    }
}

fn post(path: &str, upgrade: bool) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n{}\r\n",
        if upgrade {
            "Upgrade: tcp\r\nConnection: Upgrade\r\n"
        } else {
            ""
        }
    )
}

/// Sends `payload`, half-closes, and returns everything until EOF.
fn round_trip(conn: &mut Conn, rest: Vec<u8>, payload: &[u8]) -> Vec<u8> {
    conn.write_all(payload).unwrap();
    conn.shutdown_write();
    let (got, eof) = read_to_eof(conn, rest, Duration::from_secs(10));
    assert!(
        eof,
        "no EOF after the daemon closed; got {} bytes",
        got.len()
    );
    got
}

fn nginx_for(fake: &FakeDaemon, recipe: Recipe) -> Nginx {
    Nginx::start(&NginxConf::new(true, recipe, &fake.upstream()))
}

#[test]
fn multiplexed_stream_switched_and_native_101() {
    // A 200 with the multiplexed type (API >= 1.42 daemons) is switched like raw-stream.
    let fake = echo_daemon(
        format!("HTTP/1.1 200 OK\r\nContent-Type: {MUX}\r\nApi-Version: 1.47\r\n\r\n"),
        true,
    );
    let nginx = nginx_for(&fake, Recipe::Defaults);
    let mut conn = Conn::connect(&nginx.addr());
    let r = raw::request(&mut conn, &post("/v1.47/exec/x/start", true));
    assert_eq!(r.status_line, "HTTP/1.1 101 UPGRADED");
    assert_eq!(r.header("Content-Type"), Some(MUX));
    assert_eq!(
        r.header("Api-Version"),
        Some("1.47"),
        "the daemon's headers pass"
    );
    let payload = nds_tests::pseudo_random(1 << 20, 3);
    let got = round_trip(&mut conn, r.rest, &payload);
    let (out, _) = raw::demux(&got);
    assert_eq!(out.len(), payload.len() + 4);
    assert!(
        out.starts_with(&payload) && out.ends_with(b"bye\n"),
        "stream corrupted"
    );

    // The daemon's own 101 (Upgrade forwarded by the WebSocket recipe).
    let fake = echo_daemon(
        format!("HTTP/1.1 101 UPGRADED\r\nContent-Type: {MUX}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"),
        true,
    );
    let nginx = nginx_for(&fake, Recipe::WebSocket);
    let mut conn = Conn::connect(&nginx.addr());
    let r = raw::request(&mut conn, &post("/v1.47/exec/x/start", true));
    assert_eq!(r.status(), 101);
    let got = round_trip(&mut conn, r.rest, b"abc");
    assert_eq!(raw::demux(&got).0, b"abcbye\n");
    nginx.assert_healthy();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        nginx.access_log().contains(" 101 ds=101 "),
        "{}",
        nginx.access_log()
    );
}

#[test]
fn error_status_with_raw_stream_type_stays_a_response() {
    let fake = FakeDaemon::start(|_h, mut r| {
        let _ = write_all(
            &mut r,
            format!("HTTP/1.1 404 Not Found\r\nContent-Type: {RAW}\r\n\r\nNo such container: x\n")
                .as_bytes(),
        );
    });
    let nginx = nginx_for(&fake, Recipe::Defaults);
    let mut conn = Conn::connect(&nginx.addr());
    let r = raw::request(&mut conn, &post("/containers/x/attach?stream=1", true));
    assert_eq!(r.status(), 404);
    let (body, _) = read_to_eof(&mut conn, r.rest, Duration::from_secs(5));
    assert!(
        String::from_utf8_lossy(&body).contains("No such container: x"),
        "{body:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        nginx.access_log().contains(" 404 ds= "),
        "{}",
        nginx.access_log()
    );
    nginx.assert_healthy();
}

#[test]
fn framed_raw_stream_bodies_are_ordinary_responses() {
    let fake = FakeDaemon::start(|_h, mut r| {
        let _ = write_all(
            &mut r,
            format!("HTTP/1.1 200 OK\r\nContent-Type: {RAW}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").as_bytes(),
        );
        std::thread::sleep(Duration::from_secs(1));
    });
    let nginx = nginx_for(&fake, Recipe::WebSocket);
    let mut conn = Conn::connect(&nginx.addr());
    let r = raw::request(&mut conn, &post("/containers/x/logs", true));
    assert_eq!(r.status(), 200, "{r:?}");
    let body = read_at_least(&mut conn, r.rest, 20, Duration::from_secs(5));
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("hello") && text.contains(" world"),
        "{text:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        nginx.access_log().contains(" 200 ds= "),
        "{}",
        nginx.access_log()
    );
    nginx.assert_healthy();
}

#[test]
fn content_type_spellings() {
    for (ct, switched) in [
        ("Application/VND.Docker.Raw-Stream; charset=binary", true),
        ("  application/vnd.docker.multiplexed-stream  ", true),
        ("application/vnd.docker.raw-streamx", false),
        ("application/json", false),
        ("application/vnd.docker.raw-stream, text/plain", false),
    ] {
        // Api-Version makes the unswitched answers stream, so their head arrives at once.
        let head = format!("HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: {ct}\r\n\r\n");
        let fake = echo_daemon(head, false);
        let nginx = nginx_for(&fake, Recipe::Defaults);
        let mut conn = Conn::connect(&nginx.addr());
        let r = raw::request(&mut conn, &post("/containers/x/attach", true));
        assert_eq!(r.status() == 101, switched, "{ct:?}: {r:?}");
        if switched {
            assert_eq!(round_trip(&mut conn, r.rest, b"xyz"), b"xyzbye\n");
        }
        nginx.assert_healthy();
    }
}

#[test]
fn huge_and_malformed_upstream_heads() {
    let cases: Vec<(String, u16)> = vec![
        // Parameters up to the buffer: still switched.
        (
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {RAW}; x={}\r\n\r\n",
                "a".repeat(3000)
            ),
            101,
        ),
        // Over proxy_buffer_size: nginx refuses the head (502).
        (
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {RAW}; x={}\r\n\r\n",
                "a".repeat(9000)
            ),
            502,
        ),
        // A header line without a colon.
        (
            format!("HTTP/1.1 200 OK\r\nContent-Type {RAW}\r\n\r\n"),
            502,
        ),
        // A bare \n-terminated head (accepted by nginx).
        (format!("HTTP/1.1 200 OK\nContent-Type: {RAW}\n\n"), 101),
        // Many headers.
        (
            format!(
                "HTTP/1.1 200 OK\r\n{}Content-Type: {RAW}\r\n\r\n",
                (0..100)
                    .map(|i| format!("X-H{i}: {i}\r\n"))
                    .collect::<String>()
            ),
            101,
        ),
    ];
    for (head, want) in cases {
        let fake = echo_daemon(head.clone(), false);
        let mut conf = NginxConf::new(true, Recipe::Defaults, &fake.upstream());
        conf.http = "proxy_buffer_size 8k;".into();
        let nginx = Nginx::start(&conf);
        let mut conn = Conn::connect(&nginx.addr());
        conn.write_all(post("/containers/x/attach", true).as_bytes())
            .unwrap();
        let (got, _) = read_to_eof(&mut conn, Vec::new(), Duration::from_millis(1500));
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {want}")),
            "head {:?}...: got {:?}",
            &head[..head.len().min(60)],
            &text[..text.len().min(200)]
        );
        nginx.assert_healthy();
    }
}

#[test]
fn garbage_instead_of_a_status_line() {
    // nginx takes it for an HTTP/0.9 answer and logs it; nothing is switched.
    let fake = FakeDaemon::start(|_h, mut r| {
        let _ = write_all(&mut r, b"\x00\x01\x02garbage\r\n\r\n");
    });
    let nginx = nginx_for(&fake, Recipe::Defaults);
    let mut conn = Conn::connect(&nginx.addr());
    conn.write_all(post("/containers/x/attach", true).as_bytes())
        .unwrap();
    // nginx passes the bytes as an HTTP/0.9 body (and keeps the connection).
    let (got, _) = read_to_eof(&mut conn, Vec::new(), Duration::from_secs(2));
    assert_eq!(got, b"\x00\x01\x02garbage\r\n\r\n");
    assert!(nginx
        .error_log()
        .contains("upstream sent no valid HTTP/1.0 header"));
    nginx.assert_healthy();
}

#[test]
fn daemon_closing_mid_stream_delivers_what_it_sent() {
    let fake = FakeDaemon::start(|_h, mut r| {
        let _ = write_all(
            &mut r,
            format!("HTTP/1.1 200 OK\r\nContent-Type: {RAW}\r\n\r\npartial output").as_bytes(),
        );
        // Closes without waiting for the client's input.
    });
    let nginx = nginx_for(&fake, Recipe::Defaults);
    for upgrade in [true, false] {
        let mut conn = Conn::connect(&nginx.addr());
        let r = raw::request(&mut conn, &post("/containers/x/attach", upgrade));
        let (got, eof) = read_to_eof(&mut conn, r.rest, Duration::from_secs(5));
        assert!(eof);
        assert_eq!(got, b"partial output");
    }
    nginx.assert_healthy();
}

#[test]
fn stdin_bytes_right_behind_the_request_head() {
    // Old clients stream stdin without waiting for the answer; the daemon answers late.
    let fake = FakeDaemon::start(|_h, mut r| {
        std::thread::sleep(Duration::from_millis(300));
        let _ = write_all(
            &mut r,
            format!("HTTP/1.1 200 OK\r\nContent-Type: {RAW}\r\n\r\n").as_bytes(),
        );
        let mut buf = [0u8; 4096];
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
        let _ = write_all(&mut r, b"|eof");
    });
    let nginx = nginx_for(&fake, Recipe::Defaults);
    for upgrade in [true, false] {
        let mut conn = Conn::connect(&nginx.addr());
        let mut msg = post("/containers/x/attach?stdin=1", upgrade).into_bytes();
        msg.extend_from_slice(b"early bytes;");
        conn.write_all(&msg).unwrap();
        let r = raw::read_head(&mut conn);
        let got = round_trip(&mut conn, r.rest, b"late bytes");
        assert_eq!(String::from_utf8_lossy(&got), "early bytes;late bytes|eof");
    }
    nginx.assert_healthy();
}

#[test]
fn client_vanishing_mid_stream_closes_the_daemon_side() {
    let closed = Arc::new(AtomicUsize::new(0));
    let closed2 = closed.clone();
    let fake = FakeDaemon::start(move |_h, mut r| {
        let _ = write_all(
            &mut r,
            format!("HTTP/1.1 200 OK\r\nContent-Type: {RAW}\r\n\r\n").as_bytes(),
        );
        let chunk = vec![b'x'; 65536];
        let deadline = Instant::now() + Duration::from_secs(20);
        // Streams until the proxy closes the connection (bounded).
        while Instant::now() < deadline {
            if write_all(&mut r, &chunk).is_err() {
                closed2.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    });
    let nginx = nginx_for(&fake, Recipe::Defaults);
    {
        let mut conn = Conn::connect(&nginx.addr());
        let r = raw::request(&mut conn, &post("/containers/x/attach", true));
        assert_eq!(r.status(), 101);
        let _ = read_at_least(&mut conn, r.rest, 100_000, Duration::from_secs(5));
        // Dropped with unread data: the kernel sends RST.
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while closed.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(closed.load(Ordering::SeqCst), 1, "daemon side not closed");
    std::thread::sleep(Duration::from_millis(200));
    let log = nginx.error_log();
    assert!(
        log.contains("docker_stream: client connection failed"),
        "{log}"
    );
    nginx.assert_healthy();
}

#[test]
fn idle_timeout_closes_a_silent_tunnel() {
    let fake = FakeDaemon::start(|_h, mut r| {
        let _ = write_all(
            &mut r,
            format!("HTTP/1.1 200 OK\r\nContent-Type: {RAW}\r\n\r\nhi").as_bytes(),
        );
        let mut buf = [0u8; 16];
        let _ = r.read(&mut buf); // waits for the proxy to close
    });
    let mut conf = NginxConf::new(true, Recipe::Defaults, &fake.upstream());
    conf.location = format!("docker_stream_timeout 1s; {}", conf.location);
    let nginx = Nginx::start(&conf);
    let mut conn = Conn::connect(&nginx.addr());
    let t0 = Instant::now();
    let r = raw::request(&mut conn, &post("/containers/x/attach", true));
    let (got, eof) = read_to_eof(&mut conn, r.rest, Duration::from_secs(10));
    let took = t0.elapsed();
    assert!(eof && got == b"hi", "{got:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert!(
        nginx.error_log().contains("no data for 1000 ms"),
        "{}",
        nginx.error_log()
    );
    nginx.assert_healthy();

    // Without a timeout the same silent tunnel outlives proxy_read_timeout.
    let mut conf = NginxConf::new(true, Recipe::Defaults, &fake.upstream());
    conf.http = "proxy_read_timeout 1s;".into();
    let nginx = Nginx::start(&conf);
    let mut conn = Conn::connect(&nginx.addr());
    let r = raw::request(&mut conn, &post("/containers/x/attach", true));
    let (_, eof) = read_to_eof(&mut conn, r.rest, Duration::from_millis(2500));
    assert!(!eof, "tunnel cut by proxy_read_timeout");
    nginx.assert_healthy();
}

#[test]
fn docker_stream_off_behaves_like_stock_nginx() {
    let fake = echo_daemon(
        format!("HTTP/1.1 200 OK\r\nContent-Type: {RAW}\r\n\r\n"),
        false,
    );
    let mut conf = NginxConf::new(true, Recipe::BufferingOff, &fake.upstream());
    conf.location = format!("docker_stream off; {}", conf.location);
    let nginx = Nginx::start(&conf);
    let mut conn = Conn::connect(&nginx.addr());
    let r = raw::request(&mut conn, &post("/containers/x/attach", true));
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"), "{r:?}");
    nginx.assert_healthy();
}

#[test]
fn auth_request_denies_before_the_daemon_and_subrequests_are_not_switched() {
    let seen = Arc::new(AtomicUsize::new(0));
    let seen2 = seen.clone();
    let fake = FakeDaemon::start(move |_h, mut r| {
        seen2.fetch_add(1, Ordering::SeqCst);
        raw_stream_echo(&mut r);
    });
    // An auth service that itself answers with the raw-stream type: the subrequest must be
    // judged as an ordinary 2xx, never switched ("connection upgrade in subrequest").
    let auth = FakeDaemon::start(|h, mut r| {
        let status = if h.header("x-nds-auth") == Some("deny") {
            "403 Forbidden"
        } else {
            "200 OK"
        };
        let _ = write_all(
            &mut r,
            format!("HTTP/1.1 {status}\r\nContent-Type: {RAW}\r\nContent-Length: 0\r\n\r\n")
                .as_bytes(),
        );
    });
    let mut conf = NginxConf::new(true, Recipe::Defaults, &fake.upstream());
    conf.location = format!("auth_request /_auth_raw; {}", conf.location);
    conf.server = format!(
        "location = /_auth_raw {{ internal; proxy_pass http://{}; proxy_pass_request_body off; \
         proxy_set_header Content-Length \"\"; proxy_set_header X-Nds-Auth $http_x_nds_auth; }}",
        auth.upstream()
    );
    let nginx = Nginx::start(&conf);

    let mut conn = Conn::connect(&nginx.addr());
    let r = raw::request(
        &mut conn,
        "POST /containers/x/attach HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nX-Nds-Auth: deny\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n",
    );
    assert_eq!(r.status(), 403);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "a denied request reached the daemon"
    );

    let mut conn = Conn::connect(&nginx.addr());
    let r = raw::request(&mut conn, &post("/containers/x/attach", true));
    assert_eq!(r.status(), 101);
    assert_eq!(round_trip(&mut conn, r.rest, b"allowed"), b"allowed");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert!(
        !nginx.error_log().contains("upgrade in subrequest"),
        "{}",
        nginx.error_log()
    );
    nginx.assert_healthy();
}

#[tokio::test]
async fn http2_client_gets_a_clear_error() {
    let fake = echo_daemon(
        format!("HTTP/1.1 200 OK\r\nContent-Type: {RAW}\r\n\r\n"),
        false,
    );
    let mut conf = NginxConf::new(true, Recipe::Defaults, &fake.upstream());
    conf.server = "http2 on;".into();
    let nginx = Nginx::start(&conf);
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let resp = client
        .post(format!(
            "http://{}/containers/x/attach?stream=1",
            nginx.addr()
        ))
        .send()
        .await
        .expect("an answer, not a hang");
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status().as_u16(), 505);
    // Ordinary requests over HTTP/2 still work.
    let fake_json = FakeDaemon::start(|_h, mut r| {
        let _ = write_all(&mut r, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\n{}");
    });
    let mut conf = NginxConf::new(true, Recipe::Defaults, &fake_json.upstream());
    conf.server = "http2 on;".into();
    let nginx2 = Nginx::start(&conf);
    let resp = client
        .get(format!("http://{}/version", nginx2.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().await.unwrap(), "{}");
    assert!(
        nginx.error_log().contains("which HTTP/2 cannot carry"),
        "{}",
        nginx.error_log()
    );
    nginx.assert_healthy();
    nginx2.assert_healthy();
}

/// Which relay carries bulk data one way: a splice lane or the copying relay's bulk
/// buffer, counted from the debug log (nginx is built --with-debug).
fn lanes(nginx: &Nginx, lane: &str) -> (usize, usize) {
    let debug = std::fs::read_to_string(nginx.dir.path().join("logs/debug.log")).unwrap();
    (
        debug.matches(&format!("splice lane {lane}")).count(),
        debug.matches(&format!("bulk buffer {lane}")).count(),
    )
}

/// Writes `payload` in 1 MiB chunks with short pauses while reading the echo back (slowly
/// at times, so that both sides see back-pressure); returns what came back until EOF
/// after `tail` more bytes, or until the deadline.
fn stream_echo(
    conn: &mut Conn,
    rest: Vec<u8>,
    payload: &[u8],
    tail: usize,
    close: bool,
) -> Vec<u8> {
    let Conn::Tcp(tcp) = &*conn else {
        unreachable!()
    };
    let mut writer = tcp.try_clone().unwrap();
    let sent = payload.to_vec();
    let w = std::thread::spawn(move || {
        for (i, chunk) in sent.chunks(1 << 20).enumerate() {
            writer.write_all(chunk).unwrap();
            if i % 8 == 7 {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if close {
            writer.shutdown(std::net::Shutdown::Write).unwrap();
        }
    });
    let mut got = rest;
    let mut chunk = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && got.len() < payload.len() + tail {
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(_) => continue,
        }
        if got.len() % (4 << 20) < (1 << 16) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    w.join().unwrap();
    got
}

/// Bulk data both ways, byte-exact, from a daemon on a unix socket and on TCP, with each
/// `docker_stream_splice` mode: `on` splices both directions, `off` none, `auto` all but
/// a unix socket's output into TCP (here the daemon's output to the TCP client when the
/// daemon is on a unix socket). Each
/// direction of each request switches exactly once: a relay that dropped its bulk buffer
/// after every event (a bug this test missed before) grows it again and again.
#[test]
fn bulk_both_ways_with_and_without_splice() {
    let fake = echo_daemon(
        format!("HTTP/1.1 200 OK\r\nContent-Type: {RAW}\r\n\r\n"),
        false,
    );
    for (tcp, upstream) in [(false, fake.upstream()), (true, fake.tcp_upstream())] {
        for splice in ["on", "off", "auto"] {
            let what = format!(
                "splice {splice}, daemon on {}",
                if tcp { "TCP" } else { "unix" }
            );
            let mut conf = NginxConf::new(true, Recipe::Defaults, &upstream);
            conf.location = format!("docker_stream_splice {splice}; {}", conf.location);
            conf.main = "error_log logs/debug.log debug;".into();
            let nginx = Nginx::start(&conf);
            for upgrade in [true, false] {
                let mut conn = Conn::connect(&nginx.addr());
                let r = raw::request(&mut conn, &post("/containers/x/attach", upgrade));
                let payload = nds_tests::pseudo_random(24 << 20, 11);
                let got = stream_echo(&mut conn, r.rest, &payload, 4, true);
                assert_eq!(got.len(), payload.len() + 4, "{what}, upgrade {upgrade}");
                assert!(
                    got[..payload.len()] == payload[..] && got.ends_with(b"bye\n"),
                    "bytes differ ({what})"
                );
            }
            std::thread::sleep(Duration::from_millis(200));
            let log = nginx.access_log();
            for l in log.lines().filter(|l| l.contains("/attach")) {
                let field = |name: &str| -> u64 {
                    l.split(' ')
                        .find_map(|f| f.strip_prefix(name))
                        .unwrap()
                        .parse()
                        .unwrap()
                };
                assert!(
                    field("ubr=") >= (24 << 20) + 4 && field("bs=") >= (24 << 20) + 4,
                    "accounting ({what}): {l}"
                );
            }
            // The client is on TCP; the daemon on TCP or a unix socket.
            let down_spliced = splice == "on" || (splice == "auto" && tcp);
            let up_spliced = splice != "off";
            for (lane, spliced) in [
                ("daemon->client", down_spliced),
                ("client->daemon", up_spliced),
            ] {
                let want = if spliced { (2, 0) } else { (0, 2) };
                assert_eq!(
                    lanes(&nginx, lane),
                    want,
                    "{what}, {lane}: (spliced, copied)"
                );
            }
            nginx.assert_healthy();
        }
    }
}

/// A tunnel that goes quiet gives its bulk buffers and pipes back after a second (so a
/// long idle shell holds no 256 KiB buffers or pipe descriptors), and picks bulk traffic
/// up again byte-exact afterwards.
#[test]
fn quiet_tunnel_gives_bulk_buffers_and_pipes_back() {
    let fake = echo_daemon(
        format!("HTTP/1.1 200 OK\r\nContent-Type: {RAW}\r\n\r\n"),
        false,
    );
    for (tcp, upstream) in [(false, fake.upstream()), (true, fake.tcp_upstream())] {
        let mut conf = NginxConf::new(true, Recipe::Defaults, &upstream);
        conf.location = format!("docker_stream_splice on; {}", conf.location);
        conf.main = "error_log logs/debug.log debug;".into();
        let nginx = Nginx::start(&conf);
        let worker = nginx.worker_pids()[0];
        let pipes = || {
            std::fs::read_dir(format!("/proc/{worker}/fd"))
                .unwrap()
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|l| l.to_string_lossy().starts_with("pipe:"))
                .count()
        };
        let idle_pipes = pipes();
        let mut conn = Conn::connect(&nginx.addr());
        let r = raw::request(&mut conn, &post("/containers/x/attach", true));
        let first = nds_tests::pseudo_random(8 << 20, 21);
        let got = stream_echo(&mut conn, r.rest, &first, 0, false);
        assert!(got == first, "first burst differs (daemon on TCP: {tcp})");
        let busy_pipes = pipes();
        // Released after a quiet second (a copied lane's buffers too, which no count
        // shows: hence the wait past it); polled on, for a loaded machine.
        let deadline = Instant::now() + Duration::from_secs(5);
        std::thread::sleep(Duration::from_millis(1600));
        while pipes() != idle_pipes && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let quiet_pipes = pipes();
        let second = nds_tests::pseudo_random(8 << 20, 22);
        let got = stream_echo(&mut conn, Vec::new(), &second, 4, true);
        assert_eq!(
            got.len(),
            second.len() + 4,
            "second burst (daemon on TCP: {tcp})"
        );
        assert!(
            got[..second.len()] == second[..] && got.ends_with(b"bye\n"),
            "second burst differs (daemon on TCP: {tcp})"
        );
        // `on`: both directions spliced.
        let lanes_per_burst = 2;

        assert_eq!(
            busy_pipes,
            idle_pipes + 2 * lanes_per_burst,
            "pipes while streaming (daemon on TCP: {tcp})"
        );
        assert_eq!(
            quiet_pipes, idle_pipes,
            "pipes after a quiet second (daemon on TCP: {tcp})"
        );
        // A client that goes away mid-burst: the tunnel's lanes go with the request's
        // pool, pipes and all.
        let mut conn = Conn::connect(&nginx.addr());
        let r = raw::request(&mut conn, &post("/containers/x/attach", true));
        let third = nds_tests::pseudo_random(8 << 20, 23);
        let got = stream_echo(&mut conn, r.rest, &third, 0, false);
        assert!(got == third, "third burst differs (daemon on TCP: {tcp})");
        let live_pipes = pipes();
        drop(conn);
        let deadline = Instant::now() + Duration::from_secs(5);
        while pipes() != idle_pipes && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            live_pipes > idle_pipes && pipes() == idle_pipes,
            "pipes: {idle_pipes} idle, {live_pipes} live, {} after the client left (daemon on TCP: {tcp})",
            pipes()
        );
        // Each burst (two on the first tunnel, one on the second) started its lanes or
        // grew its buffers anew: 3 per direction. A direction switches when a read filled
        // its buffer and the write emptied it in the same pass; under steady
        // back-pressure on a loaded machine one burst may stay on the small buffer, so
        // one direction may count 2 (seen with a build running beside the tests). Lanes
        // that never came back after the quiet second would count 2 in both.
        let counts: Vec<usize> = ["daemon->client", "client->daemon"]
            .iter()
            .map(|lane| {
                let (spliced, copied) = lanes(&nginx, lane);
                spliced + copied
            })
            .collect();
        assert!(
            counts.iter().all(|c| (2..=3).contains(c)) && counts.iter().sum::<usize>() >= 5,
            "daemon on TCP: {tcp}, bursts that switched (daemon->client, client->daemon): \
             {counts:?}"
        );
        nginx.assert_healthy();
    }
}

/// A request pipelined behind a hijacking one is stream bytes for the daemon, as on the
/// direct socket: nginx never parses it, so it cannot slip past auth_request.
#[test]
fn pipelined_request_behind_a_hijack_is_stream_data() {
    let auth_calls = Arc::new(AtomicUsize::new(0));
    let calls = auth_calls.clone();
    let auth = FakeDaemon::start(move |_h, mut r| {
        calls.fetch_add(1, Ordering::SeqCst);
        let _ = write_all(&mut r, b"HTTP/1.1 204 No Content\r\n\r\n");
    });
    let fake = FakeDaemon::start(|h, mut r| {
        // A second request on this connection would show up here as a second head; the
        // daemon sees bytes on the hijacked stream instead and echoes them.
        assert!(
            h.request_line.starts_with("POST /containers/x/attach"),
            "{}",
            h.request_line
        );
        raw_stream_echo(&mut r);
    });
    let mut conf = NginxConf::new(true, Recipe::Defaults, &fake.upstream());
    conf.location = format!("auth_request /_auth_seen; {}", conf.location);
    conf.server = format!(
        "location = /_auth_seen {{ internal; proxy_pass http://{}; proxy_pass_request_body off; \
         proxy_set_header Content-Length \"\"; }}",
        auth.upstream()
    );
    let nginx = Nginx::start(&conf);
    let second = "DELETE /containers/victim?force=1 HTTP/1.1\r\nHost: d\r\n\r\n";
    let mut conn = Conn::connect(&nginx.addr());
    let mut msg = post("/containers/x/attach", true).into_bytes();
    msg.extend_from_slice(second.as_bytes());
    conn.write_all(&msg).unwrap();
    let r = raw::read_head(&mut conn);
    assert_eq!(r.status(), 101);
    let got = round_trip(&mut conn, r.rest, b"");
    assert_eq!(
        String::from_utf8_lossy(&got),
        second,
        "the pipelined request must come back as echoed stream bytes"
    );
    assert_eq!(
        auth_calls.load(Ordering::SeqCst),
        1,
        "only the hijacking request was authorized"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !nginx.access_log().contains("DELETE"),
        "nginx parsed the pipelined request"
    );
    nginx.assert_healthy();
}

/// A daemon that answers without reading the whole request body and closes: its kernel
/// resets the connection (as dockerd does on docker-py's builds over HTTP/1.0). A body
/// that ends at the close ends there, with its last chunk; a body with a length that the
/// reset cuts short stays cut short (no clean end the client could trust).
#[test]
fn reset_after_the_response_ends_a_close_delimited_body() {
    let fake = FakeDaemon::start_body_unread(|h, mut r| {
        // Read the body but its last 10,000 bytes, as dockerd leaves a context archive's
        // padding, and answer once nginx has written them all, so the answer meets no send
        // error (under load nginx may still be writing when the first bytes are read).
        let len: usize = h
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len.saturating_sub(10_000)];
        if r.read_exact(&mut body).is_err() || !fake::wait_unread(&r, len.min(10_000)) {
            return;
        }
        let framed = h.request_line.contains("framed");
        let head = if framed {
            "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        } else {
            "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n\r\n"
        };
        let _ = write_all(&mut r, head.as_bytes());
        let _ = write_all(
            &mut r,
            b"{\"stream\":\"Step 1/1\"}\n{\"stream\":\"Successfully built\"}\n",
        );
        // Dropped with request bytes unread: a reset, not a close.
    });
    let body = "x".repeat(200_000);
    for (path, want_clean) in [("/v1.41/build", true), ("/v1.41/build?framed=1", false)] {
        let nginx = nginx_for(&fake, Recipe::Defaults);
        let mut conn = Conn::connect(&nginx.addr());
        conn.write_all(
            format!(
                "POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
        let r = raw::read_head(&mut conn);
        assert_eq!(r.status(), 200, "{r:?}");
        let (got, _) = read_to_eof(&mut conn, r.rest.clone(), Duration::from_secs(10));
        let text = String::from_utf8_lossy(&got);
        let clean = if want_clean {
            r.header("Transfer-Encoding") == Some("chunked") && text.ends_with("\r\n0\r\n\r\n")
        } else {
            got.len() >= 100
        };
        println!("  {path}: clean end {clean}, {text:?}");
        assert!(text.contains("Successfully built"), "{path}: {text:?}");
        assert_eq!(clean, want_clean, "{path}: {text:?}\n{}", nginx.error_log());
        let log = nginx.error_log();
        if want_clean {
            assert!(
                log.contains("the daemon reset the connection after its response"),
                "{log}"
            );
        } else {
            assert!(!log.contains("the daemon reset the connection"), "{log}");
        }
        nginx.assert_healthy();
    }
}

/// `Expect: 100-continue`: a request refused before the content phase gets its refusal
/// and no `100 Continue` (the client never sends a body to be thrown away); a proxied
/// one gets the 100, then the daemon's answer. The control, stock nginx, sends 100 before
/// the refusal.
#[test]
fn expect_100_continue_only_where_the_body_is_wanted() {
    let fake = FakeDaemon::start(|_h, mut r| {
        let _ = write_all(
            &mut r,
            b"HTTP/1.1 201 Created\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n{}\n",
        );
    });
    let first_line = |nginx: &Nginx, path: &str| -> (String, Conn) {
        let mut conn = Conn::connect(&nginx.addr());
        conn.write_all(
            format!(
                "POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
                 Content-Length: 2\r\nExpect: 100-continue\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let r = raw::read_head(&mut conn);
        (r.status_line.clone(), conn)
    };
    for module in [true, false] {
        let mut conf = NginxConf::new(module, Recipe::WebSocket, &fake.upstream());
        conf.server = "location /refused { return 403 '{\"message\": \"no\"}'; }".into();
        let nginx = Nginx::start(&conf);
        let (refused, _) = first_line(&nginx, "/refused/containers/create");
        let (proxied, mut conn) = first_line(&nginx, "/containers/create");
        println!("  module {module}: refused -> {refused:?}, proxied -> {proxied:?}");
        assert_eq!(proxied, "HTTP/1.1 100 Continue", "module {module}");
        conn.write_all(b"{}").unwrap();
        let r = raw::read_head(&mut conn);
        assert_eq!(r.status(), 201, "{r:?}");
        if module {
            assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
        } else {
            assert_eq!(refused, "HTTP/1.1 100 Continue", "the control");
        }
        nginx.assert_healthy();
    }
}

/// The body-size lift: nginx's default 1 MiB `client_max_body_size` is lifted where the
/// module proxies (an `if` block in such a location included), and kept where a location
/// serves files or the configuration sets the value itself, `1m` included, at the
/// location or around it. `docker_stream off` is the control: stock nginx's 413.
#[test]
fn body_size_lift_only_where_it_proxies_and_was_not_set() {
    let fake = FakeDaemon::start_body_unread(|h, mut r| {
        let chunked = h
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let got = if chunked {
            // Up to the last chunk (nginx re-chunks what it buffered).
            let mut body = Vec::new();
            let mut byte = [0u8; 1];
            while !body.ends_with(b"\r\n0\r\n\r\n") && r.read(&mut byte).unwrap_or(0) == 1 {
                body.push(byte[0]);
            }
            body.len()
        } else {
            let n: usize = h
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; n];
            r.read_exact(&mut body).map_or(0, |()| n)
        };
        let text = format!("{got}\n");
        let _ = write_all(
            &mut r,
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{text}",
                text.len()
            )
            .as_bytes(),
        );
    });
    let pass = format!("proxy_pass http://{};", fake.upstream());
    let files = tempfile::tempdir().unwrap();
    let mut conf = NginxConf::new(true, Recipe::Defaults, &fake.upstream());
    conf.server = format!(
        "location /files/ {{ root {}; }}
        location /explicit/ {{ client_max_body_size 1m; {pass} }}
        location /outer/ {{ client_max_body_size 1m; location /outer/inner/ {{ {pass} }} }}
        location /iffy/ {{ if ($arg_x) {{ set $y 1; }} {pass} }}
        location /off/ {{ docker_stream off; {pass} }}",
        files.path().display()
    );
    let nginx = Nginx::start(&conf);
    let size = 2 << 20;
    let body = vec![b'x'; size];
    let status = |path: &str, chunked: bool, send_body: bool| -> u16 {
        let mut conn = Conn::connect(&nginx.addr());
        let framing = if chunked {
            "Transfer-Encoding: chunked".to_string()
        } else {
            format!("Content-Length: {size}")
        };
        let head =
            format!("POST {path} HTTP/1.1\r\nHost: d\r\n{framing}\r\nConnection: close\r\n\r\n");
        conn.write_all(head.as_bytes()).unwrap();
        if send_body {
            if chunked {
                for part in body.chunks(64 << 10) {
                    let _ = conn.write_all(format!("{:x}\r\n", part.len()).as_bytes());
                    let _ = conn.write_all(part);
                    let _ = conn.write_all(b"\r\n");
                }
                let _ = conn.write_all(b"0\r\n\r\n");
            } else {
                let _ = conn.write_all(&body);
            }
        }
        raw::read_head(&mut conn).status()
    };
    let cases: &[(&str, bool, bool, u16)] = &[
        // (path, chunked, send the body, status)
        ("/containers/x/archive", false, true, 200),
        ("/containers/x/archive", true, true, 200),
        ("/iffy/archive?x=1", true, true, 200),
        ("/files/archive", false, false, 413),
        ("/explicit/archive", false, false, 413),
        ("/outer/inner/archive", false, false, 413),
        ("/off/archive", false, false, 413),
    ];
    let mut failures = Vec::new();
    for &(path, chunked, send, want) in cases {
        let got = status(path, chunked, send);
        println!("  POST {path:24} chunked={chunked:5} {got} (want {want})");
        if got != want {
            failures.push(format!("{path} chunked={chunked}: {got}, want {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    nginx.assert_healthy();
}

/// The body-size lift patches nginx's `client_max_body_size` handler only while the
/// configuration that loads the module is parsed: two reloads into a configuration
/// without the module parse the directive with nginx's own handler again, and it limits
/// as set (a handler the restore left broken fails the first reload).
#[test]
fn reloads_without_the_module_parse_client_max_body_size() {
    let fake = FakeDaemon::start(|_h, mut r| {
        let _ = write_all(
            &mut r,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    });
    let mut conf = NginxConf::new(true, Recipe::Defaults, &fake.upstream());
    conf.http = "client_max_body_size 3m;".into();
    let nginx = Nginx::start(&conf);
    let master = nginx.master_pid();
    let without: String = std::fs::read_to_string(nginx.config_path())
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("load_module"))
        .map(|l| l.replace("ds=$docker_stream", "ds=-") + "\n")
        .collect();
    std::fs::write(nginx.config_path(), without).unwrap();
    for round in 0..2 {
        let before = nginx.worker_pids();
        // SAFETY: a signal to the master this test started.
        assert_eq!(unsafe { libc::kill(master, libc::SIGHUP) }, 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        while nginx.worker_pids() == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(master, 0) } == 0;
        assert!(
            alive && nginx.worker_pids() != before,
            "reload {round}: {}",
            nginx.error_log()
        );
    }
    let post = |size: usize| -> u16 {
        let mut conn = Conn::connect(&nginx.addr());
        let head = format!("POST /x HTTP/1.1\r\nHost: d\r\nContent-Length: {size}\r\n\r\n");
        conn.write_all(head.as_bytes()).unwrap();
        raw::read_head(&mut conn).status()
    };
    assert_eq!(post(4 << 20), 413, "{}", nginx.error_log());
    let log = nginx.error_log();
    assert!(
        !log.contains("[alert]") && !log.contains("[emerg]"),
        "{log}"
    );
}

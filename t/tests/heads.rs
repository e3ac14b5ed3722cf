//! Exact response heads for raw HTTP/1.x clients, streaming latency, the access log
//! accounting, and a real Rust Docker client (bollard) through the module.

use std::io::Write;
use std::time::{Duration, Instant};

use nds_tests::cli::{direct, Containers};
use nds_tests::raw::{self, demux, read_at_least, read_to_eof, Conn};
use nds_tests::{docker_sock, image, Nginx, NginxConf, Recipe};

fn cat_container(c: &mut Containers) -> String {
    let id = direct(&["run", "-d", "-i", "--network", "none", &image(), "cat"]);
    c.0.push(id.clone());
    id
}

fn attach_head(id: &str, http: &str, upgrade: bool) -> String {
    format!(
        "POST /v1.41/containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1 {http}\r\n\
         Host: docker\r\nContent-Length: 0\r\n{}\r\n",
        if upgrade {
            "Upgrade: tcp\r\nConnection: Upgrade\r\n"
        } else {
            ""
        }
    )
}

/// Sends "ping\n" through an attached `cat` and expects it back as a stdout frame.
fn echo_through(conn: &mut Conn, rest: Vec<u8>) {
    conn.write_all(b"ping\n").unwrap();
    let got = read_at_least(conn, rest, 13, Duration::from_secs(10));
    assert_eq!(demux(&got).0, b"ping\n", "echo through the tunnel: {got:?}");
}

fn assert_no_framing(r: &raw::Response) {
    assert_eq!(r.header("Transfer-Encoding"), None, "{r:?}");
    assert_eq!(r.header("Content-Length"), None, "{r:?}");
    assert_eq!(
        r.header("Content-Type"),
        Some("application/vnd.docker.raw-stream"),
        "{r:?}"
    );
}

#[test]
fn switched_heads_match_the_daemon_and_carry_the_stream() {
    let nginx = Nginx::start(&NginxConf::docker(true, Recipe::Defaults));
    let mut c = Containers(vec![]);
    let id = cat_container(&mut c);
    let sock = docker_sock().display().to_string();

    // A client that asks for an upgrade gets a 101, like from the daemon itself.
    let mut direct_conn = Conn::connect(&sock);
    let d = raw::request(&mut direct_conn, &attach_head(&id, "HTTP/1.1", true));
    assert_eq!(d.status(), 101);
    let mut conn = Conn::connect(&nginx.addr());
    let r = raw::request(&mut conn, &attach_head(&id, "HTTP/1.1", true));
    assert_eq!(r.status_line, "HTTP/1.1 101 UPGRADED");
    assert_eq!(r.header("Upgrade"), Some("tcp"));
    assert!(
        r.header("Connection")
            .unwrap()
            .eq_ignore_ascii_case("upgrade"),
        "{r:?}"
    );
    assert_no_framing(&r);
    echo_through(&mut conn, r.rest);
    drop(direct_conn);

    // HTTP/1.1 without Upgrade: the daemon's 200, unchunked, closed at the end.
    let mut conn2 = Conn::connect(&nginx.addr());
    let r = raw::request(&mut conn2, &attach_head(&id, "HTTP/1.1", false));
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.header("Connection"), Some("close"));
    assert_no_framing(&r);
    echo_through(&mut conn2, r.rest);

    // HTTP/1.0.
    let mut conn3 = Conn::connect(&nginx.addr());
    let r = raw::request(&mut conn3, &attach_head(&id, "HTTP/1.0", false));
    assert_eq!(r.status(), 200);
    assert_no_framing(&r);
    echo_through(&mut conn3, r.rest);

    // Half-close: the daemon ends a plain attach when its stdin ends; the proxy must pass
    // the EOF on and then close.
    for conn in [&mut conn, &mut conn2, &mut conn3] {
        conn.shutdown_write();
        let (_, eof) = read_to_eof(conn, Vec::new(), Duration::from_secs(10));
        assert!(eof, "tunnel did not end after the client's half-close");
    }

    std::thread::sleep(Duration::from_millis(300));
    let log = nginx.access_log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("/attach")).collect();
    assert_eq!(lines.len(), 3, "{log}");
    for l in &lines {
        assert!(l.contains(" ds=upgrade "), "{l}");
        let field = |name: &str| -> u64 {
            l.split(' ')
                .find_map(|f| f.strip_prefix(name))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} in {l}"))
        };
        // 13 bytes of frame went each way, on top of the heads.
        assert!(field("ubr=") >= 13 + 50, "{l}");
        assert!(field("ubs=") >= 5 + 100, "{l}");
        assert!(field("bs=") >= 13 + 100, "{l}");
    }
    nginx.assert_healthy();
}

#[test]
fn native_101_is_relayed_with_half_close() {
    // docker-api.conf forwards Upgrade: the daemon answers 101 itself.
    let nginx = Nginx::start(&NginxConf::docker(true, Recipe::Recommended));
    let mut c = Containers(vec![]);
    let id = cat_container(&mut c);
    let mut conn = Conn::connect(&nginx.addr());
    let r = raw::request(&mut conn, &attach_head(&id, "HTTP/1.1", true));
    assert_eq!(r.status_line, "HTTP/1.1 101 UPGRADED");
    echo_through(&mut conn, r.rest);
    conn.shutdown_write();
    let (_, eof) = read_to_eof(&mut conn, Vec::new(), Duration::from_secs(10));
    assert!(eof);
    std::thread::sleep(Duration::from_millis(300));
    let log = nginx.access_log();
    assert!(
        log.lines()
            .any(|l| l.contains("/attach") && l.contains(" 101 ds=101 ")),
        "{log}"
    );
    nginx.assert_healthy();
}

#[test]
fn logs_follow_and_events_arrive_live_with_proxy_buffering_on() {
    let mut conf = NginxConf::docker(true, Recipe::Defaults);
    conf.http = "proxy_read_timeout 3s;".into();
    let nginx = Nginx::start(&conf);
    let mut c = Containers(vec![]);
    let id = direct(&[
        "run",
        "-d",
        "--network",
        "none",
        &image(),
        "sh",
        "-c",
        "echo first; sleep 10; echo second",
    ]);
    c.0.push(id.clone());
    std::thread::sleep(Duration::from_millis(500));

    let mut conn = Conn::connect(&nginx.addr());
    let start = Instant::now();
    let r = raw::request(
        &mut conn,
        &format!("GET /v1.41/containers/{id}/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: d\r\n\r\n"),
    );
    assert_eq!(r.status(), 200);
    let got = read_at_least(&mut conn, r.rest, 8 + 6, Duration::from_secs(6));
    let first = start.elapsed();
    assert!(
        String::from_utf8_lossy(&got).contains("first"),
        "no first line: {got:?}"
    );
    // Buffered, it would come with the second, 10 s later (3 s: room for a loaded
    // machine).
    assert!(first < Duration::from_secs(3), "first line after {first:?}");
    // The second line comes 10 s later, past proxy_read_timeout.
    let (all, _) = read_to_eof(&mut conn, got, Duration::from_secs(15));
    assert!(String::from_utf8_lossy(&all).contains("second"), "{all:?}");

    // events: an event must arrive while the request is open (this test's container
    // only: its label, so that other tests' events do not end the wait).
    let label = nds_tests::unique("nds-heads-events");
    let mut ev = Conn::connect(&nginx.addr());
    let r = raw::request(
        &mut ev,
        &format!(
            "GET /v1.41/events?filters=%7B%22label%22%3A%5B%22nds%3D{label}%22%5D%7D HTTP/1.1\r\n\
             Host: d\r\n\r\n"
        ),
    );
    assert_eq!(r.status(), 200);
    let t0 = Instant::now();
    let with_label = format!("nds={label}");
    let id2 = direct(&[
        "create",
        "--label",
        &with_label,
        "--network",
        "none",
        &image(),
        "true",
    ]);
    c.0.push(id2.clone());
    let mut got = r.rest;
    while !String::from_utf8_lossy(&got).contains(&id2) && t0.elapsed() < Duration::from_secs(10) {
        got = read_at_least(
            &mut ev,
            got.clone(),
            got.len() + 1,
            Duration::from_millis(500),
        );
    }
    assert!(
        String::from_utf8_lossy(&got).contains(&id2),
        "no live event within {:?}: {got:?}",
        t0.elapsed()
    );
    nginx.assert_healthy();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_exec_through_the_module() {
    use bollard::exec::{CreateExecOptions, StartExecResults};
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;

    let nginx = Nginx::start(&NginxConf::docker(true, Recipe::Defaults));
    let mut c = Containers(vec![]);
    let id = cat_container(&mut c);
    let docker =
        bollard::Docker::connect_with_http(&nginx.host(), 60, bollard::API_DEFAULT_VERSION)
            .unwrap()
            .negotiate_version()
            .await
            .unwrap();

    let exec = docker
        .create_exec(
            &id,
            CreateExecOptions {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(vec!["sh", "-c", "tr a-z A-Z; echo done >&2"]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = docker.start_exec(&exec.id, None).await.unwrap()
    else {
        panic!("exec started detached");
    };
    input.write_all(b"hello bollard\n").await.unwrap();
    input.shutdown().await.unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let collect = async {
        while let Some(item) = output.next().await {
            match item.unwrap() {
                bollard::container::LogOutput::StdOut { message } => {
                    out.extend_from_slice(&message)
                }
                bollard::container::LogOutput::StdErr { message } => {
                    err.extend_from_slice(&message)
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), collect)
        .await
        .expect("exec output ended");
    assert_eq!(out, b"HELLO BOLLARD\n");
    assert_eq!(err, b"done\n");
    let inspect = docker.inspect_exec(&exec.id).await.unwrap();
    assert_eq!(inspect.exit_code, Some(0));
    nginx.assert_healthy();
}

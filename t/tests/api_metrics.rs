//! `docker_api_metrics`: after a mixed run (allowed, refused and unchecked requests from
//! both CLIs and raw HTTP, tunnels from `run -i`), the counters equal what the access
//! log says: requests by operation and decision, tunnels opened and how they ended, none
//! left open. The metrics location's own requests are neither checked nor counted.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use nds_tests::cli::{docker, Input};
use nds_tests::nginx::{Nginx, NginxConf, Recipe};
use nds_tests::raw::{self, read_to_eof, Conn};
use nds_tests::{docker_sock, image, root, Cli};

fn conf(port: u16, logs: &Path) -> NginxConf {
    let mut conf = NginxConf::docker(true, Recipe::Recommended);
    conf.http = format!(
        r#"
    log_format ops '$uri|$docker_api_operation|$docker_api_decision|$docker_stream';
    access_log {logs}/ops.log ops;
    server {{
        listen 127.0.0.1:{port};
        access_log {logs}/ops.log ops;
        docker_api_deny containers.exec;
        docker_api_allow read containers.create containers.attach containers.lifecycle;
        location / {{ include {conf}; proxy_pass http://unix:{sock}; }}
        location = /metrics {{ docker_api_metrics; }}
    }}
"#,
        logs = logs.display(),
        conf = root().join("nginx-config/docker-api.conf").display(),
        sock = docker_sock().display(),
    );
    conf
}

fn get(addr: &str, path: &str) -> (u16, String) {
    let mut conn = Conn::connect(addr);
    conn.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let r = raw::read_head(&mut conn);
    let (body, _) = read_to_eof(&mut conn, r.rest.clone(), Duration::from_secs(10));
    (r.status(), String::from_utf8_lossy(&body).into_owned())
}

/// `(operation, decision) -> count` from the access log, without the metrics location.
fn from_log(log: &str) -> (BTreeMap<(String, String), u64>, u64) {
    let mut requests = BTreeMap::new();
    let mut tunnels = 0;
    for line in log.lines() {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() != 4 || f[0] == "/metrics" {
            continue;
        }
        let decision = if f[2].is_empty() { "none" } else { f[2] };
        *requests
            .entry((f[1].to_string(), decision.to_string()))
            .or_insert(0) += 1;
        if !f[3].is_empty() {
            tunnels += 1;
        }
    }
    (requests, tunnels)
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

fn from_metrics(text: &str) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("docker_api_requests_total{operation=\"") else {
            continue;
        };
        let (op, rest) = rest.split_once("\",decision=\"").unwrap();
        let (decision, n) = rest.split_once("\"} ").unwrap();
        m.insert((op.to_string(), decision.to_string()), n.parse().unwrap());
    }
    m
}

#[test]
fn counters_match_the_access_log_after_a_mixed_run() {
    let logs = tempfile::tempdir().unwrap();
    let (nginx, ports) = Nginx::start_with_ports(1, |p| conf(p[0], logs.path()));
    let checked = format!("127.0.0.1:{}", ports[0]);
    let host = format!("tcp://{checked}");
    let t = Duration::from_secs(60);
    let mut c = nds_tests::cli::Containers(Vec::new());
    let sleeper =
        nds_tests::cli::direct(&["run", "-d", "--network", "none", &image(), "sleep", "300"]);
    c.0.push(sleeper.clone());
    for cli in Cli::all() {
        let out = docker(&cli, &host, &["ps"], Input::None, t);
        assert!(out.ok(), "{}", out.brief());
        let out = docker(
            &cli,
            &host,
            &["run", "--rm", "-i", "--network", "none", &image(), "cat"],
            Input::Bytes(b"hi\n".to_vec()),
            t,
        );
        assert!(out.ok(), "{}", out.brief());
        let out = docker(&cli, &host, &["exec", &sleeper, "true"], Input::None, t);
        assert!(!out.ok(), "{}", out.brief());
        // Unchecked: the location without rules.
        let out = docker(&cli, &nginx.host(), &["version"], Input::None, t);
        assert!(out.ok(), "{}", out.brief());
    }
    assert_eq!(get(&checked, "/nope").0, 403);

    // Until the last requests' lines are written, and their tunnels closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, text) = get(&checked, "/metrics");
        assert_eq!(status, 200, "{text}");
        let log = std::fs::read_to_string(logs.path().join("ops.log")).unwrap_or_default();
        let (want, tunnels) = from_log(&log);
        let got = from_metrics(&text);
        let open = metric(&text, "docker_stream_tunnels_open");
        let total = metric(&text, "docker_stream_tunnels_total");
        let done = metric(&text, "docker_stream_tunnel_ends_total{reason=\"done\"}");
        if got == want && open == 0 && total == tunnels && done == total {
            assert!(total >= 2, "{text}");
            assert!(
                got.get(&("ContainerExec".into(), "deny".into())).copied() >= Some(2),
                "{text}"
            );
            assert!(
                got.get(&("SystemVersion".into(), "none".into())).copied() >= Some(2),
                "{text}"
            );
            assert!(got.contains_key(&(String::new(), "deny".into())), "{text}");
            assert!(
                metric(
                    &text,
                    "docker_stream_tunnel_bytes_total{direction=\"to_daemon\"}"
                ) > 0
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the counters do not match the access log:\nmetrics: {got:?}\nlog: {want:?}\n\
             tunnels open {open}, total {total}, done {done}, in the log {tunnels}\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Not a Docker API request: a POST to the metrics location is refused by it.
    let mut conn = Conn::connect(&checked);
    let r = raw::request(
        &mut conn,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status(), 405);
    nginx.assert_healthy();
}

//! Shared by the image, TLS and auth_request tests (tests/image.rs,
//! tests/image_allowlist_gen.rs, tests/nginx_config.rs): the image and its containers,
//! certificates made with the `openssl` CLI, a small authentication service, docker
//! CLI configurations, a raw HTTP request and a raw TLS client.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nds_tests::cli::{direct, docker, docker_env, Containers, Input, Out};
use nds_tests::raw::{read_head, read_to_eof, Conn};
use nds_tests::{direct_host, docker_sock, free_port, root, Cli};

// --- the image ----------------------------------------------------------------------

/// The image under test, built at most once per test binary.
pub fn image_tag() -> String {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        if let Ok(tag) = std::env::var("NDS_IMAGE_TAG") {
            return tag;
        }
        let run = |what: &str, cmd: &mut Command| {
            let started = Instant::now();
            let out = cmd
                .current_dir(root())
                .env("DOCKER_HOST", direct_host())
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            assert!(
                out.status.success(),
                "{what} failed:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
            println!("{what}: {:.0?}", started.elapsed());
        };
        let tag = "nds-proxy:test".to_string();
        run(
            "scripts/build-image",
            Command::new(root().join("scripts/build-image")).arg(&tag),
        );
        tag
    })
    .clone()
}

/// What `docker run`, `exec`, `attach`, `logs`, `kill` and `rm` need from the image's
/// allow-list (Tecnativa's newer switches).
pub const RUN_AND_EXEC: &[(&str, &str)] = &[
    ("CONTAINERS", "1"),
    ("ALLOW_EXEC", "1"),
    ("ALLOW_ATTACH", "1"),
    ("ALLOW_LOGS", "1"),
    ("ALLOW_KILL", "1"),
    ("POST", "1"),
    ("DELETE", "1"),
];

/// [`RUN_AND_EXEC`] and `more`.
pub fn run_and_exec<'a>(more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    RUN_AND_EXEC
        .iter()
        .copied()
        .chain(more.iter().copied())
        .collect()
}

/// A proxy container from the image, listening on 127.0.0.1:<port>; removed on drop.
pub struct Proxy {
    pub id: String,
    pub port: u16,
    _rm: Containers,
}

impl Proxy {
    pub fn start(env: &[(&str, &str)]) -> Proxy {
        Self::start_with(env, &[])
    }

    /// With more `docker run` arguments (mounts).
    pub fn start_with(env: &[(&str, &str)], docker_args: &[&str]) -> Proxy {
        let volume = format!("{}:/var/run/docker.sock", docker_sock().display());
        let mut args = vec!["-v", volume.as_str()];
        args.extend(docker_args);
        Self::start_bare(env, &args)
    }

    /// Without the daemon's socket: `docker_args` mount the upstream (and `env` names
    /// it, SOCKET_PATH or UPSTREAM).
    pub fn start_bare(env: &[(&str, &str)], docker_args: &[&str]) -> Proxy {
        let tag = image_tag();
        let port = free_port();
        let listen = format!("LISTEN=127.0.0.1:{port}");
        let mut args = vec!["run", "-d", "--network", "host", "-e", &listen];
        let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for p in &pairs {
            args.extend(["-e", p.as_str()]);
        }
        args.extend(docker_args);
        args.push(&tag);
        let id = direct(&args);
        let proxy = Proxy {
            id: id.clone(),
            port,
            _rm: Containers(vec![id]),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                proxy.running() && Instant::now() < deadline,
                "the proxy did not start listening ({pairs:?}):\n{}",
                proxy.logs().brief()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    pub fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn running(&self) -> bool {
        direct(&["inspect", "-f", "{{.State.Running}}", &self.id]) == "true"
    }

    /// `docker exec` in the proxy's container.
    pub fn exec(&self, args: &[&str]) -> Out {
        direct_out(&[&["exec", self.id.as_str()][..], args].concat(), 20)
    }

    pub fn logs(&self) -> Out {
        direct_out(&["logs", &self.id], 20)
    }
}

/// The docker CLI on the daemon's socket, within `secs` seconds.
pub fn direct_out(args: &[&str], secs: u64) -> Out {
    docker(
        &Cli::setup(),
        &direct_host(),
        args,
        Input::None,
        Duration::from_secs(secs),
    )
}

/// One raw HTTP/1.1 request; returns the status, the Content-Type and the body.
/// `extra` is more header lines, or a JSON body when it starts with `{`.
pub fn raw(addr: &str, method: &str, target: &str, extra: &str) -> (u16, String, String) {
    let mut conn = Conn::connect(addr);
    let (headers, body) = if extra.starts_with('{') {
        (
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                extra.len()
            ),
            extra,
        )
    } else {
        (extra.to_string(), "")
    };
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: docker\r\n{headers}Connection: close\r\n\r\n{body}"
    );
    conn.write_all(head.as_bytes()).unwrap();
    let resp = read_head(&mut conn);
    let (body, _) = read_to_eof(&mut conn, resp.rest.clone(), Duration::from_secs(5));
    (
        resp.status(),
        resp.header("Content-Type").unwrap_or_default().to_string(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

// --- certificates: the harness's (nds_tests::certs) ---------------------------------

#[allow(unused_imports)]
pub use nds_tests::certs::Certs;

/// A docker CLI configuration directory whose config.json carries `X-Auth-Token: token`
/// in "HttpHeaders" (none when `token` is None).
pub fn docker_config(token: Option<&str>) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let json = match token {
        Some(t) => format!("{{\"HttpHeaders\": {{\"X-Auth-Token\": \"{t}\"}}}}"),
        None => "{}".to_string(),
    };
    std::fs::write(d.path().join("config.json"), json).unwrap();
    d
}

/// The authentication service: 204 when the request has `X-Auth-Token: good`; 204 with
/// `X-Docker-Tenant: NAME` for `X-Auth-Token: tenant-NAME` (the gateway's tenant named
/// by the service); 401 otherwise. Records every request head it got.
pub struct AuthService {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl AuthService {
    pub fn start() -> AuthService {
        Self::spawn(false)
    }

    /// Accepts connections and never answers (a hung service).
    pub fn hanging() -> AuthService {
        Self::spawn(true)
    }

    fn spawn(hang: bool) -> AuthService {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind auth service");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                if hang {
                    held.push(conn);
                    continue;
                }
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let token = head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case("x-auth-token")
                            .then(|| v.trim().to_string())
                    });
                    log.lock().unwrap().push(head);
                    let resp = match token.as_deref() {
                        Some("good") => {
                            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_string()
                        }
                        Some(t) if t.starts_with("tenant-") => format!(
                            "HTTP/1.1 204 No Content\r\nX-Docker-Tenant: {}\r\nConnection: close\r\n\r\n",
                            &t["tenant-".len()..]
                        ),
                        _ => "HTTP/1.1 401 Unauthorized\r\nContent-Length: 13\r\nConnection: close\r\n\r\nno such token".to_string(),
                    };
                    let _ = conn.write_all(resp.as_bytes());
                });
            }
        });
        AuthService { port, seen }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/check", self.port)
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// An URL on a port where nothing listens (a service that is down).
pub fn closed_url() -> String {
    format!("http://127.0.0.1:{}/check", nds_tests::free_port())
}

/// `docker args...` against `host` with extra environment, 60 s at most.
pub fn run_env(cli: &Cli, host: &str, args: &[&str], input: Input, env: &[(&str, &str)]) -> Out {
    docker_env(cli, host, args, input, Duration::from_secs(60), env)
}

/// Containers carrying the label `nds-test=<value>`, on the direct socket.
pub fn labelled(value: &str) -> String {
    direct(&["ps", "-aq", "--filter", &format!("label=nds-test={value}")])
}

/// One `GET path` over TLS with `openssl s_client`, presenting `cert`/`key` when given;
/// returns what the server answered (head and body).
pub fn tls_get(addr: &str, ca: &Path, cert_key: Option<(&Path, &Path)>, path: &str) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-quiet",
        "-verify_return_error",
        "-connect",
        addr,
    ])
    .arg("-CAfile")
    .arg(ca);
    if let Some((cert, key)) = cert_key {
        cmd.arg("-cert").arg(cert).arg("-key").arg(key);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let req = format!("GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(req.as_bytes()).unwrap();
    // Keep stdin open until the answer came: s_client quits at stdin EOF.
    let mut out = String::new();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(stdin);
    reader.join().unwrap()
}

//! The paths to the synthetic daemon: the direct connection, nginx with the module (on
//! TCP and on a unix socket, splice on and off), stock nginx, HAProxy as Tecnativa's
//! docker-socket-proxy runs it, socat, and the floor relay; and a client's tunnel.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nds_tests::{free_port, Nginx, NginxConf, Recipe};

use crate::cost;

#[derive(Clone)]
pub enum Target {
    Unix(PathBuf),
    Tcp(u16),
}

impl Target {
    /// As nginx's `proxy_pass http://...` names it.
    pub fn nginx_upstream(&self) -> String {
        match self {
            Target::Unix(p) => format!("unix:{}", p.display()),
            Target::Tcp(port) => format!("127.0.0.1:{port}"),
        }
    }
}

/// The proxies in front of one synthetic daemon (on a unix socket or on TCP).
pub struct Peers {
    pub daemon: Target,
    listen_dir: tempfile::TempDir,
    pub module: Nginx,
    pub module_copy: Nginx,
    /// `docker_stream_splice on`: splices into TCP too, which `auto` does not.
    pub module_splice: Nginx,
    pub stock: Nginx,
    pub haproxy: Option<(Child, u16, tempfile::TempDir)>,
    pub socat: Option<(Child, u16)>,
    /// The floor: a splice relay written for the benchmark.
    pub relay: Option<(Child, u16)>,
}

/// One path to the daemon: its name in the tables, where a client connects, and the
/// processes that carry it (none for the direct connection).
pub struct Path {
    pub name: &'static str,
    pub target: Target,
    pub pids: Vec<u32>,
}

impl Peers {
    pub fn start(daemon: &Target) -> Peers {
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
        let mut module_splice = tune(NginxConf::new(true, Recipe::Defaults, &upstream));
        module_splice.location = format!("docker_stream_splice on; {}", module_splice.location);
        let stock = tune(NginxConf::new(false, Recipe::WebSocket, &upstream));
        Peers {
            daemon: daemon.clone(),
            listen_dir,
            module: Nginx::start(&module),
            module_copy: Nginx::start(&module_copy),
            module_splice: Nginx::start(&module_splice),
            stock: Nginx::start(&stock),
            haproxy: start_haproxy(daemon),
            socat: start_socat(daemon),
            relay: cost::start_relay(daemon),
        }
    }

    /// The paths to the daemon, the direct connection first.
    pub fn targets(&self) -> Vec<Path> {
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
            name: "nginx + module, splice on",
            target: Target::Tcp(self.module_splice.port),
            pids: workers(&self.module_splice),
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

pub fn start_haproxy(daemon: &Target) -> Option<(Child, u16, tempfile::TempDir)> {
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
    run_haproxy(dir, port, &cfg)
}

/// HAProxy with `cfg` (written into `dir`), once it listens on `port`.
pub fn run_haproxy(
    dir: tempfile::TempDir,
    port: u16,
    cfg: &str,
) -> Option<(Child, u16, tempfile::TempDir)> {
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

pub fn start_socat(daemon: &Target) -> Option<(Child, u16)> {
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

pub fn which(cmd: &str) -> Option<()> {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .stdout(Stdio::null())
        .status()
        .ok()?
        .success()
        .then_some(())
}

pub fn wait_port(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("port {port} did not open");
}

pub enum Stream {
    Unix(UnixStream),
    Tcp(std::net::TcpStream),
}

impl Stream {
    pub fn connect(t: &Target) -> Stream {
        match t {
            Target::Unix(p) => Stream::Unix(UnixStream::connect(p).unwrap()),
            Target::Tcp(port) => {
                let s = std::net::TcpStream::connect(("127.0.0.1", *port)).unwrap();
                s.set_nodelay(true).unwrap();
                Stream::Tcp(s)
            }
        }
    }
    pub fn io(&mut self) -> &mut dyn ReadWrite {
        match self {
            Stream::Unix(s) => s,
            Stream::Tcp(s) => s,
        }
    }
}

pub trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Opens a tunnel to `path` and returns it with any bytes read past the head.
pub fn open(t: &Target, path: &str) -> (Stream, Vec<u8>) {
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

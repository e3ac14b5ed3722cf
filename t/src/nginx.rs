//! Starts the real nginx in the foreground with a generated configuration.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The proxy configurations the matrix runs through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipe {
    /// `proxy_pass` and nothing else: nginx defaults (buffering on, HTTP/1.0 upstream).
    Defaults,
    /// `proxy_buffering off`.
    BufferingOff,
    /// The usual WebSocket recipe: HTTP/1.1 upstream, Upgrade and Connection forwarded.
    WebSocket,
    /// `auth_request` to a second server in the same nginx.
    AuthRequest,
    /// `nginx-config/docker-api.conf`, the configuration we recommend.
    Recommended,
}

impl Recipe {
    pub const ALL: [Recipe; 5] = [
        Recipe::Defaults,
        Recipe::BufferingOff,
        Recipe::WebSocket,
        Recipe::AuthRequest,
        Recipe::Recommended,
    ];

    /// Directives inside `location /`, proxying to `upstream` (e.g. `unix:/var/run/docker.sock`).
    pub fn location(self, upstream: &str) -> String {
        self.location_url(&format!("http://{upstream}"))
    }

    /// The same, with the whole `proxy_pass` URL (e.g. `https://127.0.0.1:2376`).
    pub fn location_url(self, url: &str) -> String {
        let pass = format!("proxy_pass {url};");
        match self {
            Recipe::Defaults => pass,
            Recipe::BufferingOff => format!("proxy_buffering off; {pass}"),
            Recipe::WebSocket => format!(
                "proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; \
                 proxy_set_header Connection \"upgrade\"; {pass}"
            ),
            Recipe::AuthRequest => format!("auth_request /_auth; {pass}"),
            Recipe::Recommended => format!(
                "include {}; {pass}",
                crate::root().join("nginx-config/docker-api.conf").display()
            ),
        }
    }
}

#[derive(Clone, Debug)]
pub struct NginxConf {
    /// Load the module (false: the control, stock nginx).
    pub module: bool,
    /// Directives inside `location /`.
    pub location: String,
    /// Extra directives in `server {}` (e.g. more locations).
    pub server: String,
    /// Extra parameters of the main server's `listen` (e.g. ` ssl`).
    pub listen: String,
    /// Extra directives in `http {}`.
    pub http: String,
    /// Run as a daemon (needed for a binary upgrade: nginx refuses USR2 while the
    /// process that started it is its parent).
    pub daemon: bool,
    /// Extra directives in the main context, and `worker_connections`.
    pub main: String,
    pub worker_connections: u32,
    /// Another nginx binary and module build (e.g. Debian's nginx 1.22).
    pub nginx_bin: Option<PathBuf>,
    pub module_file: Option<PathBuf>,
}

impl NginxConf {
    pub fn new(module: bool, recipe: Recipe, upstream: &str) -> Self {
        NginxConf {
            module,
            location: recipe.location(upstream),
            server: String::new(),
            listen: String::new(),
            http: String::new(),
            daemon: false,
            main: String::new(),
            worker_connections: 4096,
            nginx_bin: None,
            module_file: None,
        }
    }

    /// The direct docker socket as upstream.
    pub fn docker(module: bool, recipe: Recipe) -> Self {
        Self::new(
            module,
            recipe,
            &format!("unix:{}", crate::docker_sock().display()),
        )
    }
}

/// A running nginx; stopped on drop.
pub struct Nginx {
    child: Option<Child>,
    daemon: bool,
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// Port of the auth server block (`/_auth` subrequests go there).
    pub auth_port: u16,
}

/// Access log line: `METHOD URI STATUS ds=$docker_stream bs=... ubs=... ubr=... rt=...`.
fn log_format(module: bool) -> String {
    format!(
        "log_format ds '$request_method $uri $status ds={} bs=$bytes_sent \
         ubs=$upstream_bytes_sent ubr=$upstream_bytes_received rt=$request_time';",
        if module { "$docker_stream" } else { "-" }
    )
}

impl Nginx {
    pub fn start(conf: &NginxConf) -> Nginx {
        // free_port() releases the port it found, so a test running in parallel may take
        // it first: nginx then fails to bind, and a readiness check by connecting would
        // reach the other test's nginx. Such a start is retried on other ports.
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start(conf) {
                Ok(n) => return n,
                Err(log) if log.contains("Address already in use") => last = log,
                Err(log) => panic!("{log}"),
            }
        }
        panic!("nginx found no free port in 5 attempts:\n{last}");
    }

    /// Starts nginx with `n` more listening ports that `make` writes into the
    /// configuration (extra `server` blocks). A port that another test takes between
    /// `free_port` and nginx's bind is retried with new ports.
    pub fn start_with_ports(n: usize, make: impl Fn(&[u16]) -> NginxConf) -> (Nginx, Vec<u16>) {
        let mut last = String::new();
        for _ in 0..3 {
            let ports: Vec<u16> = (0..n).map(|_| crate::free_port()).collect();
            let conf = make(&ports);
            // Nginx::start panics after its own retries of the main port.
            match std::panic::catch_unwind(|| Nginx::start(&conf)) {
                Ok(nginx) => return (nginx, ports),
                Err(e) => {
                    last = e
                        .downcast_ref::<String>()
                        .cloned()
                        .unwrap_or_else(|| "nginx did not start".into())
                }
            }
        }
        panic!("nginx did not start with {n} more ports in 3 attempts:\n{last}");
    }

    fn try_start(conf: &NginxConf) -> Result<Nginx, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = crate::free_port();
        let auth_port = crate::free_port();
        let text = render(conf, dir.path(), port, auth_port);
        std::fs::write(dir.path().join("nginx.conf"), &text).unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();

        let bin = conf.nginx_bin.clone().unwrap_or_else(crate::nginx_bin);
        let mut cmd = Command::new(bin);
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // scripts/test-asan --debian: an ASan runtime preloaded into an nginx that was
        // not built with ASan, for a module that was (not into the tests or the CLIs).
        if let Some(preload) = std::env::var_os("NDS_NGINX_PRELOAD") {
            cmd.env("LD_PRELOAD", preload);
        }
        let child = cmd.spawn().expect("start nginx");
        let mut n = Nginx {
            child: Some(child),
            daemon: conf.daemon,
            dir,
            port,
            auth_port,
        };
        n.wait_ready()?;
        Ok(n)
    }

    /// Waits until this nginx has bound its ports (it writes its pid file after that)
    /// and accepts connections; `Err` with the error log and config if it exited.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid_file = self.dir.path().join("logs/nginx.pid");
        while Instant::now() < deadline {
            if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
                if !(self.daemon && s.success()) {
                    let err = format!(
                        "nginx exited at start ({s}):\n{}\nconfig:\n{}",
                        self.error_log(),
                        std::fs::read_to_string(self.dir.path().join("nginx.conf")).unwrap()
                    );
                    // Nothing to stop: keep Drop from signalling a stale pid.
                    self.child = None;
                    self.daemon = false;
                    return Err(err);
                }
            }
            let bound =
                std::fs::read_to_string(&pid_file).is_ok_and(|p| p.trim().parse::<i32>().is_ok());
            // The master accepts into its backlog before it has forked a worker; tests
            // that look at the workers' descriptors need one.
            if bound
                && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && !self.worker_pids().is_empty()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nginx did not listen in time:\n{}", self.error_log());
    }

    pub fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }

    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/access.log")).unwrap_or_default()
    }

    /// No worker died, no Rust panic was caught, nothing at `alert` level or worse.
    pub fn assert_healthy(&self) {
        let log = self.error_log();
        for bad in ["exited on signal", "internal error", "[alert]", "[emerg]"] {
            assert!(
                !log.contains(bad),
                "nginx error log contains {bad:?}:\n{log}"
            );
        }
    }

    /// The master's PID, from the pid file (nginx writes it just after it starts to
    /// listen, so this waits for it a little).
    pub fn master_pid(&self) -> i32 {
        let file = self.dir.path().join("logs/nginx.pid");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(pid) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|p| p.trim().parse().ok())
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "no nginx pid file");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The PIDs of the master's children (the workers), sorted.
    pub fn worker_pids(&self) -> Vec<i32> {
        let master = self.master_pid();
        let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
            .unwrap_or_default();
        let mut pids: Vec<i32> = children
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        pids.sort_unstable();
        pids
    }

    /// The resident memory of the (first) worker process, in KiB.
    pub fn worker_rss_kib(&self) -> u64 {
        let Some(worker) = self.worker_pids().into_iter().next() else {
            return 0;
        };
        std::fs::read_to_string(format!("/proc/{worker}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if self.daemon {
            // Whichever master the pid file names now (a binary upgrade replaces it).
            if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("logs/nginx.pid")) {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    // SAFETY: a plain signal to our own nginx.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
            return;
        }
        if let Some(mut c) = self.child.take() {
            // SAFETY-free: a plain signal to our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn render(conf: &NginxConf, dir: &Path, port: u16, auth_port: u16) -> String {
    let mut s = String::new();
    if conf.module {
        let module = conf.module_file.clone().unwrap_or_else(crate::module_path);
        writeln!(s, "load_module {};", module.display()).unwrap();
    }
    // The daemon's socket is root's: workers run as root, as in the prebuilt image.
    // SAFETY-free: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        s.push_str("user root;\n");
    }
    write!(
        s,
        r#"daemon {daemon};
master_process on;
worker_processes 1;
error_log {dir}/logs/error.log info;
pid {dir}/logs/nginx.pid;
{main}
events {{ worker_connections {wc}; }}
http {{
    {log_format}
    access_log {dir}/logs/access.log ds;
    {http}
    server {{
        listen 127.0.0.1:{auth_port};
        location / {{
            if ($http_x_nds_auth = "deny") {{ return 401; }}
            return 204;
        }}
    }}
    server {{
        listen 127.0.0.1:{port}{listen};
        location = /_auth {{
            internal;
            proxy_pass http://127.0.0.1:{auth_port};
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        {server}
        location / {{
            {location}
        }}
    }}
}}
"#,
        dir = dir.display(),
        log_format = log_format(conf.module),
        main = conf.main,
        daemon = if conf.daemon { "on" } else { "off" },
        wc = conf.worker_connections,
        http = conf.http,
        server = conf.server,
        listen = conf.listen,
        location = conf.location,
    )
    .unwrap();
    s
}

/// Runs `nginx -t` on a configuration with the module loaded and `http_extra` in `http {}`;
/// returns (success, output).
pub fn config_test(http_extra: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let text = format!(
        "load_module {};\nerror_log {}/logs/error.log;\npid {}/logs/nginx.pid;\nevents {{}}\nhttp {{\n{http_extra}\n}}\n",
        crate::module_path().display(),
        dir.path().display(),
        dir.path().display()
    );
    std::fs::write(dir.path().join("nginx.conf"), text).unwrap();
    let out = Command::new(crate::nginx_bin())
        .arg("-t")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .output()
        .expect("nginx -t");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

//! The multi-tenant gateway (`nginx-config/gateway.conf`, included as it is with only
//! tenants, daemons, paths and ports replaced): three private dockerds, two on unix
//! sockets and one reached over TLS, each the daemon of one tenant's client certificate.
//! Driven with both docker CLIs: each tenant sees only its own daemon, hijacks work on
//! every path, another tenant's container is answered by the tenant's own daemon,
//! unknown, foreign-CA and revoked certificates are refused, the access log names the
//! tenant, and a reload adds a tenant while 20 sessions of the others stream.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{docker_config, AuthService, Certs};
use nds_tests::cases::slow_checksum;
use nds_tests::cli::{docker, docker_env, tls_host, Input};
use nds_tests::dockerd::PrivateDockerd;
use nds_tests::{free_port, image, root, Cli, Nginx, NginxConf, Recipe};

struct Tenant {
    name: &'static str,
    /// Index into the daemons.
    daemon: usize,
}

const TENANTS: [Tenant; 3] = [
    Tenant {
        name: "alice",
        daemon: 0,
    },
    Tenant {
        name: "bob",
        daemon: 1,
    },
    Tenant {
        name: "carol",
        daemon: 2,
    },
];

/// The snippet with each (from, to) replaced; every `from` must occur.
fn snippet(replace: &[(&str, String)]) -> String {
    let path = root().join("nginx-config/gateway.conf");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in replace {
        assert!(
            text.contains(from),
            "gateway.conf no longer contains {from:?}"
        );
        text = text.replace(from, to);
    }
    text
}

struct Gateway {
    /// Files under the names the snippet uses.
    dir: PathBuf,
    port: u16,
    /// The daemons: these unix sockets, then the TLS daemon on this port, if any.
    socks: Vec<PathBuf>,
    tls_port: Option<u16>,
}

impl Gateway {
    /// A gateway in `dir` with the certificates and files the snippet names.
    fn new(
        dir: &Path,
        certs: &Certs,
        crl: &Path,
        socks: Vec<PathBuf>,
        tls_port: Option<u16>,
    ) -> Gateway {
        let gw = Gateway {
            dir: dir.to_path_buf(),
            port: free_port(),
            socks,
            tls_port,
        };
        let server = |f: &str| certs.path(&format!("server/{f}"));
        for (from, to) in [
            (server("server-cert.pem"), "server-cert.pem"),
            (server("server-key.pem"), "server-key.pem"),
            (server("ca.pem"), "ca.pem"),
            (server("ca.pem"), "daemons-ca.pem"),
            (crl.to_path_buf(), "crl.pem"),
            (certs.path("good/cert.pem"), "daemon-client-cert.pem"),
            (certs.path("good/key.pem"), "daemon-client-key.pem"),
        ] {
            copy(&from, &gw.dir.join(to));
        }
        gw
    }

    /// The snippet for `tenants` (name, certificate fingerprint, daemon index) and, as
    /// read-only, `read_only`.
    fn render(&self, tenants: &[(&str, String, usize)], read_only: &str) -> String {
        self.render_with(tenants, read_only, vec![])
    }

    /// With more replacements.
    fn render_with(
        &self,
        tenants: &[(&str, String, usize)],
        read_only: &str,
        more: Vec<(&str, String)>,
    ) -> String {
        let map: String = tenants
            .iter()
            .map(|(name, fp, _)| format!("    {fp}  {name};\n"))
            .collect();
        let daemon_map: String = tenants
            .iter()
            .map(|(name, _, d)| {
                let scheme = if *d < self.socks.len() {
                    "http"
                } else {
                    "https"
                };
                format!("    {name}   {scheme}://docker_d{d};\n")
            })
            .collect();
        let mut upstreams: String = self
            .socks
            .iter()
            .enumerate()
            .map(|(d, sock)| {
                format!(
                    "upstream docker_d{d} {{ server unix:{}; }}\n",
                    sock.display()
                )
            })
            .collect();
        if let Some(port) = self.tls_port {
            let d = self.socks.len();
            upstreams += &format!("upstream docker_d{d} {{ server 127.0.0.1:{port}; }}\n");
        }
        let dir = format!("{}/", self.dir.display());
        let mut replace = vec![
            (
                "    # 3f6c0d...64 hex digits...  alice;\n    # 9a1e47...                 bob;\n",
                map,
            ),
            (
                "    alice   http://docker_alice;\n    bob     https://docker_bob;\n",
                daemon_map,
            ),
            (
                "upstream docker_alice {\n    server unix:/run/docker-alice/docker.sock;\n}\n\
                 upstream docker_bob {\n    # dockerd --tlsverify -H tcp://0.0.0.0:2376 on another machine.\n    server 192.0.2.12:2376;\n}\n",
                upstreams,
            ),
            ("    bob      docker-bob.example;\n", String::new()),
            ("\"~^carol:(?!GET$|HEAD$)\"", format!("\"~^{read_only}:(?!GET$|HEAD$)\"")),
            ("listen 2376 ssl;", format!("listen 127.0.0.1:{} ssl;", self.port)),
            ("/etc/nginx/docker-gateway/", dir.clone()),
            (
                "/var/log/nginx/docker-gateway.log",
                format!("{dir}gateway.log"),
            ),
            (
                "/etc/nginx/docker-api.conf",
                root().join("nginx-config/docker-api.conf").display().to_string(),
            ),
        ];
        replace.extend(more);
        snippet(&replace)
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.join("gateway.conf")
    }

    fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default()
    }
}

fn run(cli: &Cli, host: &str, args: &[&str], input: Input) -> nds_tests::Out {
    docker(cli, host, args, input, Duration::from_secs(60))
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {from:?}: {e}"));
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn gateway_routes_each_certificate_to_its_daemon() {
    let certs = Certs::generate();
    for name in ["alice", "bob", "carol", "dave", "eve", "mallory"] {
        certs.add_client(name);
    }
    let crl = certs.crl(&["mallory"]);
    let tls_port = free_port();
    let daemons = [
        PrivateDockerd::start(),
        PrivateDockerd::start(),
        PrivateDockerd::start_with(Some(certs.daemon_tls(tls_port))),
    ];
    let img = image();
    let mut own = Vec::new();
    for (d, t) in daemons.iter().zip(&TENANTS) {
        d.load_test_image();
        let id = d.named_sleeper(t.name);
        own.push(id);
    }

    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::new(
        dir.path(),
        &certs,
        &crl,
        daemons[..2].iter().map(|d| d.sock()).collect(),
        Some(tls_port),
    );

    // mallory is a tenant too: only the CRL keeps that certificate out.
    let mut tenants: Vec<(&str, String, usize)> = TENANTS
        .iter()
        .map(|t| (t.name, certs.sha256(t.name), t.daemon))
        .collect();
    tenants.push(("mallory", certs.sha256("mallory"), 0));
    std::fs::write(gw.conf_path(), gw.render(&tenants, "dave")).unwrap();
    let mut conf = NginxConf::new(true, Recipe::Defaults, "127.0.0.1:9");
    conf.http = format!("include {};", gw.conf_path().display());
    let nginx = Nginx::start(&conf);
    let addr = format!("127.0.0.1:{}", gw.port);
    let since = unix_now().to_string();
    let host = |who: &str| tls_host(&addr, &certs.path(who));

    for cli in Cli::all() {
        for (t, own_id) in TENANTS.iter().zip(&own) {
            let h = host(t.name);
            // Only the tenant's own daemon.
            let ps = run(&cli, &h, &["ps", "--format", "{{.Names}}"], Input::None);
            println!("  {:5} {:6} ps -> {}", cli.name, t.name, ps.brief());
            assert!(
                ps.ok() && ps.stdout_str() == format!("gw-{}\n", t.name),
                "{}",
                ps.brief()
            );
            // Hijacks through the gateway, half-close included (tr ends at stdin's end).
            let r = run(
                &cli,
                &h,
                &[
                    "run",
                    "--rm",
                    "-i",
                    "--network",
                    "none",
                    &img,
                    "tr",
                    "a-z",
                    "A-Z",
                ],
                Input::Bytes(b"tenant\n".to_vec()),
            );
            assert!(r.ok() && r.stdout_str() == "TENANT\n", "{}", r.brief());
            let e = run(
                &cli,
                &h,
                &["exec", "-i", own_id, "sh", "-c", "cat; echo after-eof"],
                Input::Bytes(b"in\n".to_vec()),
            );
            assert!(
                e.ok() && e.stdout_str() == "in\nafter-eof\n",
                "{} exec: {}",
                t.name,
                e.brief()
            );
            // Another tenant's container: the tenant's own daemon answers.
            let other = &own[(t.daemon + 1) % own.len()];
            let x = run(&cli, &h, &["exec", other, "echo", "x"], Input::None);
            println!(
                "  {:5} {:6} exec into another tenant's -> {}",
                cli.name,
                t.name,
                x.brief()
            );
            assert!(
                !x.ok() && x.stderr.contains("No such container"),
                "{}",
                x.brief()
            );
        }
        // Refused certificates.
        for (who, want) in [
            ("eve", "belongs to no tenant of this gateway"),
            ("mallory", "client certificate rejected"),
            // Go's TLS client offers only a certificate the server's CA list names.
            ("other", "a client certificate is required"),
            ("nocert", "a client certificate is required"),
            ("dave", "belongs to no tenant of this gateway"),
        ] {
            let out = run(&cli, &host(who), &["ps"], Input::None);
            println!("  {:5} {who:7} ps -> {}", cli.name, out.brief());
            assert!(
                !out.ok() && out.stderr.contains(want),
                "{who}: {}",
                out.brief()
            );
        }
    }
    // Each daemon created exactly its own tenant's execs (one per CLI): none came from
    // another tenant.
    let until = (unix_now() + 1).to_string();
    for (d, id) in daemons.iter().zip(&own) {
        let events = d.docker(&[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "event=exec_create",
            "--format",
            "{{.Actor.ID}}",
        ]);
        let want: Vec<&str> = vec![id.as_str(); Cli::all().len()];
        assert_eq!(
            events.lines().collect::<Vec<_>>(),
            want,
            "exec_create events"
        );
    }
    let log = gw.access_log();
    for t in &TENANTS {
        assert!(
            log.contains(&format!("tenant={} \"GET /v", t.name)),
            "no access log line names {}:\n{log}",
            t.name
        );
    }

    // A reload adds dave (bob's daemon, read-only) while 20 sessions of the others stream.
    let clis = Cli::all();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let t = &TENANTS[i % 3];
                let (cli, h, id) = (&clis[i % clis.len()], host(t.name), &own[t.daemon]);
                s.spawn(move || {
                    let (input, want) = slow_checksum(i, 30);
                    let out = run(cli, &h, &["exec", "-i", id, "sha256sum"], input);
                    (out, want)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1200));
        tenants.push(("dave", certs.sha256("dave"), 1));
        std::fs::write(gw.conf_path(), gw.render(&tenants, "dave")).unwrap();
        // SAFETY: a signal to our own nginx master.
        unsafe { libc::kill(nginx.master_pid(), libc::SIGHUP) };
        for h in handles {
            let (out, want) = h.join().unwrap();
            assert!(
                out.ok() && out.stdout_str() == want,
                "session across the reload: {} (want {want:?})",
                out.brief()
            );
        }
    });
    let wait_until = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ps = run(
            &clis[0],
            &host("dave"),
            &["ps", "--format", "{{.Names}}"],
            Input::None,
        );
        if ps.ok() {
            assert_eq!(ps.stdout_str(), "gw-bob\n", "{}", ps.brief());
            break;
        }
        assert!(
            std::time::Instant::now() < wait_until,
            "dave after the reload: {}",
            ps.brief()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let refused = run(
        &clis[0],
        &host("dave"),
        &["run", "--rm", "--network", "none", &img, "true"],
        Input::None,
    );
    assert!(
        !refused.ok() && refused.stderr.contains("tenant dave is read-only"),
        "{}",
        refused.brief()
    );
    nginx.assert_healthy();
}

/// Tenants named by an authentication service (the snippet's optional part 1b): a client
/// without a certificate reaches the daemon of the tenant the service names, only for
/// the names the snippet lists; a certificate and a service naming different tenants are
/// refused.
#[test]
fn gateway_tenants_named_by_an_auth_service() {
    let certs = Certs::generate();
    certs.add_client("alice");
    let crl = certs.crl(&[]);
    let daemons = [PrivateDockerd::start(), PrivateDockerd::start()];
    let mut own = Vec::new();
    for (d, name) in daemons.iter().zip(["alice", "frank"]) {
        d.load_test_image();
        own.push(d.named_sleeper(name));
    }
    let auth = AuthService::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::new(
        dir.path(),
        &certs,
        &crl,
        daemons.iter().map(|d| d.sock()).collect(),
        None,
    );
    let text = gw.render_with(
        &[("alice", certs.sha256("alice"), 0)],
        "nobody",
        vec![
            ("    # frank  frank;\n", "    frank  frank;\n".into()),
            (
                "# auth_request /_docker_auth;",
                "auth_request /_docker_auth;".into(),
            ),
            (
                "ssl_verify_client on;",
                "ssl_verify_client optional;".into(),
            ),
            ("http://127.0.0.1:9000/check", auth.url()),
        ],
    );
    // frank's daemon line (render maps only certificate tenants to daemons).
    let text = text.replace(
        "map $docker_tenant $docker_tenant_daemon {\n    default \"\";\n",
        "map $docker_tenant $docker_tenant_daemon {\n    default \"\";\n    frank http://docker_d1;\n",
    );
    std::fs::write(gw.conf_path(), text).unwrap();
    let mut conf = NginxConf::new(true, Recipe::Defaults, "127.0.0.1:9");
    conf.http = format!("include {};", gw.conf_path().display());
    let nginx = Nginx::start(&conf);
    let addr = format!("127.0.0.1:{}", gw.port);
    let (alice, nocert) = (
        tls_host(&addr, &certs.path("alice")),
        tls_host(&addr, &certs.path("nocert")),
    );
    let token = |t: &str| docker_config(Some(t));
    let (good, frank, names_alice) = (token("good"), token("tenant-frank"), token("tenant-alice"));
    for cli in Cli::all() {
        let run = |h: &str, cfg: &tempfile::TempDir, args: &[&str], input: Input| {
            let dc = cfg.path().to_str().unwrap();
            docker_env(
                &cli,
                h,
                args,
                input,
                Duration::from_secs(60),
                &[("DOCKER_CONFIG", dc)],
            )
        };
        let ps = ["ps", "--format", "{{.Names}}"];
        for (who, h, cfg, want) in [
            ("alice", &alice, &good, "gw-alice\n"),
            ("frank", &nocert, &frank, "gw-frank\n"),
        ] {
            let out = run(h, cfg, &ps, Input::None);
            println!("  {:5} {who:6} ps -> {}", cli.name, out.brief());
            assert!(
                out.ok() && out.stdout_str() == want,
                "{who}: {}",
                out.brief()
            );
        }
        let e = run(
            &nocert,
            &frank,
            &["exec", "-i", &own[1], "sh", "-c", "cat; echo after-eof"],
            Input::Bytes(b"in\n".to_vec()),
        );
        assert!(
            e.ok() && e.stdout_str() == "in\nafter-eof\n",
            "frank exec -i: {}",
            e.brief()
        );
        for (who, h, cfg, want) in [
            ("no tenant named", &nocert, &good, "belongs to no tenant"),
            ("names alice", &nocert, &names_alice, "belongs to no tenant"),
            ("alice as frank", &alice, &frank, "name different tenants"),
        ] {
            let out = run(h, cfg, &ps, Input::None);
            println!("  {:5} {who:16} ps -> {}", cli.name, out.brief());
            assert!(
                !out.ok() && out.stderr.contains(want),
                "{who}: {}",
                out.brief()
            );
        }
    }
    nginx.assert_healthy();
}

//! The image as a multi-tenant gateway (`TENANTS`, a mounted tenants file): two private
//! dockerds, one on a unix socket and one reached over TLS with a client certificate,
//! and three tenants: two by client certificate, one named by the authentication
//! service (`AUTH_URL`, `X-Docker-Tenant`) for a client without a certificate. Driven
//! with both docker CLIs: each tenant reaches only its daemon, hijacks included; refused
//! clients get JSON; a SIGHUP to the container adds a read-only tenant and one on the
//! proxy's own daemon (`-`, none at the start) while sessions stream, and an invalid
//! tenants file at a reload is refused with the old tenants kept.
//! Invalid tenants files are refused at start with the line named.

mod common;

use std::time::{Duration, Instant};

use common::{
    direct_out, docker_config, image_tag, run_and_exec, run_env, AuthService, Certs, Proxy,
};
use nds_tests::cases::slow_checksum;
use nds_tests::cli::{direct, tls_host, Input, Out};
use nds_tests::dockerd::PrivateDockerd;
use nds_tests::{docker_sock, free_port, image, Cli};

/// `sha256:` and the fingerprint as `openssl x509 -fingerprint -sha256` prints it
/// (upper case, colons): the entrypoint takes it as is.
fn openssl_style(hex: &str) -> String {
    let pairs: Vec<String> = hex
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!("sha256:{}", pairs.join(":"))
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + limit;
    loop {
        match ok() {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

#[test]
fn image_gateway_routes_tenants_and_reloads() {
    let certs = Certs::generate();
    for name in ["alice", "bob", "dave", "eve"] {
        certs.add_client(name);
    }
    let tls_port = free_port();
    let unix_d = PrivateDockerd::start();
    let tls_d = PrivateDockerd::start_with(Some(certs.daemon_tls(tls_port)));
    let img = image();
    let mut ids = Vec::new();
    for (d, name) in [(&unix_d, "unix"), (&tls_d, "tls")] {
        d.load_test_image();
        ids.push(d.named_sleeper(name));
    }
    let (unix_id, tls_id) = (ids[0].clone(), ids[1].clone());

    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants.conf");
    let base = format!(
        "# tenant  daemon  identities  options\n\
         alice  unix:///run/docker-alice.sock  sha256:{alice}\n\
         \n\
         bob    https://127.0.0.1:{tls_port}  {bob}   tls=/tenant-certs/bob tls-name=localhost  # over TLS\n\
         carol  unix:///run/docker-alice.sock  auth  read-only\n",
        alice = certs.sha256("alice"),
        bob = openssl_style(&certs.sha256("bob")),
    );
    std::fs::write(&tenants, &base).unwrap();
    let auth = AuthService::start();
    let auth_url = auth.url();
    let plain_port = free_port();
    let listen_plain = format!("127.0.0.1:{plain_port}");
    let mounts = [
        format!("{}:/run/docker-alice.sock", unix_d.sock().display()),
        format!("{}:/tenants:ro", dir.path().display()),
        format!("{}:/certs:ro", certs.path_str("server")),
        format!("{}:/tenant-certs/bob:ro", certs.path_str("good")),
        // No tenant uses it at the start: the reload below adds one ('-').
        format!("{}:/var/run/docker.sock", docker_sock().display()),
    ];
    // On a read-only root filesystem: the start and the reloads render into /run/nds,
    // the tenants' certificates are copied there, the sockets' groups listed there.
    let mut args = vec!["--read-only", "--tmpfs", "/run"];
    for m in &mounts {
        args.extend(["-v", m.as_str()]);
    }
    let env = run_and_exec(&[
        ("TENANTS", "/tenants/tenants.conf"),
        ("AUTH_URL", auth_url.as_str()),
        ("LISTEN_PLAIN", listen_plain.as_str()),
    ]);
    let proxy = Proxy::start_bare(&env, &args);
    // The HEALTHCHECK, with tenants but no daemon of the proxy's own: nginx answers.
    let health = proxy.exec(&["nds-healthcheck"]);
    assert!(
        health.ok() && health.stdout_str().starts_with("healthy: "),
        "{}",
        health.brief()
    );
    let tls_addr = proxy.addr();
    let plain = format!("tcp://{listen_plain}");
    let host = |who: &str| tls_host(&tls_addr, &certs.path(who));
    // Every request passes the authentication service: certificate tenants carry a token
    // that names no tenant; carol's names her.
    let good = docker_config(Some("good"));
    let carol = docker_config(Some("tenant-carol"));
    let as_alice = docker_config(Some("tenant-alice"));
    let cfg = |d: &tempfile::TempDir| d.path().to_str().unwrap().to_string();
    let run = |cli: &Cli, h: &str, conf: &tempfile::TempDir, args: &[&str], input: Input| {
        run_env(cli, h, args, input, &[("DOCKER_CONFIG", &cfg(conf))])
    };

    let tenants_seen = [
        (
            "alice",
            host("alice"),
            &good,
            "gw-unix\n",
            &unix_id,
            &tls_id,
        ),
        ("bob", host("bob"), &good, "gw-tls\n", &tls_id, &unix_id),
    ];
    for cli in Cli::all() {
        for (name, h, conf, ps_want, own, other) in &tenants_seen {
            let ps = run(
                &cli,
                h,
                conf,
                &["ps", "--format", "{{.Names}}"],
                Input::None,
            );
            println!("  {:5} {name:6} ps -> {}", cli.name, ps.brief());
            assert!(ps.ok() && ps.stdout_str() == *ps_want, "{}", ps.brief());
            let r = run(
                &cli,
                h,
                conf,
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
            assert!(
                r.ok() && r.stdout_str() == "TENANT\n",
                "{name} run -i: {}",
                r.brief()
            );
            let e = run(
                &cli,
                h,
                conf,
                &["exec", "-i", own, "sh", "-c", "cat; echo after-eof"],
                Input::Bytes(b"in\n".to_vec()),
            );
            assert!(
                e.ok() && e.stdout_str() == "in\nafter-eof\n",
                "{name} exec -i: {}",
                e.brief()
            );
            let x = run(&cli, h, conf, &["exec", other, "echo", "x"], Input::None);
            assert!(
                !x.ok() && x.stderr.contains("No such container"),
                "{name} exec into the other daemon's container: {}",
                x.brief()
            );
        }
        // carol: no certificate, plain listener, named by the authentication service;
        // read-only.
        let ps = run(
            &cli,
            &plain,
            &carol,
            &["ps", "--format", "{{.Names}}"],
            Input::None,
        );
        println!("  {:5} carol  ps -> {}", cli.name, ps.brief());
        assert!(ps.ok() && ps.stdout_str() == "gw-unix\n", "{}", ps.brief());
        let w = run(
            &cli,
            &plain,
            &carol,
            &["exec", &unix_id, "true"],
            Input::None,
        );
        assert!(
            !w.ok() && w.stderr.contains("tenant carol is read-only"),
            "{}",
            w.brief()
        );
        // Refused.
        let eve = format!(
            "this client is in no tenant (verified client certificate SHA-256: {})",
            certs.sha256("eve")
        );
        for (who, h, conf, want) in [
            ("eve", host("eve"), &good, eve.as_str()),
            (
                "named none",
                plain.clone(),
                &good,
                "this client is in no tenant",
            ),
            // The service may name only tenants whose line says `auth`.
            (
                "names alice",
                plain.clone(),
                &as_alice,
                "this client is in no tenant",
            ),
            (
                "alice as carol",
                host("alice"),
                &carol,
                "name different tenants",
            ),
            (
                "nocert",
                host("nocert"),
                &good,
                "requires a client certificate",
            ),
        ] {
            let out = run(&cli, &h, conf, &["ps"], Input::None);
            println!("  {:5} {who:14} ps -> {}", cli.name, out.brief());
            assert!(
                !out.ok() && out.stderr.contains(want),
                "{who}: {}",
                out.brief()
            );
        }
    }
    let logs = proxy.logs();
    for name in ["alice", "bob", "carol"] {
        assert!(
            logs.stdout_str().contains(&format!("tenant={name}")),
            "no access log line names {name}: {}",
            logs.brief()
        );
    }
    assert!(
        logs.stderr.contains("-> 3 tenants: alice bob carol;"),
        "{}",
        logs.brief()
    );

    // A SIGHUP adds dave (read-only, the TLS daemon), and eve on the proxy's own daemon
    // ('-', which no tenant used at the start), while sessions of alice and bob stream.
    let main_sleeper = direct(&["run", "-d", "--network", "none", &img, "sleep", "300"]);
    let _rm_main = nds_tests::cli::Containers(vec![main_sleeper.clone()]);
    let clis = Cli::all();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (name, h, conf, _, own, _) = &tenants_seen[i % 2];
                let cli = &clis[i % clis.len()];
                let run = &run;
                s.spawn(move || {
                    let (input, want) = slow_checksum(i, 25);
                    let out = run(cli, h, conf, &["exec", "-i", own, "sha256sum"], input);
                    (*name, out, want)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1000));
        let added = format!(
            "{base}dave   https://127.0.0.1:{tls_port}  sha256:{}  read-only tls=/tenant-certs/bob tls-name=localhost\n\
             eve    -  sha256:{}\n",
            certs.sha256("dave"),
            certs.sha256("eve")
        );
        std::fs::write(&tenants, added).unwrap();
        direct(&["kill", "-s", "HUP", &proxy.id]);
        for h in handles {
            let (name, out, want) = h.join().unwrap();
            assert!(
                out.ok() && out.stdout_str() == want,
                "{name}'s session across the reload: {}",
                out.brief()
            );
        }
    });
    let cli = &clis[0];
    wait_for("dave after the reload", Duration::from_secs(15), || {
        let ps = run(
            cli,
            &host("dave"),
            &good,
            &["ps", "--format", "{{.Names}}"],
            Input::None,
        );
        (ps.ok() && ps.stdout_str() == "gw-tls\n")
            .then_some(())
            .ok_or(ps.brief())
    });
    let filter = format!("id={main_sleeper}");
    let eve_ps = run(
        cli,
        &host("eve"),
        &good,
        &["ps", "-q", "--no-trunc", "--filter", &filter],
        Input::None,
    );
    assert!(
        eve_ps.ok() && eve_ps.stdout_str().trim() == main_sleeper,
        "eve on the proxy's daemon after the reload: {}",
        eve_ps.brief()
    );
    let w = run(
        cli,
        &host("dave"),
        &good,
        &["run", "--rm", &img, "true"],
        Input::None,
    );
    assert!(
        !w.ok() && w.stderr.contains("tenant dave is read-only"),
        "{}",
        w.brief()
    );

    // An invalid file at the next SIGHUP: refused, naming the line; the tenants stay.
    std::fs::write(
        &tenants,
        format!("{base}frank  tcp://127.0.0.1  sha256:00\n"),
    )
    .unwrap();
    direct(&["kill", "-s", "HUP", &proxy.id]);
    wait_for("the refused reload", Duration::from_secs(15), || {
        let logs = proxy.logs();
        (logs.stderr.contains(
            "reload refused: /tenants/tenants.conf line 6: daemon 'tcp://127.0.0.1': expected",
        ) && logs.stderr.contains("nginx keeps the tenants it has"))
        .then_some(())
        .ok_or(logs.brief())
    });
    for (who, want) in [("dave", "gw-tls\n"), ("alice", "gw-unix\n")] {
        let ps = run(
            cli,
            &host(who),
            &good,
            &["ps", "--format", "{{.Names}}"],
            Input::None,
        );
        assert!(ps.ok() && ps.stdout_str() == want, "{who}: {}", ps.brief());
    }

    // docker stop: the TERM reaches nginx through the entrypoint, at once.
    let started = Instant::now();
    direct(&["stop", "-t", "20", &proxy.id]);
    let took = started.elapsed();
    let code = direct(&["inspect", "-f", "{{.State.ExitCode}}", &proxy.id]);
    println!("  docker stop: {took:.1?}, exit code {code}");
    assert!(took < Duration::from_secs(10), "docker stop took {took:?}");
    assert_eq!(code, "0");
}

/// Invalid tenants files and settings are refused at start, each with the line and what
/// is wrong; a valid one passes `nginx -t`.
#[test]
fn image_gateway_refuses_invalid_tenants() {
    let tag = image_tag();
    let certs = Certs::generate();
    let dir = tempfile::tempdir().unwrap();
    let sock = format!("{}:/run/a.sock", docker_sock().display());
    let tenants_mount = format!("{}:/tenants:ro", dir.path().display());
    let certs_mount = format!("{}:/certs:ro", certs.path_str("server"));
    let fp = "ab".repeat(32);
    let check = |file: &str, env: &[&str], with_certs: bool| -> Out {
        std::fs::write(dir.path().join("tenants.conf"), file).unwrap();
        let mut args = vec![
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &sock,
            "-v",
            &tenants_mount,
        ];
        if with_certs {
            args.extend(["-v", &certs_mount]);
        }
        args.extend(["-e", "TENANTS=/tenants/tenants.conf"]);
        for e in env {
            args.extend(["-e", e]);
        }
        args.extend([tag.as_str(), "nginx", "-t"]);
        direct_out(&args, 60)
    };
    let ok_line = format!("a unix:///run/a.sock sha256:{fp}\n");
    let refused: Vec<(String, &[&str], bool, &str)> = vec![
        (
            format!(
                "{ok_line}b unix:///run/nowhere.sock sha256:{}\n",
                "cd".repeat(32)
            ),
            &[],
            true,
            "line 2: no Docker socket at /run/nowhere.sock",
        ),
        (
            format!("Alice unix:///run/a.sock sha256:{fp}\n"),
            &[],
            true,
            "line 1: tenant name 'Alice'",
        ),
        (
            format!(
                "{ok_line}# again\na unix:///run/a.sock sha256:{}\n",
                "cd".repeat(32)
            ),
            &[],
            true,
            "line 3: tenant a is already on line 1",
        ),
        (
            "a unix:///run/a.sock sha256:abc\n".into(),
            &[],
            true,
            "line 1: identity 'sha256:abc': a SHA-256 fingerprint is 64 hex digits",
        ),
        (
            format!(
                "{ok_line}b unix:///run/a.sock sha256:{}\n",
                fp.to_uppercase()
            ),
            &[],
            true,
            "is already tenant a's",
        ),
        (
            format!("a unix:///run/a.sock sha256:{fp} readonly\n"),
            &[],
            true,
            "unknown option 'readonly'",
        ),
        (
            "a unix:///run/a.sock auth\n".into(),
            &[],
            true,
            "identity 'auth' (the authentication service names the tenant) needs AUTH_URL",
        ),
        (
            format!("a https://127.0.0.1:2376 sha256:{fp} tls=/certs\n"),
            &[],
            true,
            "add tls-name=NAME",
        ),
        (
            format!("a tcp://127.0.0.1:2375 sha256:{fp} tls-name=x\n"),
            &[],
            true,
            "tls= and tls-name= are for https:// daemons",
        ),
        (
            "# nobody yet\n".into(),
            &[],
            true,
            "no tenant (one line per tenant",
        ),
        (
            "a unix:///run/a.sock\n".into(),
            &[],
            true,
            "line 1: expected NAME DAEMON IDENTITY",
        ),
        (
            ok_line.clone(),
            &[],
            false,
            "line 1: a certificate identity, but client certificates are not verified",
        ),
        (
            ok_line.clone(),
            &["UPSTREAM=tcp://127.0.0.1:2375"],
            true,
            "no tenant's DAEMON is '-'",
        ),
        (
            format!("a - sha256:{fp} FOO=1\n"),
            &["SOCKET_PATH=/run/a.sock"],
            true,
            "line 1: 'FOO' is no switch of this image",
        ),
        (
            format!("a - sha256:{fp} CONTAINERS=maybe\n"),
            &["SOCKET_PATH=/run/a.sock"],
            true,
            "line 1: CONTAINERS=maybe: use 1 (grant) or 0 (deny)",
        ),
        (
            format!("a - sha256:{fp} POST=1\n"),
            &["SOCKET_PATH=/run/a.sock"],
            true,
            "line 1: POST=1, but the proxy has POST=0",
        ),
        (
            format!("{ok_line}b - sha256:{} ALLOW_EXEC=1\n", "cd".repeat(32)),
            &["SOCKET_PATH=/run/a.sock"],
            true,
            "line 2: ALLOW_EXEC=1 has no effect with POST=0",
        ),
        (
            format!("a - sha256:{fp} POST=0 ALLOW_BIND_MOUNTS=/srv\n"),
            &["SOCKET_PATH=/run/a.sock", "POST=1"],
            true,
            "line 1: ALLOW_BIND_MOUNTS=/srv has no effect with POST=0",
        ),
        (
            format!("a - sha256:{fp} ALLOW_CAPABILITIES=\n"),
            &["SOCKET_PATH=/run/a.sock", "POST=1"],
            true,
            "line 1: ALLOW_CAPABILITIES= needs a list",
        ),
        (
            format!("a - sha256:{fp} tls=/certs\n"),
            &["SOCKET_PATH=/run/a.sock"],
            true,
            "the proxy's daemon ('-') has UPSTREAM_TLS_*",
        ),
    ];
    let mut failures = Vec::new();
    for (file, env, with_certs, want) in &refused {
        let out = check(file, env, *with_certs);
        let ok = !out.ok() && out.stderr.contains(want) && out.code == Some(64);
        println!("  refuses {want:70} {}", if ok { "ok" } else { "NO" });
        if !ok {
            failures.push(format!("{file:?} {env:?}: want {want:?}: {}", out.brief()));
        }
    }
    let good = format!(
        "{ok_line}b https://localhost:2376 sha256:{} read-only tls=/certs\n",
        "cd".repeat(32)
    );
    let own = format!(
        "{ok_line}c - sha256:{} CONTAINERS=1 ALLOW_EXEC=yes ALLOW_BIND_MOUNTS=/srv/a,/srv/b DELETE=0\n\
         d - sha256:{} POST=0 IMAGES=1\n",
        "cd".repeat(32),
        "ef".repeat(32)
    );
    for (file, env) in [
        (&good, &["POST=1"][..]),
        (
            &own,
            &[
                "POST=1",
                "DELETE=1",
                "SOCKET_PATH=/run/a.sock",
                "ALLOW_ATTACH=1",
            ][..],
        ),
    ] {
        let out = check(file, env, true);
        let ok = out.ok() && out.stderr.contains("test is successful");
        println!("  accepts a valid file {}", if ok { "ok" } else { "NO" });
        if !ok {
            failures.push(format!(
                "valid file refused: {file:?} {env:?}: {}",
                out.brief()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Tenants that share the proxy's daemon (`-`) with switches of their own, on one
/// proxy whose own switches grant no container access: `ci` runs unprivileged
/// containers with one data directory but may not exec; `traefik` reads containers
/// and nothing else; `plain` (no options) has the proxy's switches and is the control:
/// what the others may do comes from their lines.
#[test]
fn image_gateway_tenants_with_their_own_switches() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tenants.conf"),
        format!(
            "ci       -  auth  CONTAINERS=1 ALLOW_ATTACH=1 ALLOW_ARCHIVE=1 ALLOW_BIND_MOUNTS={}\n\
             traefik  -  auth  CONTAINERS=1 POST=0 DELETE=0 PUT=0\n\
             plain    -  auth\n",
            data.path().display()
        ),
    )
    .unwrap();
    let auth = AuthService::start();
    let url = auth.url();
    let mount = format!("{}:/tenants:ro", dir.path().display());
    let proxy = Proxy::start_with(
        &[
            ("TENANTS", "/tenants/tenants.conf"),
            ("AUTH_URL", &url),
            ("POST", "1"),
            ("DELETE", "1"),
            ("PUT", "1"),
        ],
        &["-v", &mount],
    );
    let host = proxy.host();
    let cli = Cli::setup();
    let configs: Vec<(&str, tempfile::TempDir)> = ["ci", "traefik", "plain", "nobody"]
        .iter()
        .map(|t| (*t, docker_config(Some(&format!("tenant-{t}")))))
        .collect();
    let as_tenant = |tenant: &str, args: &[&str]| -> Out {
        let (_, cfg) = configs.iter().find(|(t, _)| *t == tenant).unwrap();
        let path = cfg.path().display().to_string();
        run_env(&cli, &host, args, Input::None, &[("DOCKER_CONFIG", &path)])
    };
    let sleeper = direct(&["run", "-d", "--network", "none", &image(), "sleep", "300"]);
    let _rm = nds_tests::cli::Containers(vec![sleeper.clone()]);
    let bind = format!("{}:/data", data.path().display());
    // A body over nginx's 1 MiB default, with a Content-Length (checked where the
    // request first lands, before the tenant's location): it reaches the daemon whole.
    // A real archive into a real container, so the daemon reads all of it before it
    // answers (one it answers early, with a 404, races nginx still writing: a 502).
    {
        let payload = nds_tests::pseudo_random(2 << 20, 5);
        let body = nds_tests::tar_one("nds-big", &payload);
        let mut conn = nds_tests::raw::Conn::connect(&proxy.addr());
        let head = format!(
            "PUT /containers/{sleeper}/archive?path=/tmp HTTP/1.1\r\nHost: docker\r\n\
             X-Auth-Token: tenant-ci\r\nContent-Type: application/x-tar\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        std::io::Write::write_all(&mut conn, head.as_bytes()).unwrap();
        let _ = std::io::Write::write_all(&mut conn, &body);
        let r = nds_tests::raw::read_head(&mut conn);
        assert_eq!(
            r.status(),
            200,
            "a 2 MiB archive for tenant ci: {}",
            r.status_line
        );
        let size = direct(&["exec", &sleeper, "wc", "-c", "/tmp/nds-big"]);
        assert!(
            size.trim().starts_with(&payload.len().to_string()),
            "the archive's file in the container: {size:?}"
        );
    }
    let img = image();

    // `docker run --rm --network none` and `more`.
    let run = |more: &[&str]| -> Vec<String> {
        ["run", "--rm", "--network", "none"]
            .iter()
            .chain(more)
            .map(|a| a.to_string())
            .collect()
    };
    let args = |all: &[&str]| -> Vec<String> { all.iter().map(|a| a.to_string()).collect() };
    let cases: Vec<(&str, Vec<String>, Result<&str, &str>)> = vec![
        // ci: run with its data directory, attached; no other host path, no exec.
        (
            "ci",
            run(&[
                "-v",
                &bind,
                &img,
                "sh",
                "-c",
                "echo ok > /data/f && cat /data/f",
            ]),
            Ok("ok\n"),
        ),
        (
            "ci",
            run(&["-v", "/etc:/x", &img, "true"]),
            Err("host directories listed in ALLOW_BIND_MOUNTS"),
        ),
        (
            "ci",
            args(&["exec", &sleeper, "true"]),
            Err("this image allows it with ALLOW_EXEC=1"),
        ),
        ("ci", args(&["ps", "-q", "--filter", "id=NONE"]), Ok("")),
        // traefik: reads containers, changes nothing.
        (
            "traefik",
            args(&["ps", "-q", "--filter", "id=NONE"]),
            Ok(""),
        ),
        (
            "traefik",
            run(&[&img, "true"]),
            Err("tenant traefik: POST requests need POST=1"),
        ),
        (
            "traefik",
            args(&["rm", "-f", &sleeper]),
            Err("tenant traefik: DELETE requests need DELETE=1"),
        ),
        (
            "traefik",
            args(&["images"]),
            Err("this image allows it with IMAGES=1"),
        ),
        // The control: the proxy's own switches grant no container access.
        (
            "plain",
            args(&["ps"]),
            Err("this image allows it with CONTAINERS=1"),
        ),
        ("nobody", args(&["ps"]), Err("this client is in no tenant")),
    ];
    let mut failures = Vec::new();
    for (tenant, args, want) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = as_tenant(tenant, &args);
        let ok = match want {
            Ok(stdout) => out.ok() && out.stdout_str() == *stdout,
            Err(needle) => !out.ok() && out.stderr.contains(needle),
        };
        println!(
            "  {tenant:8} {:50} {}",
            args.join(" "),
            if ok { "ok" } else { "NO" }
        );
        if !ok {
            failures.push(format!("{tenant} {args:?}: want {want:?}: {}", out.brief()));
        }
    }
    // Nothing of the refused requests reached the daemon: the sleeper still runs.
    assert_eq!(
        direct(&["inspect", "-f", "{{.State.Running}}", &sleeper]),
        "true"
    );
    assert!(proxy.running(), "{}", proxy.logs().brief());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! The prebuilt image (Dockerfile, image/): Debian trixie's nginx with the module and an
//! allow-list configured from the environment, run as a container in front of the
//! daemon's socket, driven with the real docker CLIs and raw HTTP requests.
//!
//! The image is `NDS_IMAGE_TAG` when set; otherwise it is built once per run with
//! `scripts/build-image nds-proxy:test`.
//! The daemon's socket (`NDS_DOCKER_SOCK`) is mounted into the container at
//! /var/run/docker.sock; the container uses the host's network and listens on a free
//! loopback port.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{image_tag, raw, run_and_exec, Proxy, RUN_AND_EXEC};
use nds_tests::cli::{direct, docker, Containers, Input, Out};
use nds_tests::{direct_host, docker_sock, free_port, image, Cli};

const DENIED: &str = "access denied by the Docker API proxy";

fn cli_run(cli: &Cli, host: &str, args: &[&str], input: Input) -> Out {
    docker(cli, host, args, input, Duration::from_secs(60))
}

/// (a) Everything `docker run` and `docker exec` need is granted: both work, with their
/// hijacked streams, through the image.
#[test]
fn image_grants_run_and_exec() {
    let proxy = Proxy::start(RUN_AND_EXEC);
    let host = proxy.host();
    let mut c = Containers(vec![]);
    let id = direct(&["run", "-d", "--network", "none", &image(), "sleep", "300"]);
    c.0.push(id.clone());
    for cli in Cli::all() {
        let run = cli_run(
            &cli,
            &host,
            &["run", "--rm", "--network", "none", &image(), "echo", "hi"],
            Input::None,
        );
        println!("  {:5} run --rm echo hi      {}", cli.name, run.brief());
        assert!(
            run.ok() && run.stdout_str() == "hi\n",
            "{}: {}",
            cli.name,
            run.brief()
        );

        let exec = cli_run(
            &cli,
            &host,
            &["exec", "-i", &id, "tr", "a-z", "A-Z"],
            Input::Bytes(b"x\n".to_vec()),
        );
        println!("  {:5} exec -i tr a-z A-Z   {}", cli.name, exec.brief());
        assert!(
            exec.ok() && exec.stdout_str() == "X\n",
            "{}: {}",
            cli.name,
            exec.brief()
        );

        // Not granted: IMAGES.
        let images = cli_run(&cli, &host, &["images"], Input::None);
        assert!(
            !images.ok() && images.stderr.contains("this image allows it with IMAGES=1"),
            "{}: {}",
            cli.name,
            images.brief()
        );
    }
    assert!(proxy.running());
}

/// With a read-only root filesystem (`--read-only`, compose's `read_only: true`) and a
/// tmpfs at /run, the proxy renders its configuration there and carries what it does on
/// a writable one; so it does as another user than root (`--user`, with the socket's
/// group given by `--group-add`). Each way the workers reach the socket (as root through
/// a group kept out of /etc/group), hijacked streams pass, and a create body past
/// nginx's in-memory buffer (16 KiB) is read by the guards from a temporary file under
/// /run. Without the tmpfs, or the socket's group for another user, the container
/// refuses to start and says what to add.
#[test]
fn image_runs_read_only_and_as_another_user() {
    let cli = Cli::setup();
    let img = image();
    let gid = std::fs::metadata(docker_sock())
        .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
        .unwrap()
        .to_string();
    let nobody = ["--user", "65534:65534", "--group-add", gid.as_str()];
    let ways: [(&str, Vec<&str>); 3] = [
        ("root, read-only", vec!["--read-only", "--tmpfs", "/run"]),
        ("uid 65534", nobody.to_vec()),
        (
            "uid 65534, read-only",
            [&nobody[..], &["--read-only", "--tmpfs", "/run:uid=65534"]].concat(),
        ),
    ];
    for (way, args) in &ways {
        let proxy = Proxy::start_with(RUN_AND_EXEC, args);
        let host = proxy.host();
        let read_only = way.contains("read-only");
        let touch = proxy.exec(&["touch", "/etc/nginx/nds-x"]);
        assert!(
            !touch.ok() && touch.stderr.contains("Read-only file system") == read_only,
            "{way}: {}",
            touch.brief()
        );
        let groups = proxy.exec(&["cat", "/etc/group"]);
        assert!(
            groups.ok() && !groups.stdout_str().contains("nds-socket-"),
            "{way}: {}",
            groups.brief()
        );

        let upper = format!("run --rm -i --network none {img} tr a-z A-Z");
        let upper: Vec<&str> = upper.split(' ').collect();
        let run = cli_run(&cli, &host, &upper, Input::Bytes(b"ro\n".to_vec()));
        println!("  {way:22} run --rm -i tr a-z A-Z  {}", run.brief());
        assert!(
            run.ok() && run.stdout_str() == "RO\n",
            "{way}: {}",
            run.brief()
        );

        let big = format!("nds-big={}", "x".repeat(40 << 10));
        let create = |more: &[&str]| -> Out {
            let mut args = vec!["create", "--network", "none", "--label", big.as_str()];
            args.extend(more);
            args.extend([img.as_str(), "true"]);
            cli_run(&cli, &host, &args, Input::None)
        };
        let mut made = Containers(vec![]);
        for (more, allowed) in [(&[][..], true), (&["--privileged"][..], false)] {
            let out = create(more);
            println!("  {way:22} create {more:?}, 40 KiB label  {}", out.brief());
            if out.ok() {
                made.0.push(out.stdout_str().trim().to_string());
            }
            assert!(
                out.ok() == allowed && (allowed || out.stderr.contains("ALLOW_PRIVILEGED=1")),
                "{way}: {}",
                out.brief()
            );
        }
        assert!(proxy.running());
        let temp = proxy.exec(&["ls", "/run/nds/temp"]);
        assert!(
            temp.stdout_str().contains("body"),
            "{way}: {}",
            temp.brief()
        );
    }

    // The controls: read-only without a tmpfs at /run; another user without the
    // socket's group.
    let volume = format!("{}:/var/run/docker.sock", docker_sock().display());
    let tag = image_tag();
    let group_add = format!("--group-add {gid}");
    let controls: [(&[&str], &str, &str); 2] = [
        (&["--read-only"], "cannot write /run/nds", "--tmpfs /run"),
        (
            &["--user", "65534:65534"],
            "uid 65534 cannot use the Docker socket /var/run/docker.sock",
            &group_add,
        ),
    ];
    for (more, want, hint) in controls {
        let mut args = vec!["run", "--rm", "--network", "none", "-v", &volume];
        args.extend(more);
        args.push(&tag);
        let refused = cli_run(&cli, &direct_host(), &args, Input::None);
        assert!(
            refused.code == Some(64)
                && refused
                    .stderr
                    .contains(&format!("refusing to start: {want}"))
                && refused.stderr.contains(hint),
            "{more:?}: {}",
            refused.brief()
        );
    }
}

/// The image's HEALTHCHECK (`nds-healthcheck`): healthy while the daemon answers
/// `/_ping` through nginx; unhealthy, with the reason in State.Health.Log, when it does
/// not (a daemon on a closed port: the control).
#[test]
fn image_healthcheck() {
    let tag = image_tag();
    let configured = direct(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Healthcheck}}",
        &tag,
    ]);
    assert!(configured.contains("nds-healthcheck"), "{configured}");
    let often = ["--health-interval", "1s", "--health-retries", "1"];
    let closed = format!("UPSTREAM=tcp://127.0.0.1:{}", free_port());
    let closed = closed.split_once('=').unwrap();
    let check = |way: &str, proxy: Proxy, status: &str, log: &str| {
        let health = || direct(&["inspect", "-f", "{{json .State.Health}}", &proxy.id]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !health().contains(&format!("\"Status\":\"{status}\"")) {
            assert!(
                Instant::now() < deadline,
                "{way}: not {status} in 30 s: {}",
                health()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let out = proxy.exec(&["nds-healthcheck"]);
        println!("  {way:14} {status:9} {}", out.brief());
        assert!(
            out.ok() == (status == "healthy") && out.stdout_str().starts_with(log),
            "{way}: {}",
            out.brief()
        );
    };
    check(
        "the socket",
        Proxy::start_with(&[], &often),
        "healthy",
        "healthy: the daemon answered /_ping: OK",
    );
    check(
        "a closed port",
        Proxy::start_bare(&[closed], &often),
        "unhealthy",
        "unhealthy: HTTP/1.1 502 Bad Gateway: the proxy cannot reach the Docker daemon at \
         tcp://127.0.0.1:",
    );
}

/// (b) Tecnativa's defaults: ping, version and events only, read-only.
#[test]
fn image_defaults_are_read_only_and_narrow() {
    let proxy = Proxy::start(&[]);
    let host = proxy.host();
    let mut c = Containers(vec![]);
    let id = direct(&["run", "-d", "--network", "none", &image(), "sleep", "300"]);
    c.0.push(id.clone());
    for cli in Cli::all() {
        let version = cli_run(
            &cli,
            &host,
            &["version", "--format", "{{.Server.APIVersion}}"],
            Input::None,
        );
        println!("  {:5} version    {}", cli.name, version.brief());
        assert!(
            version.ok() && version.stdout_str().trim() == "1.41",
            "{}",
            version.brief()
        );

        let ps = cli_run(&cli, &host, &["ps"], Input::None);
        println!("  {:5} ps         {}", cli.name, ps.brief());
        assert!(
            !ps.ok() && ps.stderr.contains("this image allows it with CONTAINERS=1"),
            "{}",
            ps.brief()
        );

        let exec = cli_run(&cli, &host, &["exec", &id, "echo", "no"], Input::None);
        println!("  {:5} exec       {}", cli.name, exec.brief());
        assert!(
            !exec.ok()
                && exec
                    .stderr
                    .contains("this image allows it with CONTAINERS=1")
                && exec.stdout.is_empty(),
            "{}",
            exec.brief()
        );

        let run = cli_run(
            &cli,
            &host,
            &["run", "--rm", "--network", "none", &image(), "true"],
            Input::None,
        );
        println!("  {:5} run        {}", cli.name, run.brief());
        assert!(!run.ok() && run.stderr.contains(DENIED), "{}", run.brief());
    }
    // A refused request with `Expect: 100-continue` gets its 403 and no `100 Continue`.
    let mut conn = nds_tests::raw::Conn::connect(&proxy.addr());
    std::io::Write::write_all(
        &mut conn,
        b"POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
          Content-Length: 2\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let r = nds_tests::raw::read_head(&mut conn);
    println!("  Expect: 100-continue, refused: {}", r.status_line);
    assert_eq!(r.status(), 403, "{r:?}");
}

/// (c) The allow-list is decided on nginx's normalized $uri, and that same path is what
/// reaches the daemon: encodings, dot segments and doubled slashes neither open a
/// denied endpoint nor lose an allowed one.
#[test]
fn image_allow_list_matches_the_normalized_path() {
    let defaults = Proxy::start(&[]);
    let containers = Proxy::start(&[("CONTAINERS", "1")]);
    let writer = Proxy::start(RUN_AND_EXEC);
    let ws = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    // (proxy, method, request target, extra headers or JSON body, expected status)
    let d = defaults.addr();
    let c = containers.addr();
    let w = writer.addr();
    #[rustfmt::skip]
    let table: Vec<(&str, &str, &str, &str, &str, u16)> = vec![
        ("defaults", &d, "GET", "/_ping", "", 200),
        ("defaults", &d, "HEAD", "/_ping", "", 200),
        ("defaults", &d, "GET", "/v1.41/_ping", "", 200),
        ("defaults", &d, "GET", "/v1.41/version", "", 200),
        ("defaults", &d, "GET", "/v1.41/events?since=0&until=1", "", 200),
        ("defaults", &d, "GET", "/containers/json", "", 403),
        ("defaults", &d, "GET", "/v1.41/containers/json", "", 403),
        ("defaults", &d, "GET", "//containers/json", "", 403),
        ("defaults", &d, "GET", "/v1.41//containers/json", "", 403),
        ("defaults", &d, "GET", "/_ping/../containers/json", "", 403),
        ("defaults", &d, "GET", "/_ping/%2e%2e/containers/json", "", 403),
        ("defaults", &d, "GET", "/version/..%2fcontainers/json", "", 403),
        ("defaults", &d, "GET", "/%63ontainers/json", "", 403),
        ("defaults", &d, "GET", "/containers%2fjson", "", 403),
        ("defaults", &d, "GET", "/containers/json/", "", 403),
        ("defaults", &d, "GET", "/containers/json?x=/_ping", "", 403),
        ("defaults", &d, "GET", "/_ping?/containers/json", "", 200),
        ("defaults", &d, "GET", "http://docker/containers/json", "", 403),
        ("defaults", &d, "GET", "/CONTAINERS/json", "", 403),
        ("defaults", &d, "GET", "/vx/_ping", "", 403),
        ("defaults", &d, "GET", "/_ping%0a", "", 403),
        ("defaults", &d, "GET", "/_ping%5c", "", 403),
        ("defaults", &d, "GET", "/info", "", 403),
        ("defaults", &d, "POST", "/_ping", "", 403),
        ("defaults", &d, "DELETE", "/containers/x", "", 403),
        ("defaults", &d, "get", "/_ping", "", 400),
        ("defaults", &d, "GET", "/_ping%00", "", 400),
        ("defaults", &d, "GET", "/%2e%2e/containers/json", "", 400),
        ("containers", &c, "GET", "/containers/json", "", 200),
        ("containers", &c, "GET", "/v1.41/containers/json?all=1", "", 200),
        ("containers", &c, "GET", "//containers/json", "", 200),
        ("containers", &c, "GET", "/%63ontainers/json", "", 200),
        ("containers", &c, "GET", "/containers%2fjson", "", 200),
        ("containers", &c, "GET", "/_ping/../containers/json", "", 200),
        // No route of dockerd's: the module refuses it, as anything no switch grants.
        ("containers", &c, "GET", "/containers/json/", "", 403),
        ("containers", &c, "GET", "/containers/x/logs", "", 403),
        ("containers", &c, "GET", "/containers/../exec/x/json", "", 403),
        ("containers", &c, "GET", "/v1.41/images/json", "", 403),
        ("containers", &c, "POST", "/containers/x/stop", "", 403),
        ("containers", &c, "GET", "/containers/x/attach/ws?stream=1", ws, 403),
        // The daemon routes /containers/{name:.*}/attach/ws: a legacy link's parent/alias.
        ("containers", &c, "GET", "/containers/nds-no-such/alias/attach/ws?stream=1", ws, 403),
        ("containers", &c, "GET", "/v1.41/containers/nds-no-such%2falias/attach/ws", ws, 403),
        ("writer", &w, "POST", "/containers/../exec/nds-no-such-exec/start", "{}", 404),
        ("writer", &w, "POST", "/v1.41/containers/nds-no-such-container/stop", "", 404),
        ("writer", &w, "DELETE", "/v1.41/containers/nds-no-such-container", "", 404),
        ("writer", &w, "POST", "/v1.41/images/create?fromImage=nds-nothing", "", 403),
        ("writer", &w, "DELETE", "/v1.41/volumes/nds-nothing", "", 403),
        ("writer", &w, "POST", "/exec/../images/create", "", 403),
    ];
    let mut failures = Vec::new();
    for (name, addr, method, target, headers, want) in &table {
        let (status, ctype, body) = raw(addr, method, target, headers);
        let mut ok = status == *want;
        if status == 403 {
            // One line of JSON, as the daemon's own errors: the image's refusals
            // (methods, malformed paths) or the module's, with the image's hint.
            ok &= ctype == "application/json"
                && (body.starts_with(&format!("{{\"message\": \"{DENIED}: "))
                    || (body.starts_with("{\"message\":\"") && body.contains("; ")))
                && body.ends_with("\"}\n")
                && body.lines().count() == 1;
        }
        println!(
            "  {:10} {:6} {:48} {} {}",
            name,
            method,
            target,
            status,
            if ok {
                "ok".to_string()
            } else {
                format!("WANT {want}")
            }
        );
        if !ok {
            failures.push(format!(
                "{name} {method} {target}: {status} {ctype} {body:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Settings that contradict each other or open write access to the network without
/// TLS or authentication stop the container before nginx starts, with a clear message.
/// `METRICS_LISTEN`: the module's counters on a listener of their own, counting what the
/// API listener served and refused; nothing else answers there.
#[test]
fn image_metrics_listener() {
    let mport = nds_tests::free_port();
    let listen = format!("127.0.0.1:{mport}");
    let proxy = Proxy::start(&[("METRICS_LISTEN", &listen), ("CONTAINERS", "1")]);
    let cli = Cli::setup();
    let out = cli_run(&cli, &proxy.host(), &["ps"], Input::None);
    assert!(out.ok(), "{}", out.brief());
    let out = cli_run(
        &cli,
        &proxy.host(),
        &["run", "--rm", &image(), "true"],
        Input::None,
    );
    assert!(!out.ok(), "a write with POST=0: {}", out.brief());
    let out = cli_run(&cli, &proxy.host(), &["images"], Input::None);
    assert!(!out.ok(), "IMAGES=0: {}", out.brief());
    let (status, _, body) = raw(&listen, "GET", "/metrics", "");
    assert_eq!(status, 200, "{body}");
    for series in [
        "docker_api_requests_total{operation=\"ContainerList\",decision=\"allow\"} ",
        "docker_api_requests_total{operation=\"ImageList\",decision=\"deny\"} ",
        // Refused by the image's method check, before the module's rules.
        "docker_api_requests_total{operation=\"ContainerCreate\",decision=\"none\"} ",
        "docker_stream_tunnels_open 0",
    ] {
        assert!(body.contains(series), "no {series:?} in:\n{body}");
    }
    let (status, ctype, body) = raw(&listen, "GET", "/containers/json", "");
    assert_eq!(status, 404, "{body}");
    assert!(ctype.starts_with("application/json"), "{ctype}");
    // The API listener does not show them.
    let (status, _, _) = raw(&proxy.addr(), "GET", "/metrics", "");
    assert_eq!(status, 403);
}

#[test]
fn image_refuses_unsafe_or_contradictory_settings() {
    let tag = image_tag();
    let volume = format!("{}:/var/run/docker.sock", docker_sock().display());
    let check = |env: &[&str], mount: bool| -> Out {
        // `nginx -t` instead of the server: the entrypoint renders and checks all the same.
        let mut args = vec!["run", "--rm", "--network", "none"];
        if mount {
            args.extend(["-v", &volume]);
        }
        for e in env {
            args.extend(["-e", e]);
        }
        args.extend([tag.as_str(), "nginx", "-t"]);
        cli_run(&Cli::setup(), &direct_host(), &args, Input::None)
    };
    let refused: &[(&[&str], bool, &str)] = &[
        (
            &["POST=1"],
            true,
            "listens on all interfaces without TLS or authentication",
        ),
        (&["POST=1", "LISTEN=0.0.0.0:2375"], true, "FORCE_INSECURE=1"),
        (
            &["POST=1", "LISTEN=[::]:2375", "CONTAINERS=1"],
            true,
            "listens on all interfaces",
        ),
        (
            &["ALLOW_START=1"],
            true,
            "ALLOW_START=1 has no effect with POST=0",
        ),
        (
            &["BUILD=1", "LISTEN=127.0.0.1:2375"],
            true,
            "BUILD=1 has no effect with POST=0",
        ),
        (
            &["CONTAINERS=maybe"],
            true,
            "CONTAINERS=maybe: use 1 (grant) or 0 (deny)",
        ),
        (
            &["LISTEN=localhost"],
            true,
            "LISTEN=localhost: expected PORT",
        ),
        (
            &["METRICS_LISTEN=everywhere"],
            true,
            "METRICS_LISTEN=everywhere: expected PORT",
        ),
        (
            &["METRICS_LISTEN=127.0.0.1:2375"],
            true,
            "METRICS_LISTEN=127.0.0.1:2375: the port of an API listener",
        ),
        (
            &[
                "UPSTREAM=tcp://127.0.0.1:2375",
                "SOCKET_PATH=/var/run/docker.sock",
            ],
            true,
            "disagree",
        ),
        (&[], false, "no Docker socket at /var/run/docker.sock"),
        (
            &["WORKER_CONNECTIONS=lots"],
            true,
            "WORKER_CONNECTIONS=lots: use a number from 10 to 1048576",
        ),
        (
            &["MAX_CONNECTIONS_PER_CLIENT=0"],
            true,
            "MAX_CONNECTIONS_PER_CLIENT=0: use a number from 1",
        ),
        (
            &["STREAM_IDLE_TIMEOUT=soon"],
            true,
            "STREAM_IDLE_TIMEOUT=soon: use an nginx time",
        ),
        (
            &["UPSTREAM=https://127.0.0.1:2376"],
            true,
            "no CA to verify the daemon's certificate",
        ),
        (
            &[
                "UPSTREAM=https://daemon:2376",
                "UPSTREAM_TLS_CACERT=/nowhere.pem",
            ],
            true,
            "UPSTREAM_TLS_CACERT=/nowhere.pem: no such file",
        ),
        (
            &[
                "UPSTREAM=https://127.0.0.1:2376",
                "UPSTREAM_TLS_CACERT=/etc/nginx/mime.types",
            ],
            true,
            "by DNS name, not by IP address; set UPSTREAM_TLS_NAME",
        ),
        (
            &[
                "UPSTREAM=https://daemon:2376",
                "UPSTREAM_TLS_CACERT=/etc/nginx/mime.types",
                "UPSTREAM_TLS_CERT=/etc/nginx/mime.types",
            ],
            true,
            "without its key",
        ),
        (
            &["UPSTREAM=https://daemon"],
            true,
            "expected https://HOST:PORT",
        ),
        (
            &["TLS_CRL=/etc/nginx/mime.types"],
            true,
            "no CA for client certificates",
        ),
        (
            &["DELETE=1"],
            true,
            "DELETE=1 lets anyone who reaches it change state",
        ),
        (
            &["ALLOW_EXEC=1", "LISTEN=127.0.0.1:2375"],
            true,
            "ALLOW_EXEC=1 has no effect with POST=0",
        ),
        (
            &["ALLOW_PRIVILEGED=1", "LISTEN=127.0.0.1:2375"],
            true,
            "ALLOW_PRIVILEGED=1 has no effect with POST=0",
        ),
        (
            &["POST=1", "LISTEN=127.0.0.1:2375", "ALLOW_BIND_MOUNTS=srv"],
            true,
            "ALLOW_BIND_MOUNTS=srv: use absolute host paths",
        ),
        (
            &["POST=1", "LISTEN=127.0.0.1:2375", "ALLOW_CAPABILITIES=all"],
            true,
            "ALL is privileged; set ALLOW_PRIVILEGED=1",
        ),
        (
            &["POST=1", "LISTEN=127.0.0.1:2375", "ALLOW_DEVICES=some"],
            true,
            "ALLOW_DEVICES=some: use 1 (grant) or 0 (deny)",
        ),
    ];
    let mut failures = Vec::new();
    for (env, mount, want) in refused {
        let out = check(env, *mount);
        let ok = out.code == Some(64)
            && out.stderr.contains("refusing to start")
            && out.stderr.contains(want);
        println!(
            "  refuses {:70} {}",
            format!("{env:?}"),
            if ok { "ok" } else { "NO" }
        );
        if !ok {
            failures.push(format!("{env:?}: {}", out.brief()));
        }
    }
    let accepted: &[&[&str]] = &[
        &[],
        &["POST=1", "LISTEN=127.0.0.1:2375", "CONTAINERS=1", "EXEC=1"],
        &[
            "POST=1",
            "DELETE=1",
            "PUT=1",
            "LISTEN=127.0.0.1:2375",
            "ALLOW_PRIVILEGED=1",
            "ALLOW_DEVICES=yes",
            "ALLOW_CAPABILITIES=NET_ADMIN,cap_sys_time",
            "ALLOW_BIND_MOUNTS=/srv/data,/var/lib/app",
        ],
        &["POST=1", "FORCE_INSECURE=1", "CONTAINERS=1"],
        &[
            "CONTAINERS=true",
            "IMAGES=yes",
            "EVENTS=0",
            "LOG_LEVEL=warning",
            "ACCESS_LOG=0",
        ],
        &["UPSTREAM=https://127.0.0.1:2376", "UPSTREAM_TLS_VERIFY=0"],
        &[
            "WORKER_CONNECTIONS=100000",
            "MAX_CONNECTIONS_PER_CLIENT=50",
            "STREAM_IDLE_TIMEOUT=2h",
        ],
    ];
    for env in accepted {
        let out = check(env, true);
        let ok = out.ok() && out.stderr.contains("test is successful");
        println!(
            "  accepts {:70} {}",
            format!("{env:?}"),
            if ok { "ok" } else { "NO" }
        );
        if !ok {
            failures.push(format!("{env:?} refused: {}", out.brief()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// (d) nginx is PID 1 in the foreground: `docker stop` (SIGTERM) ends it at once even
/// with a stream open, SIGQUIT stops it gracefully within SHUTDOWN_TIMEOUT, and its
/// logs go to stdout (access) and stderr (errors, the entrypoint).
#[test]
fn image_stops_cleanly_and_logs_to_stdio() {
    for (signal, env, limit) in [
        // Limits with room for a loaded machine, below what failing would take: a TERM
        // ignored is docker stop's 10 s and a kill (exit code 137); a QUIT that waits
        // for the open stream, the 15 s the loop below waits.
        ("TERM", vec![], Duration::from_secs(8)),
        (
            "QUIT",
            vec![("SHUTDOWN_TIMEOUT", "1s")],
            Duration::from_secs(10),
        ),
    ] {
        let proxy = Proxy::start(&env);
        // A stream that only ends when the proxy closes it.
        let mut events = Command::new(&Cli::setup().path)
            .args(["events"])
            .env("DOCKER_HOST", proxy.host())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let version = cli_run(&Cli::setup(), &proxy.host(), &["version"], Input::None);
        assert!(version.ok(), "{}", version.brief());
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            events.try_wait().unwrap().is_none(),
            "docker events ended early"
        );

        let started = Instant::now();
        if signal == "TERM" {
            direct(&["stop", &proxy.id]);
        } else {
            direct(&["kill", "-s", "QUIT", &proxy.id]);
            while proxy.running() && started.elapsed() < Duration::from_secs(15) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let took = started.elapsed();
        let code = direct(&["inspect", "-f", "{{.State.ExitCode}}", &proxy.id]);
        println!("  SIG{signal}: stopped in {took:.1?}, exit code {code}");
        assert!(took < limit, "SIG{signal}: stopping took {took:?}");
        assert_eq!(code, "0", "SIG{signal}: exit code");
        let deadline = Instant::now() + Duration::from_secs(5);
        while events.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let ended = events.try_wait().unwrap().is_some();
        let _ = events.kill();
        let _ = events.wait();
        assert!(ended, "SIG{signal}: the events stream outlived the proxy");

        let logs = proxy.logs();
        assert!(
            logs.stdout_str()
                .contains("\"GET /v1.41/version HTTP/1.1\" 200"),
            "access log on stdout: {}",
            logs.brief()
        );
        assert!(
            logs.stderr
                .contains("docker-entrypoint: Docker API proxy: listen 127.0.0.1:"),
            "entrypoint on stderr: {}",
            logs.brief()
        );
        assert!(!logs.stdout_str().contains("[emerg]") && !logs.stderr.contains("[emerg]"));
    }
}

/// UPSTREAM=tcp://HOST:PORT: a daemon over TCP (here: another proxy from the image),
/// hijacked streams included; an unreachable daemon gives a JSON 502.
#[test]
fn image_tcp_upstream() {
    let grants = RUN_AND_EXEC.to_vec();
    let first = Proxy::start(&grants);
    let upstream = format!("tcp://{}", first.addr());
    let mut env = grants.to_vec();
    env.push(("UPSTREAM", &upstream));
    let second = Proxy::start(&env);
    let cli = Cli::setup();
    let run = cli_run(
        &cli,
        &second.host(),
        &[
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            &image(),
            "tr",
            "a-z",
            "A-Z",
        ],
        Input::Bytes(b"through two proxies\n".to_vec()),
    );
    println!("  run -i via tcp upstream: {}", run.brief());
    assert!(
        run.ok() && run.stdout_str() == "THROUGH TWO PROXIES\n",
        "{}",
        run.brief()
    );

    let closed = format!("tcp://127.0.0.1:{}", free_port());
    let nowhere = Proxy::start(&[("UPSTREAM", &closed)]);
    let (status, ctype, body) = raw(&nowhere.addr(), "GET", "/_ping", "");
    println!("  unreachable daemon: {status} {body:?}");
    assert_eq!(
        (status, ctype.as_str()),
        (502, "application/json"),
        "{body}"
    );
    assert_eq!(
        body,
        format!("{{\"message\": \"the proxy cannot reach the Docker daemon at {closed}\"}}\n")
    );
}

/// UPSTREAM=https://HOST:PORT: a daemon reached over TLS with a client certificate
/// (`dockerd --tlsverify`, a private one), its name verified; hijacked streams work with
/// half-close (the client's end of input reaches the daemon as a TLS close_notify).
#[test]
fn image_tls_upstream() {
    let certs = Certs::generate();
    let port = free_port();
    let daemon = PrivateDockerd::start_with(Some(certs.daemon_tls(port)));
    daemon.load_test_image();
    let sleeper = daemon.docker(&["run", "-d", "--network", "none", &image(), "sleep", "300"]);
    let upstream = format!("https://127.0.0.1:{port}");
    let mount = format!("{}:/upstream-certs:ro", certs.path_str("good"));
    let env = run_and_exec(&[
        ("UPSTREAM", upstream.as_str()),
        ("UPSTREAM_TLS_NAME", "localhost"),
    ]);
    let proxy = Proxy::start_with(&env, &["-v", &mount]);
    for cli in Cli::all() {
        let run = cli_run(
            &cli,
            &proxy.host(),
            &[
                "run",
                "--rm",
                "-i",
                "--network",
                "none",
                &image(),
                "tr",
                "a-z",
                "A-Z",
            ],
            Input::Bytes(b"over tls\n".to_vec()),
        );
        println!("  {:5} run -i via a TLS daemon: {}", cli.name, run.brief());
        assert!(
            run.ok() && run.stdout_str() == "OVER TLS\n",
            "{}",
            run.brief()
        );
        let exec = cli_run(
            &cli,
            &proxy.host(),
            &["exec", "-i", &sleeper, "sh", "-c", "cat; echo after-eof"],
            Input::Bytes(b"in\n".to_vec()),
        );
        assert!(
            exec.ok() && exec.stdout_str() == "in\nafter-eof\n",
            "{}",
            exec.brief()
        );
    }
    let logs = proxy.logs();
    assert!(
        logs.stderr.contains(&format!("-> https://127.0.0.1:{port}; TLS: off; to the daemon: TLS, name localhost verified: 1, client certificate /upstream-certs/cert.pem")),
        "{}",
        logs.brief()
    );
    // The HEALTHCHECK goes over the same TLS (the wrong name below: unhealthy).
    let health = proxy.exec(&["nds-healthcheck"]);
    assert!(health.ok(), "{}", health.brief());

    // A daemon whose certificate does not name what UPSTREAM_TLS_NAME says: refused.
    let env = [
        ("UPSTREAM", upstream.as_str()),
        ("UPSTREAM_TLS_NAME", "docker.example"),
    ];
    let wrong = Proxy::start_with(&env, &["-v", &mount]);
    let (status, _, body) = raw(&wrong.addr(), "GET", "/_ping", "");
    println!("  daemon certificate for another name: {status} {body:?}");
    assert_eq!(status, 502, "{body}");
    let health = wrong.exec(&["nds-healthcheck"]);
    assert!(
        health.code == Some(1) && health.stdout_str().starts_with("unhealthy: HTTP/1.1 502"),
        "{}",
        health.brief()
    );
}

// --- TLS and auth_request -----------------------------------------------------------

use common::{closed_url, docker_config, labelled, run_env, tls_get, AuthService, Certs};
use nds_tests::dockerd::PrivateDockerd;

/// `docker run` of the busybox image with a label, so that a run that must not reach
/// the daemon can be looked for afterwards.
fn labelled_run<'a>(label: &'a str, img: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--rm",
        "--label",
        label,
        "--network",
        "none",
        img,
        "echo",
        "no",
    ]
}

/// Runs that must succeed through `host` with `pre` (global flags) and `env`: version,
/// run, run -i, and exec -i into `id`.
fn assert_works(cli: &Cli, host: &str, pre: &[&str], env: &[(&str, &str)], id: &str, what: &str) {
    let img = image();
    let cases: [(&[&str], Input, &str); 4] = [
        (
            &["version", "--format", "{{.Server.APIVersion}}"],
            Input::None,
            "1.41\n",
        ),
        (
            &["run", "--rm", "--network", "none", &img, "echo", "hi"],
            Input::None,
            "hi\n",
        ),
        (
            &[
                "run",
                "-i",
                "--rm",
                "--network",
                "none",
                &img,
                "tr",
                "a-z",
                "A-Z",
            ],
            Input::Bytes(b"x\n".to_vec()),
            "X\n",
        ),
        (
            &["exec", "-i", id, "tr", "a-z", "A-Z"],
            Input::Bytes(b"y\n".to_vec()),
            "Y\n",
        ),
    ];
    for (args, input, want) in cases {
        let all: Vec<&str> = pre.iter().chain(args).copied().collect();
        let out = run_env(cli, host, &all, input, env);
        println!(
            "  {:5} {what:10} {:10} {}",
            cli.name,
            args[..2].join(" "),
            out.brief()
        );
        assert!(
            out.ok() && out.stdout_str() == want,
            "{what}: {}",
            out.brief()
        );
    }
}

/// Runs that must be refused with `want` in the message: version, a labelled run, exec.
fn assert_refused(
    cli: &Cli,
    host: &str,
    env: &[(&str, &str)],
    label: &str,
    id: &str,
    want: &str,
    what: &str,
) {
    let img = image();
    for args in [
        vec!["version"],
        labelled_run(label, &img),
        vec!["exec", id, "echo", "no"],
    ] {
        let out = run_env(cli, host, &args, Input::None, env);
        println!("  {:5} {what:10} {:10} {}", cli.name, args[0], out.brief());
        assert!(
            !out.ok()
                && out.stderr.contains(want)
                && (args[0] == "version" || out.stdout.is_empty()),
            "{what}: {}",
            out.brief()
        );
    }
}

/// A certificate revocation list mounted at /certs/crl.pem (or TLS_CRL): a revoked
/// client certificate is refused with a JSON message and reaches nothing; another
/// certificate of the same CA still works. The certificate is revoked while the proxy
/// runs: the new list takes effect on `docker kill -s HUP` (nginx's reload), without a
/// restart.
#[test]
fn image_tls_revoked_client_certificate() {
    let certs = Certs::generate();
    certs.add_client("revoked");
    std::fs::copy(certs.crl(&[]), certs.path("server/crl.pem")).unwrap();
    let mount = format!("{}:/certs:ro", certs.path_str("server"));
    let proxy = Proxy::start_with(RUN_AND_EXEC, &["-v", &mount]);
    let label_value = nds_tests::unique("tls-revoked");
    let label = format!("nds-test={label_value}");
    let mut c = Containers(vec![]);
    let id = direct(&["run", "-d", "--network", "none", &image(), "sleep", "300"]);
    c.0.push(id.clone());
    let (good, revoked) = (certs.path_str("good"), certs.path_str("revoked"));
    let revoked_env = [
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", revoked.as_str()),
    ];
    let version = || {
        run_env(
            &Cli::setup(),
            &proxy.host(),
            &["version"],
            Input::None,
            &revoked_env,
        )
    };
    let before = version();
    assert!(before.ok(), "not yet revoked: {}", before.brief());
    std::fs::copy(certs.crl(&["revoked"]), certs.path("server/crl.pem")).unwrap();
    direct(&["kill", "-s", "HUP", &proxy.id]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while version().ok() {
        assert!(
            Instant::now() < deadline,
            "still accepted 20 s after the new CRL and a HUP"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(proxy.running());
    for cli in Cli::all() {
        let env = [
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", good.as_str()),
        ];
        assert_works(&cli, &proxy.host(), &[], &env, &id, "not revoked");
        let env = [
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", revoked.as_str()),
        ];
        assert_refused(
            &cli,
            &proxy.host(),
            &env,
            &label,
            &id,
            "rejected the client certificate (FAILED:certificate revoked)",
            "revoked",
        );
    }
    assert_eq!(
        labelled(&label_value),
        "",
        "a refused run reached the daemon"
    );
}

/// TLS with client certificates: a server certificate, its key and a CA mounted at
/// /certs make the image a `dockerd --tlsverify` look-alike. The right client
/// certificate works with `--tlsverify` flags and with DOCKER_TLS_VERIFY +
/// DOCKER_CERT_PATH, hijacked streams included; no certificate, one of another CA, or
/// plain HTTP are refused before anything reaches the daemon.
#[test]
fn image_tls_client_certificates() {
    let certs = Certs::generate();
    let mount = format!("{}:/certs:ro", certs.path_str("server"));
    let proxy = Proxy::start_with(RUN_AND_EXEC, &["-v", &mount]);
    let host = proxy.host();
    let label_value = nds_tests::unique("tls-refused");
    let label = format!("nds-test={label_value}");
    let mut c = Containers(vec![]);
    let id = direct(&["run", "-d", "--network", "none", &image(), "sleep", "300"]);
    c.0.push(id.clone());
    let (ca, cert, key) = (
        certs.path_str("good/ca.pem"),
        certs.path_str("good/cert.pem"),
        certs.path_str("good/key.pem"),
    );
    let flags = [
        "--tlsverify",
        "--tlscacert",
        &ca,
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
    ];
    let good = certs.path_str("good");
    let other = certs.path_str("other");
    let nocert = certs.path_str("nocert");
    let needs_cert = "the Docker API proxy requires a client certificate";
    for cli in Cli::all() {
        assert_works(&cli, &host, &flags, &[], &id, "flags");
        let env = [
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", good.as_str()),
        ];
        assert_works(&cli, &host, &[], &env, &id, "env");

        for (what, dir) in [("no cert", &nocert), ("other CA", &other)] {
            let env = [
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", dir.as_str()),
            ];
            assert_refused(&cli, &host, &env, &label, &id, needs_cert, what);
        }
        assert_refused(
            &cli,
            &host,
            &[],
            &label,
            &id,
            "plain HTTP request sent to the TLS listener",
            "plain",
        );
    }
    assert_eq!(
        labelled(&label_value),
        "",
        "a refused run reached the daemon"
    );

    // A certificate of the other CA actually presented (the docker CLI keeps it back:
    // the server names the CA it accepts, as dockerd does).
    let answer = tls_get(
        &proxy.addr(),
        &certs.path("ca.pem"),
        Some((
            &certs.path("client2-cert.pem"),
            &certs.path("client2-key.pem"),
        )),
        "/_ping",
    );
    println!("  s_client, other CA: {:?}", answer.lines().next());
    assert!(
        answer.starts_with("HTTP/1.1 403")
            && answer.contains("Content-Type: application/json")
            && answer.contains("rejected the client certificate (FAILED:"),
        "{answer}"
    );
    let logs = proxy.logs();
    assert!(
        logs.stderr.contains(" ssl; -> ")
            && logs
                .stderr
                .contains("client certificates from /certs/ca.pem"),
        "{}",
        logs.brief()
    );
    assert!(proxy.running());
}

/// AUTH_URL: every request, hijacked ones included, is first checked by the
/// authentication service with the client's headers (the docker CLI's config.json
/// "HttpHeaders" carries the token). Denied: the service's 401 as JSON, nothing reaches
/// the daemon. The service down or hung: refused (502), never let through.
#[test]
fn image_auth_request() {
    let auth = AuthService::start();
    let url = auth.url();
    let grants = RUN_AND_EXEC.to_vec();
    let with = |extra: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        grants
            .iter()
            .chain(extra)
            .map(|(k, v)| (*k, v.to_string()))
            .collect()
    };
    let start = |env: Vec<(&'static str, String)>| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Proxy::start(&env)
    };
    let proxy = start(with(&[("AUTH_URL", &url)]));
    let host = proxy.host();
    let label_value = nds_tests::unique("auth-refused");
    let label = format!("nds-test={label_value}");
    let mut c = Containers(vec![]);
    let id = direct(&["run", "-d", "--network", "none", &image(), "sleep", "300"]);
    c.0.push(id.clone());
    let good = docker_config(Some("good"));
    let bad = docker_config(Some("bad"));
    let none = docker_config(None);
    let refused = "the Docker API proxy: authentication required";
    for cli in Cli::all() {
        let env = [("DOCKER_CONFIG", good.path().to_str().unwrap())];
        assert_works(&cli, &host, &[], &env, &id, "token");
        for (what, cfg) in [("no token", &none), ("bad token", &bad)] {
            let env = [("DOCKER_CONFIG", cfg.path().to_str().unwrap())];
            assert_refused(&cli, &host, &env, &label, &id, refused, what);
        }
    }
    assert_eq!(
        labelled(&label_value),
        "",
        "a refused run reached the daemon"
    );
    let seen = auth.seen();
    for want in ["/containers/create", "/attach?", "/exec/"] {
        assert!(
            seen.iter()
                .any(|h| h.contains("X-Original-URI: ") && h.contains(want)),
            "the auth service never saw {want}"
        );
    }
    // Raw: the JSON 401, and headers a client cannot forge.
    let (status, ctype, body) = raw(
        &proxy.addr(),
        "GET",
        "/_ping",
        "X-Original-URI: /forged\r\nX-Client-Cert-Subject: CN=forged\r\n",
    );
    assert_eq!(
        (status, ctype.as_str()),
        (401, "application/json"),
        "{body}"
    );
    let last = auth.seen().pop().unwrap();
    assert!(
        last.contains("X-Original-URI: /_ping\r\n") && !last.contains("forged"),
        "{last}"
    );
    // The service sees the path the daemon will receive (normalized, escaped, with the
    // query), and the raw target beside it.
    let (status, _, body) = raw(
        &proxy.addr(),
        "GET",
        "/_ping/../v1.41/containers//a%20b/json?size=1",
        "X-Auth-Token: good\r\n",
    );
    let last = auth.seen().pop().unwrap();
    println!("  dot segments: {status} {body:?}\n{last}");
    assert!(
        last.contains("X-Original-URI: /v1.41/containers/a%20b/json?size=1\r\n")
            && last
                .contains("X-Original-Raw-URI: /_ping/../v1.41/containers//a%20b/json?size=1\r\n"),
        "{last}"
    );
    assert_eq!(
        status, 404,
        "the daemon's answer for a container named 'a b': {body}"
    );
    // The internal location of the authentication service, asked directly, and headers
    // too large: nginx's own answers, in JSON.
    let (status, ctype, body) = raw(&proxy.addr(), "GET", "/_nds_auth", "X-Auth-Token: good\r\n");
    assert_eq!(
        (status, ctype.as_str()),
        (404, "application/json"),
        "{body}"
    );
    assert!(
        body.contains("the Docker API proxy: no such page (404)"),
        "{body}"
    );
    let huge = format!("X-Auth-Token: good\r\nX-Big: {}\r\n", "b".repeat(20_000));
    let (status, ctype, body) = raw(&proxy.addr(), "GET", "/_ping", &huge);
    assert_eq!(
        (status, ctype.as_str()),
        (400, "application/json"),
        "{body}"
    );
    assert!(body.contains("request headers too large (494)"), "{body}");
    drop(proxy);

    // Down, and hung (AUTH_TIMEOUT).
    let closed = closed_url();
    let hung = AuthService::hanging();
    let hung_url = hung.url();
    for (what, env, status) in [
        ("down", with(&[("AUTH_URL", &closed)]), "502"),
        (
            "hung",
            with(&[("AUTH_URL", &hung_url), ("AUTH_TIMEOUT", "1s")]),
            "504",
        ),
    ] {
        let proxy = start(env);
        let env = [("DOCKER_CONFIG", good.path().to_str().unwrap())];
        let want = format!("could not check the request with the authentication service (status {status}); refused");
        let started = Instant::now();
        assert_refused(&Cli::setup(), &proxy.host(), &env, &label, &id, &want, what);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}: {:?}",
            started.elapsed()
        );
        let (code, ctype, _) = raw(&proxy.addr(), "GET", "/_ping", "X-Auth-Token: good\r\n");
        assert_eq!((code, ctype.as_str()), (502, "application/json"), "{what}");
    }
    assert_eq!(
        labelled(&label_value),
        "",
        "a run reached the daemon with the auth service down"
    );
}

/// TLS with client certificates and AUTH_URL together; the service also learns the
/// client certificate's subject.
#[test]
fn image_tls_with_auth_request() {
    let certs = Certs::generate();
    let auth = AuthService::start();
    let url = auth.url();
    let mount = format!("{}:/certs:ro", certs.path_str("server"));
    let proxy = Proxy::start_with(&run_and_exec(&[("AUTH_URL", &url)]), &["-v", &mount]);
    let mut c = Containers(vec![]);
    let id = direct(&["run", "-d", "--network", "none", &image(), "sleep", "300"]);
    c.0.push(id.clone());
    let good = certs.path_str("good");
    let token = docker_config(Some("good"));
    let none = docker_config(None);
    let label_value = nds_tests::unique("tls-auth-refused");
    let label = format!("nds-test={label_value}");
    let cli = Cli::setup();
    let tls = [
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", good.as_str()),
    ];
    let mut env = tls.to_vec();
    env.push(("DOCKER_CONFIG", token.path().to_str().unwrap()));
    assert_works(&cli, &proxy.host(), &[], &env, &id, "cert+token");
    env.pop();
    env.push(("DOCKER_CONFIG", none.path().to_str().unwrap()));
    assert_refused(
        &cli,
        &proxy.host(),
        &env,
        &label,
        &id,
        "authentication required",
        "cert only",
    );
    assert_eq!(labelled(&label_value), "");
    assert!(
        auth.seen()
            .iter()
            .any(|h| h.contains("X-Client-Cert-Subject: CN=nds test client")
                && h.contains("X-Client-Cert-Verify: SUCCESS")
                && h.contains("X-Forwarded-Proto: https")),
        "{:?}",
        auth.seen().last()
    );
}

/// The TLS and auth settings that contradict each other, or leave write access open to
/// the network, stop the container with a clear message; the safe ones pass `nginx -t`.
#[test]
fn image_tls_auth_refusals() {
    let tag = image_tag();
    let certs = Certs::generate();
    let volume = format!("{}:/var/run/docker.sock", docker_sock().display());
    let srv = |f: &str, to: &str| format!("{}:{to}:ro", certs.path_str(&format!("server/{f}")));
    let all = format!("{}:/certs:ro", certs.path_str("server"));
    let other_dir = format!("{}:/tls:ro", certs.path_str("server"));
    let cert = srv("server-cert.pem", "/certs/server-cert.pem");
    let key = srv("server-key.pem", "/certs/server-key.pem");
    let ca = srv("ca.pem", "/certs/ca.pem");
    // dind's layout: /certs/server/{ca,cert,key}.pem
    let dind = [
        srv("ca.pem", "/certs/server/ca.pem"),
        srv("server-cert.pem", "/certs/server/cert.pem"),
        srv("server-key.pem", "/certs/server/key.pem"),
    ];
    let check = |env: &[&str], mounts: &[&str]| -> Out {
        let mut args = vec!["run", "--rm", "--network", "none", "-v", &volume];
        for m in mounts {
            args.extend(["-v", m]);
        }
        for e in env {
            args.extend(["-e", e]);
        }
        args.extend([tag.as_str(), "nginx", "-t"]);
        cli_run(&Cli::setup(), &direct_host(), &args, Input::None)
    };
    let refused: Vec<(&[&str], Vec<&str>, &str)> = vec![
        (&[], vec![&cert], "server certificate /certs/server-cert.pem without its key"),
        (&[], vec![&key], "server key /certs/server-key.pem without its certificate"),
        (&[], vec![&ca], "CA certificate /certs/ca.pem (to verify client certificates) but no server certificate"),
        (&[], vec![&cert, &ca], "without its key"),
        (&["TLS_CERT=/nowhere/cert.pem"], vec![&all], "TLS_CERT=/nowhere/cert.pem: no such file"),
        (&["TLS_CERTDIR=/nowhere"], vec![], "TLS_CERTDIR=/nowhere: no such directory"),
        (
            &["POST=1", "CONTAINERS=1"],
            vec![&cert, &key],
            "LISTEN=2376 listens on all interfaces with TLS but without client certificates",
        ),
        (
            &["POST=1", "LISTEN_PLAIN=2375"],
            vec![&all],
            "LISTEN_PLAIN=2375 listens on all interfaces without TLS or authentication",
        ),
        (&["LISTEN_PLAIN=127.0.0.1:2375"], vec![], "LISTEN_PLAIN=127.0.0.1:2375 is a plain listener next to the TLS one"),
        (&["LISTEN=2376", "LISTEN_PLAIN=2376"], vec![&all], "the same as the TLS listener"),
        (&["AUTH_URL=ftp://auth/check"], vec![], "AUTH_URL=ftp://auth/check: expected http(s)://HOST"),
        (&["AUTH_URL=http://auth/check?x=1"], vec![], "no query string"),
        (&["AUTH_URL=http://auth/check", "AUTH_TIMEOUT=soon"], vec![], "AUTH_TIMEOUT=soon"),
    ];
    let mut failures = Vec::new();
    for (env, mounts, want) in &refused {
        let out = check(env, mounts);
        let ok = out.code == Some(64)
            && out.stderr.contains("refusing to start")
            && out.stderr.contains(want);
        println!(
            "  refuses {:60} {}",
            format!("{env:?} {}", mounts.len()),
            if ok { "ok" } else { "NO" }
        );
        if !ok {
            failures.push(format!("{env:?} {mounts:?}: {}", out.brief()));
        }
    }
    let dind_mounts: Vec<&str> = dind.iter().map(String::as_str).collect();
    let accepted: Vec<(&[&str], Vec<&str>, &str)> = vec![
        // TLS + client certificates make write access on all interfaces safe.
        (&["POST=1", "CONTAINERS=1"], vec![&all], "2376 ssl"),
        (
            &["POST=1", "LISTEN=0.0.0.0:2376"],
            vec![&all],
            "listen 0.0.0.0:2376 ssl;",
        ),
        // So does an authentication service, with or without TLS.
        (
            &["POST=1", "AUTH_URL=http://127.0.0.1:9/check"],
            vec![],
            "auth_request: http://127.0.0.1:9/check",
        ),
        (
            &["POST=1", "AUTH_URL=https://127.0.0.1:8443/v1/check"],
            vec![&cert, &key],
            "TLS: /certs/server-cert.pem, no client certificates",
        ),
        // Server-only TLS, read-only.
        (&["CONTAINERS=1"], vec![&cert, &key], "2376 ssl;"),
        // A plain loopback listener next to TLS.
        (
            &["POST=1", "LISTEN_PLAIN=127.0.0.1:2375"],
            vec![&all],
            "listen 127.0.0.1:2375;",
        ),
        (
            &["TLS_CERTDIR=/tls"],
            vec![&other_dir],
            "client certificates from /tls/ca.pem",
        ),
        (
            &[
                "TLS_CACERT=/certs/server/ca.pem",
                "TLS_CERT=/certs/server/cert.pem",
                "TLS_KEY=/certs/server/key.pem",
            ],
            dind_mounts,
            "client certificates from /certs/server/ca.pem",
        ),
    ];
    for (env, mounts, want) in &accepted {
        let out = check(env, mounts);
        let ok = out.ok() && out.stderr.contains("test is successful") && out.stderr.contains(want);
        println!(
            "  accepts {:60} {}",
            format!("{env:?} {}", mounts.len()),
            if ok { "ok" } else { "NO" }
        );
        if !ok {
            failures.push(format!(
                "{env:?} {mounts:?} refused or without {want:?}: {}",
                out.brief()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

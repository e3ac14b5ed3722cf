//! `docker_api_allow` / `docker_api_deny` against the real dockerd, with both docker CLIs
//! and raw HTTP: refused operations get a JSON 403 that the CLI shows and never reach the
//! daemon (checked on the daemon); allowed ones, hijacks included, work as on the direct
//! socket. The control is a location of the same nginx without rules, where every refused
//! case goes through.
//!
//! Three listeners of one nginx: the main server (`docker-api.conf`, no rules: the
//! control) and two more, "readonly" (`docker_api_allow read`) and "runner"
//! (runs containers, no exec, no logs), whose access log records the operation variables.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nds_tests::certs::Certs;
use nds_tests::cli::{direct, docker, tls_host, Containers, Input, Out};
use nds_tests::nginx::{Nginx, NginxConf, Recipe};
use nds_tests::raw::{self, read_to_eof, Conn};
use nds_tests::{docker_sock, image, root, unique, Cli};

const T: Duration = Duration::from_secs(60);

struct Proxy {
    nginx: Nginx,
    dir: tempfile::TempDir,
    /// `127.0.0.1:port` of each listener.
    readonly: String,
    runner: String,
    /// A unix socket whose policy an `auth_request` service names.
    byauth: String,
}

impl Proxy {
    /// The extra listeners are on TCP ports, as clients of a proxy usually reach it.
    fn start() -> Proxy {
        let tmp = tempfile::tempdir().unwrap();
        let (nginx, ports) = Nginx::start_with_ports(2, |p| Self::conf(tmp.path(), p[0], p[1]));
        Proxy {
            nginx,
            byauth: tmp.path().join("byauth.sock").display().to_string(),
            dir: tmp,
            readonly: format!("127.0.0.1:{}", ports[0]),
            runner: format!("127.0.0.1:{}", ports[1]),
        }
    }

    fn conf(dir: &Path, readonly: u16, runner: u16) -> NginxConf {
        let mut conf = NginxConf::docker(true, Recipe::Recommended);
        let pass = format!(
            "include {}; proxy_pass http://unix:{};",
            root().join("nginx-config/docker-api.conf").display(),
            docker_sock().display()
        );
        conf.http = format!(
            r#"
    log_format api '$request_method $uri $status op=$docker_api_operation group=$docker_api_group obj=$docker_api_object v=$docker_api_version d=$docker_api_decision rule="$docker_api_rule"';
    server {{
        listen 127.0.0.1:{readonly};
        access_log {dir}/api.log api;
        docker_api_allow read;
        location / {{ {pass} }}
    }}
    server {{
        listen 127.0.0.1:{runner};
        access_log {dir}/api.log api;
        docker_api_deny containers.exec containers.logs;
        docker_api_allow read containers.create containers.attach containers.lifecycle;
        docker_api_allow containers.delete;
        location / {{ {pass} }}
        location /nothing-allowed/ {{ docker_api_deny all; {pass} }}
        location ~ ^/v1\.99/ {{
            docker_api_deny ContainerList;
            docker_api_allow read;
            docker_api_refusal_hint "ask ops ($docker_api_rule: $docker_api_operation)$http_x_no_hint";
            {pass}
        }}
        location ~ ^/v1\.98/ {{
            docker_api_refusal_hint $http_x_no_hint;
            {pass}
        }}
    }}
    docker_api_policy reader {{
        allow read;
    }}
    server {{
        listen unix:{dir}/byauth.sock;
        location = /_policy {{
            internal;
            proxy_pass http://unix:{dir}/auth.sock;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location / {{
            auth_request /_policy;
            auth_request_set $policy_from_auth $upstream_http_x_docker_policy;
            docker_api_rules $policy_from_auth;
            {pass}
        }}
    }}
    server {{
        listen unix:{dir}/auth.sock;
        # A stand-in for an authentication service: it names the policy the client asks
        # for.
        location / {{ add_header X-Docker-Policy $http_x_test_policy; return 204; }}
    }}
"#,
            dir = dir.display(),
        );
        conf
    }

    /// The access log once it has `line` (nginx writes it just after the response's
    /// last byte, so a client can be faster), or as it is after 5 s.
    fn api_log_with(&self, line: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = std::fs::read_to_string(self.dir.path().join("api.log")).unwrap_or_default();
            if log.contains(line) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn tcp_host(addr: &str) -> String {
    format!("tcp://{addr}")
}

fn run(cli: &Cli, host: &str, args: &[&str], input: Input) -> Out {
    docker(cli, host, args, input, T)
}

/// The CLI's error for a refusal names the operation and the rule that would allow it.
fn assert_refused(out: &Out, what: &str, needle: &str) {
    assert!(!out.ok(), "{what}: was let through: {}", out.brief());
    assert!(
        out.stderr.contains(needle) && out.stderr.contains("by this proxy"),
        "{what}: the error does not say {needle:?}: {}",
        out.brief()
    );
}

/// `docker run --rm -i` with input that ends, through `host`: the output after the end
/// of input shows that it reached the container.
fn assert_run_with_stdin(cli: &Cli, host: &str, what: &str) {
    let out = run(
        cli,
        host,
        &[
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            &image(),
            "sh",
            "-c",
            "cat; echo after-eof",
        ],
        Input::Bytes(b"one\ntwo\n".to_vec()),
    );
    assert!(out.ok(), "{}: {what}: run -i: {}", cli.name, out.brief());
    assert_eq!(
        out.stdout_str(),
        "one\ntwo\nafter-eof\n",
        "{}: {what}",
        cli.name
    );
}

fn containers_labelled(label: &str) -> String {
    direct(&["ps", "-aq", "--filter", &format!("label={label}")])
}

#[test]
fn readonly_lists_but_creates_nothing() {
    let p = Proxy::start();
    let host = tcp_host(&p.readonly);
    for cli in Cli::all() {
        let out = run(&cli, &host, &["ps", "-a"], Input::None);
        assert!(out.ok(), "{}: ps: {}", cli.name, out.brief());
        let out = run(&cli, &host, &["image", "inspect", &image()], Input::None);
        assert!(out.ok(), "{}: image inspect: {}", cli.name, out.brief());

        let label = unique("nds-rules-ro");
        let out = run(
            &cli,
            &host,
            &["run", "--rm", "--label", &label, &image(), "true"],
            Input::None,
        );
        assert_refused(
            &out,
            &format!("{}: run", cli.name),
            "ContainerCreate (group containers.create, section containers) is not allowed",
        );
        assert!(
            out.stderr.contains("docker_api_allow containers.create"),
            "{}",
            out.brief()
        );
        assert_eq!(containers_labelled(&label), "", "a container was created");

        // The control: the same nginx, a location without rules.
        let out = run(
            &cli,
            &p.nginx.host(),
            &["run", "--rm", "--label", &label, &image(), "true"],
            Input::None,
        );
        assert!(out.ok(), "{}: control run: {}", cli.name, out.brief());
    }
    let log = p.nginx.error_log();
    assert!(
        log.contains("docker_api: ContainerCreate (group containers.create"),
        "no refusal line in the error log:\n{log}"
    );
    p.nginx.assert_healthy();
}

#[test]
fn runner_runs_with_stdin_but_cannot_exec_or_read_logs() {
    let p = Proxy::start();
    let host = tcp_host(&p.runner);
    let mut c = Containers(Vec::new());
    let sleeper = direct(&["run", "-d", "--network", "none", &image(), "sleep", "300"]);
    c.0.push(sleeper.clone());
    for cli in Cli::all() {
        // A hijack with stdin that ends: create, attach, start, wait, delete.
        assert_run_with_stdin(&cli, &host, "runner");

        let marker = format!("/tmp/{}", unique("exec"));
        let out = run(
            &cli,
            &host,
            &["exec", &sleeper, "touch", &marker],
            Input::None,
        );
        assert_refused(
            &out,
            &format!("{}: exec", cli.name),
            "ContainerExec (group containers.exec, section containers) is refused by this proxy (\"docker_api_deny containers.exec containers.logs\")",
        );
        let out = run(&cli, &host, &["logs", &sleeper], Input::None);
        assert_refused(
            &out,
            &format!("{}: logs", cli.name),
            "ContainerLogs (group containers.logs",
        );
        let out = run(&cli, &host, &["kill", &sleeper], Input::None);
        assert_refused(
            &out,
            &format!("{}: kill", cli.name),
            "docker_api_allow containers.kill",
        );
        // Nothing ran in the container: the file is not there.
        let out = run(
            &cli,
            &nds_tests::direct_host(),
            &["exec", &sleeper, "test", "-e", &marker],
            Input::None,
        );
        assert_eq!(out.code, Some(1), "the refused exec ran: {}", out.brief());

        // The control runs the same exec.
        let out = run(
            &cli,
            &p.nginx.host(),
            &["exec", &sleeper, "touch", &marker],
            Input::None,
        );
        assert!(out.ok(), "{}: control exec: {}", cli.name, out.brief());
        direct(&["exec", &sleeper, "test", "-e", &marker]);
    }
    p.nginx.assert_healthy();
}

/// Raw requests: the refusal's head and body, paths the client writes in other forms
/// than dockerd's route (encoded, dot segments) classified as nginx normalizes them,
/// unknown paths refused, and no `100 Continue` before a refusal.
#[test]
fn raw_refusals_are_json_and_follow_the_normalized_path() {
    let p = Proxy::start();
    let sock = p.readonly.clone();
    let label = unique("nds-rules-raw");
    let body = format!(
        "{{\"Image\":\"{}\",\"Labels\":{{\"{label}\":\"\"}}}}",
        image()
    );
    for (target, needle) in [
        ("/v1.41/containers/create", "ContainerCreate"),
        ("/containers/create", "ContainerCreate"),
        ("/v1.41/containers/%63reate", "ContainerCreate"),
        ("/_ping/../containers/create", "ContainerCreate"),
        ("/v1.41/containers/x/../create", "ContainerCreate"),
        ("/v1.41/containers/create?name=x", "ContainerCreate"),
        (
            "/v1.41/Containers/create",
            "this path (no Docker API operation)",
        ),
        ("/foo", "this path (no Docker API operation)"),
    ] {
        let mut conn = Conn::connect(&sock);
        let r = raw::request(
            &mut conn,
            &format!(
                "POST {target} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        assert_eq!(r.status(), 403, "{target}: {}", r.status_line);
        assert_eq!(
            r.header("Content-Type"),
            Some("application/json"),
            "{target}"
        );
        let (rest, _) = read_to_eof(&mut conn, r.rest, Duration::from_secs(10));
        let text = String::from_utf8_lossy(&rest).into_owned();
        assert!(
            text.starts_with("{\"message\":\"") && text.ends_with("\"}\n"),
            "{target}: not a JSON message: {text:?}"
        );
        assert!(text.contains(needle), "{target}: {text}");
    }
    assert_eq!(containers_labelled(&label), "", "a container was created");

    // GET of the unknown path: refused too (rules are an allow-list).
    let mut conn = Conn::connect(&sock);
    let r = raw::request(
        &mut conn,
        "GET /no/such/route HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status(), 403);

    // Expect: 100-continue: the refusal comes without a 100 first.
    let mut conn = Conn::connect(&sock);
    let r = raw::request(
        &mut conn,
        &format!(
            "POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        ),
    );
    assert_eq!(r.status(), 403, "{}", r.status_line);

    // An allowed read through the same listener.
    let mut conn = Conn::connect(&sock);
    let r = raw::request(
        &mut conn,
        "GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status(), 200);
    p.nginx.assert_healthy();
}

/// The body of the 403 that `addr` answers to `method target`.
fn refusal(addr: &str, method: &str, target: &str) -> String {
    let mut conn = Conn::connect(addr);
    let r = raw::request(
        &mut conn,
        &format!(
            "{method} {target} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(r.status(), 403, "{method} {target}: {}", r.status_line);
    let (rest, _) = read_to_eof(&mut conn, r.rest, Duration::from_secs(10));
    String::from_utf8_lossy(&rest).into_owned()
}

#[test]
fn a_refusal_hint_follows_the_message() {
    let p = Proxy::start();
    // The rule that refused and the operation, as variables, after the module's message.
    let text = refusal(&p.runner, "GET", "/v1.99/containers/json");
    assert!(
        text.ends_with(
            r#"(\"docker_api_deny ContainerList\"); ask ops (docker_api_deny ContainerList: ContainerList)"}
"#
        ),
        "{text}"
    );
    // No rule matched (a write; the location allows reads only).
    let text = refusal(&p.runner, "POST", "/v1.99/containers/create");
    assert!(
        text.ends_with("; ask ops (no rule: ContainerCreate)\"}\n"),
        "{text}"
    );
    // An empty hint adds nothing; a location without one has none (the server sets none).
    let text = refusal(&p.runner, "POST", "/v1.98/containers/x/exec");
    assert!(
        text.ends_with("\\\")\"}\n") && !text.contains("; "),
        "{text}"
    );
    let text = refusal(&p.runner, "GET", "/nothing-allowed/_ping");
    assert!(!text.contains("ask ops"), "{text}");
    p.nginx.assert_healthy();
}

#[test]
fn deny_all_in_a_location_replaces_the_servers_rules() {
    let p = Proxy::start();
    let mut conn = Conn::connect(&p.runner);
    let r = raw::request(
        &mut conn,
        "GET /nothing-allowed/../_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
    );
    // Normalized to /_ping: the server's rules let it through (dockerd, given the raw
    // path, redirects).
    assert_ne!(r.status(), 403, "{}", r.status_line);
    let mut conn = Conn::connect(&p.runner);
    conn.write_all(
        b"GET /nothing-allowed/_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let r = raw::read_head(&mut conn);
    assert_eq!(r.status(), 403, "{}", r.status_line);
    let (rest, _) = read_to_eof(&mut conn, r.rest, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&rest);
    assert!(text.contains("(\\\"docker_api_deny all\\\")"), "{text}");
}

#[test]
fn variables_name_the_operation_in_the_access_log() {
    let p = Proxy::start();
    let host = tcp_host(&p.runner);
    let cli = Cli::setup();
    let out = run(
        &cli,
        &host,
        &["image", "inspect", &format!("{}:latest", image())],
        Input::None,
    );
    assert!(out.ok(), "{}", out.brief());
    let mut conn = Conn::connect(&p.runner);
    let r = raw::request(
        &mut conn,
        "GET /v1.47/containers/nds-no-such-container/logs?stdout=1 HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status(), 403);
    let mut conn = Conn::connect(&p.runner);
    let r = raw::request(
        &mut conn,
        "GET /v1.41.0/images/a%2Fb:c/json HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status(), 404);
    let img = image();
    for line in [
        format!("op=ImageInspect group=images.read obj={img}:latest v=1."),
        "403 op=ContainerLogs group=containers.logs obj=nds-no-such-container v=1.47".to_string(),
        "/v1.41.0/images/a/b:c/json 404 op=ImageInspect group=images.read obj=a/b:c v=1.41.0"
            .to_string(),
    ] {
        let log = p.api_log_with(&line);
        assert!(log.contains(&line), "no {line:?} in the access log:\n{log}");
    }
    for line in [
        "op=ImageInspect group=images.read obj=nds-busybox:latest v=1.41 d=allow rule=\"docker_api_allow read containers.create containers.attach containers.lifecycle\"",
        "op=ContainerLogs group=containers.logs obj=nds-no-such-container v=1.47 d=deny rule=\"docker_api_deny containers.exec containers.logs\"",
    ] {
        let log = p.api_log_with(line);
        assert!(log.contains(line), "no {line:?} in the access log:\n{log}");
    }
    // A path with no route: empty operation and group.
    let mut conn = Conn::connect(&p.runner);
    let r = raw::request(
        &mut conn,
        "GET /nope HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status(), 403);
    let log = p.api_log_with("GET /nope 403 ");
    assert!(
        log.contains("GET /nope 403 op= group= obj= v= d=deny rule=\"no rule\""),
        "unknown path logged as:\n{log}"
    );
}

/// `docker_api_rules $var` with the policy named by an `auth_request` service's response
/// header; a name no policy has, and no name, are refused.
#[test]
fn a_policy_named_by_the_auth_service() {
    let p = Proxy::start();
    let send = |policy: Option<&str>, head: &str| {
        let mut conn = Conn::connect(&p.byauth);
        let policy = policy.map_or(String::new(), |v| format!("X-Test-Policy: {v}\r\n"));
        let (line, rest) = head.split_once("\r\n").unwrap();
        conn.write_all(format!("{line}\r\n{policy}{rest}").as_bytes())
            .unwrap();
        let r = raw::read_head(&mut conn);
        let (body, _) = read_to_eof(&mut conn, r.rest.clone(), Duration::from_secs(10));
        (r.status(), String::from_utf8_lossy(&body).into_owned())
    };
    let list = "GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n";
    let create = "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\n\
                  Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    assert_eq!(send(Some("reader"), list).0, 200);
    let (status, body) = send(Some("reader"), create);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(r#"it would take \"allow containers.create\" in docker_api_policy reader"#),
        "{body}"
    );
    let (status, body) = send(Some("nosuch"), list);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(r#"the Docker API policy \"nosuch\" named for this client is not defined"#),
        "{body}"
    );
    let (status, body) = send(None, list);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("this client has no Docker API policy"),
        "{body}"
    );
    p.nginx.assert_healthy();
}

/// `nginx-config/docker-api-policies.conf` as it is (paths, subjects and port replaced):
/// each client certificate gets its policy, with both CLIs over TLS.
#[test]
fn policies_per_client_certificate_from_the_snippet() {
    let certs = Certs::generate();
    let dirs: Vec<PathBuf> = ["ci", "traefik", "stranger"]
        .iter()
        .map(|n| certs.add_client(n))
        .collect();
    let files = tempfile::tempdir().unwrap();
    let ci_data = tempfile::tempdir().unwrap();
    for f in ["server-cert.pem", "server-key.pem", "ca.pem"] {
        std::fs::copy(certs.path(&format!("server/{f}")), files.path().join(f)).unwrap();
    }
    let (nginx, ports) = Nginx::start_with_ports(1, |ports| {
        let port = ports[0];
        let mut text =
            std::fs::read_to_string(root().join("nginx-config/docker-api-policies.conf")).unwrap();
        for (from, to) in [
            ("\"CN=ci-runner\"", "\"CN=nds test ci\"".to_string()),
            ("\"CN=traefik\"", "\"CN=nds test traefik\"".to_string()),
            (
                "guard_bind_mounts /srv/ci-data;",
                format!("guard_bind_mounts {};", ci_data.path().display()),
            ),
            ("listen 2376 ssl;", format!("listen 127.0.0.1:{port} ssl;")),
            (
                "/etc/nginx/docker-policies/",
                format!("{}/", files.path().display()),
            ),
            (
                "/etc/nginx/docker-api.conf",
                root()
                    .join("nginx-config/docker-api.conf")
                    .display()
                    .to_string(),
            ),
            (
                "unix:/var/run/docker.sock",
                format!("unix:{}", docker_sock().display()),
            ),
        ] {
            assert!(text.contains(from), "the snippet no longer has {from:?}");
            text = text.replace(from, &to);
        }
        let path = files.path().join(format!("policies-{port}.conf"));
        std::fs::write(&path, text).unwrap();
        let mut conf = NginxConf::docker(true, Recipe::Recommended);
        conf.http = format!("include {};", path.display());
        conf
    });
    let addr = format!("127.0.0.1:{}", ports[0]);
    let [ci, traefik, stranger] = [0, 1, 2].map(|i| tls_host(&addr, &dirs[i]));

    let mut c = Containers(Vec::new());
    let sleeper = direct(&["run", "-d", "--network", "none", &image(), "sleep", "300"]);
    c.0.push(sleeper.clone());
    for cli in Cli::all() {
        assert_run_with_stdin(&cli, &ci, "ci");
        // Its guards: the data directory, but nothing privileged and no other host path.
        let mount = format!("{}:/data", ci_data.path().display());
        let out = run(
            &cli,
            &ci,
            &[
                "run",
                "--rm",
                "-v",
                &mount,
                &image(),
                "touch",
                &format!("/data/{}", cli.name),
            ],
            Input::None,
        );
        assert!(out.ok(), "{}: ci run -v data: {}", cli.name, out.brief());
        assert!(ci_data.path().join(cli.name).exists());
        for opts in [&["--privileged"][..], &["-v", "/etc:/e"]] {
            let mut args = vec!["run", "--rm"];
            args.extend(opts);
            let img = image();
            args.extend([img.as_str(), "true"]);
            let out = run(&cli, &ci, &args, Input::None);
            assert!(
                !out.ok()
                    && out
                        .stderr
                        .contains("is refused by this proxy (docker_api_guard"),
                "{}: ci run {opts:?}: {}",
                cli.name,
                out.brief()
            );
        }
        // Traefik's policy has no guards, and this location none: nothing to check (its
        // rules refuse creates anyway).
        let out = run(&cli, &ci, &["exec", &sleeper, "true"], Input::None);
        assert_refused(
            &out,
            &format!("{}: ci exec", cli.name),
            r#"is refused by this proxy ("deny containers.exec exec.start containers.logs" in docker_api_policy ci)"#,
        );

        let out = run(&cli, &traefik, &["ps"], Input::None);
        assert!(out.ok(), "{}: traefik ps: {}", cli.name, out.brief());
        let label = unique("nds-policy");
        let out = run(
            &cli,
            &traefik,
            &["run", "--rm", "--label", &label, &image(), "true"],
            Input::None,
        );
        assert_refused(
            &out,
            &format!("{}: traefik run", cli.name),
            r#"it would take "allow containers.create" in docker_api_policy traefik"#,
        );
        assert_eq!(containers_labelled(&label), "", "a container was created");
        let out = run(&cli, &traefik, &["logs", &sleeper], Input::None);
        assert_refused(
            &out,
            &format!("{}: traefik logs", cli.name),
            "ContainerLogs",
        );

        let out = run(&cli, &stranger, &["ps"], Input::None);
        assert!(!out.ok(), "{}: stranger ps: {}", cli.name, out.brief());
        assert!(
            out.stderr
                .contains("this client has no Docker API policy on this proxy"),
            "{}: {}",
            cli.name,
            out.brief()
        );
    }
    nginx.assert_healthy();
}

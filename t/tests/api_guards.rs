//! `docker_api_guard` against the real dockerd: for each guard, requests it must refuse
//! and the same requests it lets through, sent by both docker CLIs and as raw HTTP with
//! case-changed and duplicated keys, chunked bodies, bodies past the limit, invalid JSON
//! and `Content-Length: 0` followed by bytes. Refused requests never reach the daemon
//! (every container is labelled, and the label is looked for on the daemon afterwards).
//! The control is the same nginx's location without guards, which lets them through.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use nds_tests::cli::{direct, docker, Containers, Input, Out};
use nds_tests::nginx::{Nginx, NginxConf, Recipe};
use nds_tests::raw::{self, read_to_eof, Conn};
use nds_tests::{docker_sock, image, root, unique, Cli};

const T: Duration = Duration::from_secs(60);
const LIMIT: usize = 64 * 1024;

struct Proxy {
    nginx: Nginx,
    /// `127.0.0.1:port` of the guarded listener.
    guarded: String,
    /// The one host directory bind mounts may use.
    data: tempfile::TempDir,
    /// The guarded listener's access log (`g.log`).
    logs: tempfile::TempDir,
}

impl Proxy {
    fn start() -> Proxy {
        let data = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let (nginx, ports) = Nginx::start_with_ports(1, |p| conf(p[0], data.path(), logs.path()));
        Proxy {
            nginx,
            guarded: format!("127.0.0.1:{}", ports[0]),
            data,
            logs,
        }
    }

    fn host(&self) -> String {
        format!("tcp://{}", self.guarded)
    }
}

fn conf(port: u16, data: &Path, logs: &Path) -> NginxConf {
    let mut conf = NginxConf::docker(true, Recipe::Recommended);
    conf.http = format!(
        r#"
    log_format guard '$request_method $uri $status d=$docker_api_decision rule="$docker_api_rule"';
    server {{
        listen 127.0.0.1:{port};
        access_log {logs}/g.log guard;
        docker_api_guard all;
        docker_api_guard_capabilities CHOWN;
        docker_api_guard_bind_mounts {data};
        docker_api_guard_body_size {LIMIT};
        location / {{ include {conf}; proxy_pass http://unix:{sock}; }}
    }}
"#,
        data = data.display(),
        logs = logs.display(),
        conf = root().join("nginx-config/docker-api.conf").display(),
        sock = docker_sock().display(),
    );
    conf
}

fn run(cli: &Cli, host: &str, args: &[&str], input: Input) -> Out {
    docker(cli, host, args, input, T)
}

fn labelled(label: &str) -> String {
    direct(&["ps", "-aq", "--filter", &format!("label={label}")])
}

/// `docker run` options each guard refuses, with the words the refusal must contain.
fn refused_runs() -> Vec<(Vec<&'static str>, &'static str)> {
    vec![
        (vec!["--privileged"], "(docker_api_guard privileged)"),
        (
            vec!["-v", "/:/host"],
            "a bind mount of / (HostConfig.Binds)",
        ),
        (vec!["-v", "/etc:/e:ro"], "a bind mount of /etc"),
        (
            vec!["--mount", "type=bind,src=/etc,dst=/e"],
            "a bind mount of /etc (HostConfig.Mounts)",
        ),
        (vec!["--cap-add", "SYS_ADMIN"], "the capability SYS_ADMIN"),
        (vec!["--cap-add", "ALL"], "the capability ALL"),
        (
            vec!["--device", "/dev/null:/dev/xnull"],
            "(docker_api_guard devices)",
        ),
        (vec!["--network", "host"], "HostConfig.NetworkMode host"),
        (vec!["--pid", "host"], "HostConfig.PidMode host"),
        (vec!["--ipc", "host"], "HostConfig.IpcMode host"),
        (vec!["--uts", "host"], "HostConfig.UTSMode host"),
        (vec!["--userns", "host"], "HostConfig.UsernsMode host"),
        (
            vec!["--security-opt", "seccomp=unconfined"],
            "(docker_api_guard unconfined)",
        ),
        (
            vec!["--security-opt", "apparmor=unconfined"],
            "(docker_api_guard unconfined)",
        ),
        (
            vec!["--security-opt", "label=disable"],
            "(docker_api_guard unconfined)",
        ),
    ]
}

#[test]
fn cli_runs_refused_by_each_guard_and_allowed_by_the_control() {
    let p = Proxy::start();
    let host = p.host();
    for cli in Cli::all() {
        for (opts, needle) in refused_runs() {
            let label = unique("nds-guard");
            let mut args = vec!["run", "--rm", "--label", label.as_str()];
            args.extend(opts.iter().copied());
            let img = image();
            args.extend([img.as_str(), "true"]);
            let out = run(&cli, &host, &args, Input::None);
            let what = format!("{}: run {}", cli.name, opts.join(" "));
            assert!(!out.ok(), "{what}: was let through: {}", out.brief());
            assert!(
                out.stderr.contains("ContainerCreate with ")
                    && out.stderr.contains("is refused by this proxy")
                    && out.stderr.contains(needle),
                "{what}: the error does not say {needle:?}: {}",
                out.brief()
            );
            assert_eq!(labelled(&label), "", "{what}: a container was created");
        }
    }
    // The control: the same options through the location without guards (one CLI; the
    // create is enough, nothing is started).
    let cli = Cli::setup();
    let mut c = Containers(Vec::new());
    for (opts, _) in refused_runs() {
        let mut args = vec!["create"];
        args.extend(opts.iter().copied());
        let img = image();
        args.extend([img.as_str(), "true"]);
        let out = run(&cli, &p.nginx.host(), &args, Input::None);
        assert!(
            out.ok(),
            "control create {}: {}",
            opts.join(" "),
            out.brief()
        );
        c.0.push(out.stdout_str().trim().to_string());
    }
    p.nginx.assert_healthy();
}

#[test]
fn what_the_guards_allow_works_hijacks_included() {
    let p = Proxy::start();
    let host = p.host();
    let mut c = Containers(Vec::new());
    let sleeper = direct(&["run", "-d", "--network", "none", &image(), "sleep", "300"]);
    c.0.push(sleeper.clone());
    let data = p.data.path().display().to_string();
    for cli in Cli::all() {
        // The body is read whole before proxy_pass, then the hijack streams as before.
        let out = run(
            &cli,
            &host,
            &[
                "run",
                "--rm",
                "-i",
                "--network",
                "none",
                "--cap-add",
                "CHOWN",
                "-v",
                &format!("{data}:/data"),
                &image(),
                "sh",
                "-c",
                &format!("cat > /data/{}; cat /data/{0}; echo after-eof", cli.name),
            ],
            Input::Bytes(b"one\ntwo\n".to_vec()),
        );
        assert!(out.ok(), "{}: run -i: {}", cli.name, out.brief());
        assert_eq!(out.stdout_str(), "one\ntwo\nafter-eof\n", "{}", cli.name);
        assert_eq!(
            std::fs::read_to_string(p.data.path().join(cli.name)).unwrap(),
            "one\ntwo\n"
        );
        // An unprivileged exec with stdin.
        let out = run(
            &cli,
            &host,
            &["exec", "-i", &sleeper, "sh", "-c", "cat; echo done"],
            Input::Bytes(b"x\n".to_vec()),
        );
        assert!(out.ok(), "{}: exec -i: {}", cli.name, out.brief());
        assert_eq!(out.stdout_str(), "x\ndone\n");
        // A privileged one is refused, and does not run.
        let marker = format!("/tmp/{}", unique("priv"));
        let out = run(
            &cli,
            &host,
            &["exec", "--privileged", &sleeper, "touch", &marker],
            Input::None,
        );
        assert!(
            !out.ok(),
            "{}: exec --privileged: {}",
            cli.name,
            out.brief()
        );
        assert!(
            out.stderr
                .contains("ContainerExec with a privileged exec (Privileged) is refused"),
            "{}: {}",
            cli.name,
            out.brief()
        );
        let check = run(
            &cli,
            &nds_tests::direct_host(),
            &["exec", &sleeper, "test", "-e", &marker],
            Input::None,
        );
        assert_eq!(check.code, Some(1), "the refused exec ran");
    }
    p.nginx.assert_healthy();
}

/// A raw request to `addr`; returns the status and the body.
fn send(addr: &str, request: &[u8]) -> (u16, String) {
    let mut conn = Conn::connect(addr);
    conn.write_all(request).unwrap();
    let r = raw::read_head(&mut conn);
    let (body, _) = read_to_eof(&mut conn, r.rest.clone(), Duration::from_secs(10));
    (r.status(), String::from_utf8_lossy(&body).into_owned())
}

fn create_request(body: &str) -> Vec<u8> {
    format!(
        "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn chunked_create_request(body: &str) -> Vec<u8> {
    let mut r = b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\n\
                  Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
                  Connection: close\r\n\r\n"
        .to_vec();
    for piece in body.as_bytes().chunks(7) {
        r.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        r.extend_from_slice(piece);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\n");
    r
}

#[test]
fn raw_bodies_are_read_as_the_daemon_reads_them() {
    let p = Proxy::start();
    let label = unique("nds-guard-raw");
    let img = image();
    let body = |host_config: &str| {
        format!(r#"{{"Image":"{img}","Labels":{{"{label}":""}},{host_config}}}"#)
    };
    let mut c = Containers(Vec::new());
    for (hc, needle) in [
        (r#""hostconfig":{"privileged":true}"#, "privileged"),
        (r#""HostConfig":{"PRIVILEGED":true}"#, "privileged"),
        (
            r#""HostConfig":{"Privileged":false,"Privileged":true}"#,
            "privileged",
        ),
        (
            r#""HostConfig":{"Privileged":true,"Privileged":null}"#,
            "privileged",
        ),
        (
            r#""HostConfig":{"Privileged":true},"HostConfig":{"NetworkMode":"none"}"#,
            "privileged",
        ),
        (
            r#""HostConfig":{"Bind\u017f":["/:/host"]}"#,
            "bind mount of /",
        ),
        (
            r#""HostConfig":{"Binds":["/etc:/e"],"binds":["/:/h"]}"#,
            "bind mount of /",
        ),
        (
            r#""HostConfig":{"Networ\u212aMode":"host"}"#,
            "HostConfig.NetworkMode host",
        ),
        (
            r#""HostConfig":{"Privileged":"yes"}"#,
            "where the daemon expects a boolean",
        ),
    ] {
        let b = body(hc);
        for (request, how) in [
            (create_request(&b), "length"),
            (chunked_create_request(&b), "chunked"),
        ] {
            let (status, text) = send(&p.guarded, &request);
            assert_eq!(status, 403, "{how} {hc}: {text}");
            assert!(text.contains(needle), "{how} {hc}: {text}");
            assert!(
                text.starts_with("{\"message\":\"ContainerCreate "),
                "{how} {hc}: {text}"
            );
        }
    }
    assert_eq!(labelled(&label), "", "a refused create reached the daemon");

    // The same shapes, harmless, pass (and are created).
    for hc in [
        r#""hostconfig":{"privileged":false}"#,
        r#""HostConfig":{"Privileged":true,"Privileged":false}"#,
        r#""HostConfig":{"Privileged":true},"HostConfig":null"#,
    ] {
        for request in [create_request(&body(hc)), chunked_create_request(&body(hc))] {
            let (status, text) = send(&p.guarded, &request);
            assert_eq!(status, 201, "{hc}: {text}");
            let id = text.split('"').nth(3).unwrap_or_default().to_string();
            c.0.push(id);
        }
    }

    // A body past nginx's in-memory buffer (16 KiB: it is read from nginx's temporary
    // file) but within the limit is checked and passed on whole.
    let env = format!("X={}", "y".repeat(40_000));
    let long = body(&format!(
        r#""Env":["{env}"],"HostConfig":{{"Privileged":false}}"#
    ));
    for request in [create_request(&long), chunked_create_request(&long)] {
        let (status, text) = send(&p.guarded, &request);
        assert_eq!(status, 201, "{text}");
        let id = text.split('"').nth(3).unwrap_or_default().to_string();
        let inspect = direct(&["inspect", "-f", "{{range .Config.Env}}{{.}} {{end}}", &id]);
        assert!(
            inspect.contains(&env),
            "the body did not reach the daemon whole"
        );
        c.0.push(id);
    }

    // Bodies that cannot be checked: invalid JSON, past the limit (by length, and
    // chunked), and a zero length followed by the body (CVE-2024-41110's shape).
    let big = body(&format!(
        r#""HostConfig":{{}},"Env":["X={}"]"#,
        "x".repeat(LIMIT)
    ));
    for (request, status, needle) in [
        (create_request("{\"Image\":"), 403, "not valid JSON"),
        (create_request(&big), 413, "larger than docker_api_guard_body_size"),
        // nginx's own 413 page, as for client_max_body_size: the limit ends the request
        // while the body is read.
        (chunked_create_request(&big), 413, "413"),
        (
            format!(
                "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\n\
                 Content-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n{}",
                body(r#""HostConfig":{"Privileged":true}"#)
            )
            .into_bytes(),
            403,
            "not valid JSON",
        ),
    ] {
        let (got, text) = send(&p.guarded, &request);
        assert_eq!(got, status, "{text}");
        assert!(text.contains(needle), "{text}");
    }
    // The chunked body is refused at the limit, before its end ever comes.
    let mut conn = Conn::connect(&p.guarded);
    let mut partial = chunked_create_request(&big);
    partial.truncate(partial.len() - 5);
    conn.write_all(&partial).unwrap();
    let r = raw::read_head(&mut conn);
    assert_eq!(r.status(), 413, "{}", r.status_line);
    assert!(
        p.nginx
            .error_log()
            .contains("docker_api: the body is larger than docker_api_guard_body_size (65536 bytes), refused unchecked"),
        "{}",
        p.nginx.error_log()
    );
    let created = labelled(&label);
    assert_eq!(
        created.lines().count(),
        c.0.len(),
        "only the harmless creates reached the daemon: {created}"
    );

    // A build in the host's network, refused by its query; a volume bound to /etc.
    let (status, text) = send(
        &p.guarded,
        b"POST /v1.41/build?t=x&networkmode=host HTTP/1.1\r\nHost: docker\r\n\
          Content-Type: application/x-tar\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("ImageBuild with a build in the host's network"),
        "{text}"
    );
    let volume = unique("nds-guard-vol");
    let vbody = format!(
        r#"{{"Name":"{volume}","DriverOpts":{{"type":"none","o":"bind","device":"/etc"}}}}"#
    );
    let (status, text) = send(
        &p.guarded,
        format!(
            "POST /v1.41/volumes/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{vbody}",
            vbody.len()
        )
        .as_bytes(),
    );
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("a bind mount of /etc"), "{text}");
    assert_eq!(
        direct(&["volume", "ls", "-q", "--filter", &format!("name={volume}")]),
        ""
    );

    // Services and plugins: refused by their specs; harmless ones reach the daemon, which
    // answers for itself (this one is no swarm manager; there is no such plugin).
    let post = |path: &str, body: &str| {
        send(
            &p.guarded,
            format!(
                "POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    };
    let service = |mount: &str| {
        format!(
            r#"{{"Name":"x","TaskTemplate":{{"ContainerSpec":{{"Image":"{img}","Mounts":[{{"Type":"bind","Source":"{mount}","Target":"/m"}}]}}}}}}"#
        )
    };
    let (status, text) = post("/v1.41/services/create", &service("/"));
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("ServiceCreate with a bind mount of /"),
        "{text}"
    );
    let (status, text) = post(
        "/v1.41/services/create",
        &service(&p.data.path().display().to_string()),
    );
    assert_eq!(status, 503, "{text}");
    let (status, text) = post(
        "/v1.41/plugins/nds-no-such-plugin/upgrade?remote=x",
        r#"[{"Name":"network","Value":["host"]}]"#,
    );
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("PluginUpgrade with a plugin granted the host's network"),
        "{text}"
    );
    let (status, text) = post(
        "/v1.41/plugins/nds-no-such-plugin/upgrade?remote=x",
        r#"[{"Name":"network","Value":["bridge"]}]"#,
    );
    assert_eq!(status, 404, "{text}");

    // The verdicts in the access log (written before nginx closes a connection, so
    // before each read above saw its end).
    let log = std::fs::read_to_string(p.logs.path().join("g.log")).unwrap();
    for line in [
        "POST /v1.41/containers/create 403 d=deny rule=\"docker_api_guard privileged\"",
        "POST /v1.41/containers/create 201 d=allow rule=\"docker_api_guard\"",
        "POST /v1.41/containers/create 413 d=deny rule=\"docker_api_guard_body_size\"",
        "POST /v1.41/containers/create 403 d=deny rule=\"docker_api_guard\"",
    ] {
        assert!(log.contains(line), "no {line:?} in the access log:\n{log}");
    }

    let (status, text) = post(
        "/v1.41/plugins/nds-no-such-plugin/set",
        r#"["data.source=/etc"]"#,
    );
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("PluginSet with a bind mount of /etc"),
        "{text}"
    );
    let (status, text) = post("/v1.41/plugins/create?name=nds-x", "");
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("PluginCreate with a plugin from an archive"),
        "{text}"
    );

    // API versions before 1.24 take a HostConfig in the body of a start: dockerd 24 and
    // older apply it. Refused by the guard; through the control location this daemon
    // either applies it (the container becomes privileged) or, from dockerd 25 on,
    // refuses the body (400).
    let legacy = |addr: &str, id: &str| {
        send(
            addr,
            format!(
                "POST /v1.23/containers/{id}/start HTTP/1.1\r\nHost: docker\r\n\
                 Content-Type: application/json\r\nContent-Length: 19\r\n\
                 Connection: close\r\n\r\n{{\"Privileged\":true}}"
            )
            .as_bytes(),
        )
    };
    let id = direct(&["create", "--network", "none", &img, "sleep", "300"]);
    c.0.push(id.clone());
    let (status, text) = legacy(&p.guarded, &id);
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("ContainerStart with a privileged container"),
        "{text}"
    );
    assert_eq!(
        direct(&["inspect", "-f", "{{.State.Running}}", &id]),
        "false"
    );
    // (A privileged start may fail where the tests run without every capability: the
    // HostConfig was applied all the same.)
    let (status, text) = legacy(&p.nginx.addr(), &id);
    if status != 400 {
        assert_eq!(
            direct(&["inspect", "-f", "{{.HostConfig.Privileged}}", &id]),
            "true",
            "control legacy start ({status} {text}): the body was not applied"
        );
    }

    // The control location creates the privileged container the guard refused.
    let (status, text) = send(
        &p.nginx.addr(),
        &create_request(&body(r#""hostconfig":{"privileged":true}"#)),
    );
    assert_eq!(status, 201, "control: {text}");
    c.0.push(text.split('"').nth(3).unwrap_or_default().to_string());
    p.nginx.assert_healthy();
}

/// `Expect: 100-continue` on a guarded create: the 100 comes (the guard needs the body),
/// then the verdict.
#[test]
fn expect_100_continue_on_a_guarded_body() {
    let p = Proxy::start();
    let label = unique("nds-guard-expect");
    let body = format!(
        r#"{{"Image":"{}","Labels":{{"{label}":""}},"HostConfig":{{"Privileged":true}}}}"#,
        image()
    );
    let mut conn = Conn::connect(&p.guarded);
    let r = raw::request(
        &mut conn,
        &format!(
            "POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
            body.len()
        ),
    );
    assert_eq!(r.status(), 100, "{}", r.status_line);
    conn.write_all(body.as_bytes()).unwrap();
    let r = if r.rest.is_empty() {
        raw::read_head(&mut conn)
    } else {
        panic!("bytes after the 100: {:?}", r.rest)
    };
    assert_eq!(r.status(), 403, "{}", r.status_line);
    assert_eq!(labelled(&label), "");
}

/// A real Rust client (bollard) through the guarded listener: its privileged exec is
/// refused with the guard's message as the daemon's error, and its unprivileged exec
/// with stdin runs (the body read by the guard, then the hijacked stream).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_exec_through_the_guards() {
    use bollard::exec::{CreateExecOptions, StartExecResults};
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;

    let p = Proxy::start();
    let mut c = Containers(Vec::new());
    let sleeper = direct(&["run", "-d", "--network", "none", &image(), "sleep", "300"]);
    c.0.push(sleeper.clone());
    let docker = bollard::Docker::connect_with_http(&p.host(), 60, bollard::API_DEFAULT_VERSION)
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    let exec = |privileged| CreateExecOptions {
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        cmd: Some(vec!["sh", "-c", "tr a-z A-Z"]),
        privileged: Some(privileged),
        ..Default::default()
    };
    match docker.create_exec(&sleeper, exec(true)).await {
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        }) => {
            assert_eq!(status_code, 403);
            assert!(
                message.contains("ContainerExec with a privileged exec (Privileged)"),
                "{message}"
            );
        }
        other => panic!("a privileged exec was not refused: {other:?}"),
    }
    let created = docker.create_exec(&sleeper, exec(false)).await.unwrap();
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = docker.start_exec(&created.id, None).await.unwrap()
    else {
        panic!("exec started detached");
    };
    input.write_all(b"through the guards\n").await.unwrap();
    input.shutdown().await.unwrap();
    let mut out = Vec::new();
    let collect = async {
        while let Some(item) = output.next().await {
            if let bollard::container::LogOutput::StdOut { message } = item.unwrap() {
                out.extend_from_slice(&message);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), collect)
        .await
        .expect("exec output ended");
    assert_eq!(out, b"THROUGH THE GUARDS\n");
    p.nginx.assert_healthy();
}

//! The snippets in nginx-config/ for people running their own nginx, included as they
//! are (only paths, ports and the auth service's URL replaced) into the real nginx with
//! the module, in front of the real daemon, driven with the real docker CLIs.
//!
//! - `tls-client-cert.conf`: TLS with client certificates, as `dockerd --tlsverify`.
//! - `auth-request.conf`: an authentication service asked for every request.

mod common;

use common::{closed_url, docker_config, labelled, run_env, tls_get, AuthService, Certs};
use nds_tests::cli::{direct, Containers, Input};
use nds_tests::{docker_sock, free_port, image, root, unique, Cli, Nginx, NginxConf, Recipe};

/// The snippet `name` with each (from, to) replaced; every `from` must occur.
fn snippet(name: &str, replace: &[(&str, &str)]) -> String {
    let path = root().join("nginx-config").join(name);
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in replace {
        assert!(text.contains(from), "{name} no longer contains {from:?}");
        text = text.replace(from, to);
    }
    text
}

/// `docker run` of the busybox image with a label, so that a run that must not reach
/// the daemon can be checked for a container afterwards.
fn run_args<'a>(label: &'a str, img: &'a str, tail: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["run", "--rm", "--label", label, "--network", "none", img];
    v.extend(tail);
    v
}

#[test]
fn tls_client_cert_conf() {
    let certs = Certs::generate();
    let port = free_port();
    let server_dir = format!("{}/", certs.path_str("server"));
    let api_conf = root().join("nginx-config/docker-api.conf");
    let sock = docker_sock();
    let text = snippet(
        "tls-client-cert.conf",
        &[
            ("listen 2376 ssl;", &format!("listen 127.0.0.1:{port} ssl;")),
            ("/etc/nginx/docker-tls/", &server_dir),
            (
                "/etc/nginx/docker-api.conf",
                &api_conf.display().to_string(),
            ),
            ("/var/run/docker.sock", &sock.display().to_string()),
        ],
    );
    let mut conf = NginxConf::docker(true, Recipe::Recommended);
    conf.http = text;
    let nginx = Nginx::start(&conf);
    let host = format!("tcp://127.0.0.1:{port}");
    let addr = format!("127.0.0.1:{port}");
    let label = format!("nds-test={}", unique("tls-conf"));
    let label_value = label.trim_start_matches("nds-test=").to_string();
    let img = image();

    for cli in Cli::all() {
        // Refused: no certificate, a certificate of another CA, plain HTTP.
        for (who, dir, want) in [
            ("nocert", "nocert", "a client certificate is required"),
            ("other CA", "other", "a client certificate is required"),
        ] {
            let path = certs.path_str(dir);
            let env = [
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", path.as_str()),
            ];
            for args in [vec!["version"], run_args(&label, &img, &["echo", "no"])] {
                let out = run_env(&cli, &host, &args, Input::None, &env);
                println!("  {:5} {who:8} {:8} {}", cli.name, args[0], out.brief());
                assert!(!out.ok() && out.stderr.contains(want), "{}", out.brief());
            }
        }
        let plain = run_env(&cli, &host, &["version"], Input::None, &[]);
        println!("  {:5} plain    version  {}", cli.name, plain.brief());
        assert!(
            !plain.ok()
                && plain
                    .stderr
                    .contains("plain HTTP request sent to a TLS port"),
            "{}",
            plain.brief()
        );

        // Accepted: flags, then environment.
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
        let good_path = certs.path_str("good");
        let env = [
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", good_path.as_str()),
        ];
        for (how, pre, env) in [("flags", &flags[..], &[][..]), ("env", &[][..], &env[..])] {
            let with = |args: &[&str]| -> Vec<String> {
                pre.iter().chain(args).map(|s| s.to_string()).collect()
            };
            let cases: [(Vec<String>, Input, &str); 3] = [
                (
                    with(&["version", "--format", "{{.Server.APIVersion}}"]),
                    Input::None,
                    "1.41\n",
                ),
                (
                    with(&["run", "--rm", "--network", "none", &img, "echo", "hi"]),
                    Input::None,
                    "hi\n",
                ),
                (
                    with(&[
                        "run",
                        "-i",
                        "--rm",
                        "--network",
                        "none",
                        &img,
                        "tr",
                        "a-z",
                        "A-Z",
                    ]),
                    Input::Bytes(b"x\n".to_vec()),
                    "X\n",
                ),
            ];
            for (args, input, want) in cases {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = run_env(&cli, &host, &args, input, env);
                println!(
                    "  {:5} {how:5} {:32} {}",
                    cli.name,
                    args[pre.len()..].join(" "),
                    out.brief()
                );
                assert!(out.ok() && out.stdout_str() == want, "{}", out.brief());
            }
        }
    }
    assert_eq!(
        labelled(&label_value),
        "",
        "a refused run reached the daemon"
    );

    // A certificate of the other CA that is actually presented (the docker CLI keeps it
    // back, since the server names the CA it accepts): rejected with 495's JSON.
    let other = tls_get(
        &addr,
        &certs.path("ca.pem"),
        Some((
            &certs.path("client2-cert.pem"),
            &certs.path("client2-key.pem"),
        )),
        "/_ping",
    );
    println!("  s_client, other CA: {:?}", other.lines().next());
    assert!(
        other.starts_with("HTTP/1.1 403")
            && other.contains("application/json")
            && other.contains("client certificate rejected (FAILED:"),
        "{other}"
    );
    let good = tls_get(
        &addr,
        &certs.path("ca.pem"),
        Some((
            &certs.path("client-cert.pem"),
            &certs.path("client-key.pem"),
        )),
        "/_ping",
    );
    assert!(
        good.starts_with("HTTP/1.1 200") && good.ends_with("OK"),
        "{good}"
    );
    nginx.assert_healthy();
}

#[test]
fn auth_request_conf() {
    let auth = AuthService::start();
    let auth_url = auth.url();
    let start = |url: &str| {
        let mut conf = NginxConf::docker(true, Recipe::Recommended);
        conf.server = snippet("auth-request.conf", &[("http://127.0.0.1:9000/check", url)]);
        Nginx::start(&conf)
    };
    let nginx = start(&auth_url);
    let host = nginx.host();
    let label = format!("nds-test={}", unique("auth-conf"));
    let label_value = label.trim_start_matches("nds-test=").to_string();
    let img = image();
    let good = docker_config(Some("good"));
    let bad = docker_config(Some("bad"));
    let none = docker_config(None);
    let mut c = Containers(vec![]);
    let id = direct(&["run", "-d", "--network", "none", &image(), "sleep", "300"]);
    c.0.push(id.clone());

    for cli in Cli::all() {
        for (who, cfg) in [("no token", &none), ("bad token", &bad)] {
            let env = [("DOCKER_CONFIG", cfg.path().to_str().unwrap())];
            for args in [
                vec!["version"],
                run_args(&label, &img, &["echo", "no"]),
                vec!["exec", &id, "echo", "no"],
            ] {
                let out = run_env(&cli, &host, &args, Input::None, &env);
                println!("  {:5} {who:9} {:8} {}", cli.name, args[0], out.brief());
                assert!(
                    !out.ok()
                        && out.stderr.contains("authentication required")
                        && (args[0] == "version" || out.stdout.is_empty()),
                    "{}",
                    out.brief()
                );
            }
        }
        let env = [("DOCKER_CONFIG", good.path().to_str().unwrap())];
        for (args, input, want) in [
            (
                vec!["version", "--format", "{{.Server.APIVersion}}"],
                Input::None,
                "1.41\n",
            ),
            (
                vec!["run", "--rm", "--network", "none", &img, "echo", "hi"],
                Input::None,
                "hi\n",
            ),
            (
                vec![
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
                vec!["exec", "-i", &id, "tr", "a-z", "A-Z"],
                Input::Bytes(b"y\n".to_vec()),
                "Y\n",
            ),
        ] {
            let out = run_env(&cli, &host, &args, input, &env);
            println!(
                "  {:5} good      {:24} {}",
                cli.name,
                args[..2].join(" "),
                out.brief()
            );
            assert!(out.ok() && out.stdout_str() == want, "{}", out.brief());
        }
    }
    assert_eq!(
        labelled(&label_value),
        "",
        "a refused run reached the daemon"
    );
    // The hijacked requests were checked too, with what was asked.
    let seen = auth.seen();
    for want in ["/containers/create", "/attach?", "/exec/"] {
        assert!(
            seen.iter()
                .any(|h| h.contains("X-Original-URI: ") && h.contains(want)),
            "the auth service never saw {want}"
        );
    }
    nginx.assert_healthy();
    drop(nginx);

    // The service down: refused, never let through.
    let down = start(&closed_url());
    let env = [("DOCKER_CONFIG", good.path().to_str().unwrap())];
    for cli in Cli::all() {
        for args in [vec!["version"], run_args(&label, &img, &["echo", "no"])] {
            let out = run_env(&cli, &down.host(), &args, Input::None, &env);
            println!("  {:5} down      {:8} {}", cli.name, args[0], out.brief());
            assert!(
                !out.ok()
                    && out.stderr.contains(
                        "could not check the request with the authentication service (status 502)"
                    ),
                "{}",
                out.brief()
            );
        }
    }
    assert_eq!(
        labelled(&label_value),
        "",
        "a run reached the daemon with the auth service down"
    );
}

//! TLS on either leg and on both: the matrix cases with both docker CLIs through nginx
//! with the module for a TLS client in front of a plain daemon, a plain client in front
//! of a daemon reached over TLS (`dockerd --tlsverify`, `proxy_pass https://` with a
//! client certificate), and TLS on both legs; each compared with the direct socket. The
//! control, stock nginx on the same legs, must fail the hijacking cases.
//!
//! The daemon is a private dockerd (its own bridge, so no other daemon is disturbed)
//! listening on a unix socket, which is the direct socket of this test binary, and on
//! TLS on loopback. Everything runs in one test so that the daemon lives exactly as long.

mod common;

use common::Certs;
use nds_tests::cases;
use nds_tests::cli::tls_host;
use nds_tests::dockerd::PrivateDockerd;
use nds_tests::{free_port, Nginx, NginxConf, Recipe};

#[derive(Clone, Copy, Debug)]
struct Legs {
    client_tls: bool,
    daemon_tls: bool,
}

impl Legs {
    const ALL: [Legs; 3] = [
        Legs {
            client_tls: true,
            daemon_tls: false,
        },
        Legs {
            client_tls: false,
            daemon_tls: true,
        },
        Legs {
            client_tls: true,
            daemon_tls: true,
        },
    ];

    fn name(self) -> &'static str {
        match (self.client_tls, self.daemon_tls) {
            (true, false) => "TLS client -> plain daemon",
            (false, true) => "plain client -> TLS daemon",
            _ => "TLS on both legs",
        }
    }
}

/// nginx (with or without the module) on `legs`, with `recipe`'s directives.
fn proxy(
    module: bool,
    recipe: Recipe,
    legs: Legs,
    certs: &Certs,
    daemon: &PrivateDockerd,
    daemon_port: u16,
) -> Nginx {
    let mut conf = NginxConf::new(module, recipe, "");
    conf.http = cases::READ_TIMEOUT.into();
    conf.location = if legs.daemon_tls {
        // The daemon's certificate names 127.0.0.1 as an IP SAN and "localhost" as a DNS
        // SAN; nginx checks the name with X509_check_host, hence proxy_ssl_name.
        format!(
            "{} {}",
            recipe.location_url(&format!("https://127.0.0.1:{daemon_port}")),
            certs.nginx_tls_upstream()
        )
    } else {
        recipe.location(&format!("unix:{}", daemon.sock().display()))
    };
    if legs.client_tls {
        conf.listen = " ssl".into();
        conf.server = certs.nginx_tls_listener();
    }
    Nginx::start(&conf)
}

fn client_host(nginx: &Nginx, legs: Legs, certs: &Certs) -> String {
    if legs.client_tls {
        tls_host(&nginx.addr(), &certs.path("good"))
    } else {
        nginx.host()
    }
}

fn tls_daemon(certs: &Certs, port: u16) -> PrivateDockerd {
    let daemon = PrivateDockerd::start_with(Some(certs.daemon_tls(port)));
    daemon.load_test_image();
    daemon
}

#[test]
fn tls_legs_matrix_and_control() {
    let certs = Certs::generate();
    let port = free_port();
    let daemon = tls_daemon(&certs, port);
    nds_tests::use_docker_sock(daemon.sock());

    // Each leg with the module (nginx defaults, and docker-api.conf on both legs), and
    // with stock nginx, side by side.
    let runs: Vec<(Legs, Recipe)> = Legs::ALL
        .iter()
        .map(|&l| (l, Recipe::Defaults))
        .chain([(Legs::ALL[2], Recipe::Recommended)])
        .collect();
    let results: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|&(legs, recipe)| {
                let (certs, daemon) = (&certs, &daemon);
                s.spawn(move || {
                    let nginx = proxy(true, recipe, legs, certs, daemon, port);
                    let label = format!("{} ({recipe:?}, module loaded)", legs.name());
                    let (table, failures) =
                        cases::compare_all(&client_host(&nginx, legs, certs), &label);
                    println!("{table}");
                    nginx.assert_healthy();
                    if failures.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "{label}: {} case(s) differ from the direct socket:\n{}\nerror log:\n{}",
                            failures.len(),
                            failures.join("\n"),
                            nginx.error_log()
                        )
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failed: Vec<String> = results.into_iter().filter(|r| !r.is_empty()).collect();
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));

    // The controls, the three legs at once.
    std::thread::scope(|s| {
        for legs in Legs::ALL {
            let (certs, daemon) = (&certs, &daemon);
            s.spawn(move || {
                let nginx = proxy(false, Recipe::WebSocket, legs, certs, daemon, port);
                let label = format!("control {} (stock nginx, WebSocket recipe)", legs.name());
                let (differ, table) = cases::control(&client_host(&nginx, legs, certs), &label);
                println!("{table}");
                // The daemon's 101 gets through, but stock nginx ends the tunnel at the
                // client's end of input: what the container prints afterwards is lost.
                for name in ["run", "exec", "exec -t"] {
                    assert!(
                        differ.contains(&name),
                        "{name} passed without the module{table}"
                    );
                }
            });
        }
    });
}

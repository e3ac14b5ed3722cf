//! nginx on a unix socket (`listen unix:`): docker CLI 20.10 sends an empty `Host:` on its
//! hijack requests there, which stock nginx refuses with 400 before any module runs; with
//! the module they get the name newer clients send (`api.moby.localhost`). Both CLIs run
//! `run -i` and `exec -i` through the socket; the control, stock nginx, fails CLI 20.10's.

use std::path::Path;
use std::time::Duration;

use nds_tests::cli::{direct, docker, Containers, Input, Out};
use nds_tests::nginx::{Nginx, NginxConf, Recipe};
use nds_tests::{image, Cli};

fn conf(module: bool, sock: &Path) -> NginxConf {
    let mut conf = NginxConf::docker(module, Recipe::WebSocket);
    let location = conf.location.clone();
    conf.http = format!(
        "server {{ listen unix:{}; location / {{ {location} }} }}",
        sock.display()
    );
    conf
}

fn exec_i(host: &str, cli: &Cli, sleeper: &str, t: Duration) -> Out {
    docker(
        cli,
        host,
        &["exec", "-i", sleeper, "sh", "-c", "cat; echo end"],
        Input::Bytes(b"one\n".to_vec()),
        t,
    )
}

fn cases(host: &str, cli: &Cli, sleeper: &str) -> Vec<(&'static str, Out)> {
    let t = Duration::from_secs(60);
    vec![
        (
            "run -i",
            docker(
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
                    "cat; echo end",
                ],
                Input::Bytes(b"one\n".to_vec()),
                t,
            ),
        ),
        ("exec -i", exec_i(host, cli, sleeper, t)),
    ]
}

#[test]
fn hijacks_of_both_clis_through_a_unix_listener() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Containers(Vec::new());
    let sleeper = direct(&["run", "-d", "--network", "none", &image(), "sleep", "300"]);
    c.0.push(sleeper.clone());

    let sock = dir.path().join("with.sock");
    let nginx = Nginx::start(&conf(true, &sock));
    let host = format!("unix://{}", sock.display());
    for cli in Cli::all() {
        for (what, out) in cases(&host, &cli, &sleeper) {
            assert!(out.ok(), "{} {what}: {}", cli.name, out.brief());
            assert_eq!(out.stdout_str(), "one\nend\n", "{} {what}", cli.name);
        }
    }
    nginx.assert_healthy();

    // The control: stock nginx refuses CLI 20.10's hijacks (400, invalid host header).
    let Some(cli20) = Cli::all().into_iter().find(|c| c.name == "cli20") else {
        return;
    };
    let sock = dir.path().join("without.sock");
    let stock = Nginx::start(&conf(false, &sock));
    let host = format!("unix://{}", sock.display());
    // (exec only: a `run -i` whose attach failed leaves its container waiting.)
    let out = exec_i(&host, &cli20, &sleeper, Duration::from_secs(15));
    assert!(!out.ok(), "control exec -i worked: {}", out.brief());
    assert!(
        stock
            .error_log()
            .contains("client sent invalid host header"),
        "{}",
        stock.error_log()
    );
}

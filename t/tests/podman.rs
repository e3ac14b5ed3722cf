//! Podman as the daemon: its Docker-compatible service (`podman system service`, Debian's
//! podman 4.3) on a socket of its own, behind nginx with the module. The hijacking cases
//! of the matrix with both docker CLIs through a plain `proxy_pass` and `docker-api.conf`
//! are the same as on podman's socket directly, and the raw heads are right: podman
//! answers a hijack with `Upgrade` by a 101 of its own, and one without by a bare `200`
//! raw-stream head (no `Api-Version`), which the module turns into a tunnel. The
//! control, stock nginx with a plain `proxy_pass`, fails the hijacks.

use std::io::Write;
use std::time::Duration;

use nds_tests::cases;
use nds_tests::podman::PodmanService;
use nds_tests::raw::{self, read_at_least, Conn};
use nds_tests::{image, use_docker_sock, Nginx, NginxConf, Recipe};

/// The hijacks and `logs -f`; not the 64 MiB round trip nor `wait` past the read
/// timeout, which test nginx's side only (and take a minute here).
fn hijacking(case: &cases::Case) -> bool {
    (case.hijack && !case.name.starts_with("64 MiB")) || case.name == "logs -f"
}

#[test]
fn podman_behind_the_module() {
    let podman = PodmanService::start();
    podman.load_test_image();
    use_docker_sock(podman.sock());
    let upstream = format!("unix:{}", podman.sock().display());
    // Both recipes side by side (the baselines are computed once and shared).
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = [Recipe::Defaults, Recipe::Recommended]
            .into_iter()
            .map(|recipe| {
                let upstream = &upstream;
                s.spawn(move || {
                    let mut conf = NginxConf::new(true, recipe, upstream);
                    conf.http = cases::READ_TIMEOUT.into();
                    let nginx = Nginx::start(&conf);
                    let (table, f) = cases::compare(
                        &nginx.host(),
                        &format!("podman, {recipe:?} (module loaded)"),
                        hijacking,
                    );
                    println!("{table}");
                    nginx.assert_healthy();
                    f.into_iter()
                        .map(|f| format!("{recipe:?}: {f}\n{}", nginx.error_log()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Raw heads: attach to a `cat`, with and without Upgrade.
    let nginx = Nginx::start(&NginxConf::new(true, Recipe::Defaults, &upstream));
    for upgrade in [true, false] {
        // A container of its own each: the end of an attached stdin ends `cat`.
        let id = podman_cli(&podman, &["run", "-d", "-i", &image(), "cat"]);
        let mut conn = Conn::connect(&nginx.addr());
        let head = format!(
            "POST /v1.41/containers/{id}/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n{}\r\n",
            if upgrade {
                "Connection: Upgrade\r\nUpgrade: tcp\r\n"
            } else {
                ""
            }
        );
        let r = raw::request(&mut conn, &head);
        let want = if upgrade { 101 } else { 200 };
        println!(
            "  podman attach, Upgrade {upgrade}: {} {:?}",
            r.status(),
            r.headers
        );
        assert_eq!(r.status(), want, "{r:?}");
        assert!(
            r.header("Content-Type")
                .is_some_and(|t| t.starts_with("application/vnd.docker.")),
            "{r:?}"
        );
        conn.write_all(b"ping\n").unwrap();
        let got = read_at_least(&mut conn, r.rest.clone(), 5, Duration::from_secs(10));
        assert!(
            String::from_utf8_lossy(&got).contains("ping\n"),
            "echo through the tunnel: {got:?}"
        );
    }
    nginx.assert_healthy();

    // The control: stock nginx with a plain proxy_pass.
    let mut conf = NginxConf::new(false, Recipe::Defaults, &upstream);
    conf.http = cases::READ_TIMEOUT.into();
    let stock = Nginx::start(&conf);
    let (differ, table) =
        cases::control_of(&stock.host(), "podman, control (stock nginx)", hijacking);
    println!("{table}");
    for name in ["run", "run -i", "exec", "exec -i", "attach"] {
        assert!(
            differ.contains(&name),
            "{name} passed without the module{table}"
        );
    }
}

fn podman_cli(p: &PodmanService, args: &[&str]) -> String {
    let out = nds_tests::cli::docker(
        &nds_tests::Cli::setup(),
        &p.host(),
        args,
        nds_tests::cli::Input::None,
        Duration::from_secs(60),
    );
    assert!(out.ok(), "{}", out.brief());
    out.stdout_str().trim().to_string()
}

//! The Debian packages (debian/, `scripts/build-deb`), each in a clean container of its
//! release (the debootstrapped base the image uses): `apt install nginx`, then
//! `apt install ./libnginx-mod-http-docker-stream_*.deb`. The package alone enables the
//! module, and that packaged nginx, with a site of nothing but `proxy_pass` to the
//! daemon's socket (mounted), carries the hijacking cases of the matrix with both CLIs as
//! the direct socket does. Removing the package leaves a working nginx without the module:
//! the control, where the same cases differ.
//!
//! The packages are `target/debian-packages/SUITE/*.deb` (`NDS_DEB_DIR` overrides
//! `target/debian-packages`); scripts/test builds them with
//! `DEB_OUT=target/debian-packages scripts/build-deb bookworm trixie`.

use std::path::PathBuf;
use std::time::Duration;

use nds_tests::cases;
use nds_tests::cli::{direct, docker, Containers, Input};
use nds_tests::{docker_sock, free_port, root, unique, Cli};

const SUITES: [&str; 2] = ["bookworm", "trixie"];
const LINK: &str = "/etc/nginx/modules-enabled/50-mod-http-docker-stream.conf";

fn debs(suite: &str) -> PathBuf {
    std::env::var_os("NDS_DEB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/debian-packages"))
        .join(suite)
}

/// `sh -c SCRIPT` in the container; panics with its output unless it succeeds.
fn sh(container: &str, script: &str) -> String {
    let out = docker(
        &Cli::setup(),
        &nds_tests::direct_host(),
        &["exec", container, "sh", "-c", script],
        Input::None,
        Duration::from_secs(300),
    );
    assert!(out.ok(), "in {container}: {script}\n{}", out.brief());
    out.stdout_str()
}

/// A clean container of `suite` on the host's network, nginx and the package installed
/// with apt, nginx running with a site on `port` that only proxies to the daemon.
fn packaged_nginx(suite: &str, port: u16, c: &mut Containers) -> String {
    let dir = debs(suite);
    assert!(
        std::fs::read_dir(&dir)
            .map(|mut d| d.any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".deb")))
            .unwrap_or(false),
        "no package in {dir:?}: run DEB_OUT=target/debian-packages scripts/build-deb"
    );
    let name = unique(&format!("nds-deb-{suite}"));
    c.0.push(name.clone());
    direct(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "-v",
        &format!("{}:/debs:ro", dir.display()),
        "-v",
        &format!("{}:/var/run/docker.sock", docker_sock().display()),
        &format!("debian:{suite}-slim"),
        "sleep",
        "900",
    ]);
    // No service starts at install time (a container has no init; nginx's default site
    // would take the host's port 80).
    sh(
        &name,
        "printf '#!/bin/sh\\nexit 101\\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
         && export DEBIAN_FRONTEND=noninteractive \
         && apt-get update -qq && apt-get install -y -qq --no-install-recommends nginx >/dev/null \
         && apt-get install -y -qq /debs/libnginx-mod-http-docker-stream_*.deb >/dev/null",
    );
    let link = sh(&name, &format!("readlink {LINK}"));
    assert_eq!(
        link.trim(),
        "/usr/share/nginx/modules-available/mod-http-docker-stream.conf",
        "{suite}: the package's modules-enabled link"
    );
    // The user's site: plain proxy_pass, nginx's defaults otherwise. nginx's workers
    // (www-data) join the socket's group, as `usermod -aG docker www-data` on a host.
    sh(
        &name,
        &format!(
            "gid=$(stat -c %g /var/run/docker.sock) \
             && {{ getent group $gid >/dev/null || groupadd -g $gid docker; }} \
             && usermod -aG $(getent group $gid | cut -d: -f1) www-data \
             && rm -f /etc/nginx/sites-enabled/default && cat >/etc/nginx/conf.d/docker.conf <<'EOF'
server {{
    listen 127.0.0.1:{port};
    location / {{
        proxy_pass http://unix:/var/run/docker.sock;
        {}
    }}
}}
EOF
nginx -t 2>&1 && nginx -v 2>&1 && nginx",
            cases::READ_TIMEOUT
        ),
    );
    name
}

fn hijacks(c: &cases::Case) -> bool {
    c.hijack || c.name.starts_with("wait")
}

#[test]
fn packages_enable_the_module_in_debian_nginx_and_remove_cleanly() {
    let mut c = Containers(vec![]);
    let ports: Vec<u16> = SUITES.iter().map(|_| free_port()).collect();
    // Both releases install at once (apt takes most of the time).
    let names: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = SUITES
            .iter()
            .zip(&ports)
            .map(|(suite, port)| {
                s.spawn(move || {
                    let mut own = Containers(vec![]);
                    let name = packaged_nginx(suite, *port, &mut own);
                    std::mem::take(&mut own.0);
                    name
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    c.0.extend(names.iter().cloned());

    // Both releases and both CLIs at once, each case compared with the direct socket.
    let runs: Vec<(&str, String, Cli)> = SUITES
        .iter()
        .zip(&ports)
        .flat_map(|(suite, port)| {
            Cli::all()
                .into_iter()
                .map(move |cli| (*suite, format!("tcp://127.0.0.1:{port}"), cli))
        })
        .collect();
    let results: Vec<(&str, String, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(suite, host, cli)| {
                s.spawn(move || {
                    let (table, f) = cases::compare_cli(cli, host, hijacks);
                    (*suite, table, f)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut failures = Vec::new();
    for (suite, table, f) in results {
        print!("{suite}\n{table}");
        failures.extend(f.into_iter().map(|f| format!("{suite}: {f}")));
    }
    for (suite, name) in SUITES.iter().zip(&names) {
        println!("{suite}: {}", sh(name, "nginx -v 2>&1").trim());
        let log = sh(name, "cat /var/log/nginx/error.log");
        assert!(
            !log.contains("[alert]") && !log.contains("[emerg]"),
            "{suite}: {log}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Removal: the link goes, nginx's configuration stays valid, and after a reload the
    // module is gone: `docker exec` fails as through stock nginx (both releases at once).
    std::thread::scope(|s| {
        for ((suite, port), name) in SUITES.iter().zip(&ports).zip(&names) {
            s.spawn(move || removed(suite, *port, name));
        }
    });
}

fn removed(suite: &str, port: u16, name: &str) {
    sh(
        name,
        &format!(
            "DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq libnginx-mod-http-docker-stream >/dev/null \
             && test ! -e {LINK} && test ! -e /usr/lib/nginx/modules/ngx_http_docker_stream_module.so \
             && nginx -t 2>&1 && nginx -s reload"
        ),
    );
    let host = format!("tcp://127.0.0.1:{port}");
    // The reload is asynchronous: probe until a new worker answers (bounded).
    let mut differ = Vec::new();
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(500));
        let (d, table) = cases::control_of(&host, &format!("{suite} after removal"), |c| {
            c.name == "exec"
        });
        if !d.is_empty() {
            print!("{table}");
            differ = d;
            break;
        }
    }
    assert!(
        !differ.is_empty(),
        "{suite}: docker exec still works after the package was removed"
    );
    assert!(
        sh(name, "nginx -t 2>&1").contains("successful"),
        "{suite}: nginx after removal"
    );
}

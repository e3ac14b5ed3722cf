//! The prebuilt image run by testcontainers (host networking, the daemon's socket
//! mounted); the docker CLIs then run and exec through it. The daemon is
//! `NDS_DOCKER_SOCK`, the image `NDS_IMAGE_TAG` (built by `scripts/build-image` if unset).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use testcontainers::core::WaitFor;
use testcontainers::{clients, GenericImage, RunnableImage};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn docker(cli: &str, host: &str, args: &[&str], stdin: &[u8]) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(cli)
        .args(args)
        .env("DOCKER_HOST", host)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker CLI");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn testcontainers_runs_the_image_and_hijacks_work_through_it() {
    let sock = std::env::var("NDS_DOCKER_SOCK").unwrap_or("/var/run/docker.sock".into());
    let direct = format!("unix://{sock}");
    // testcontainers' CLI client talks to whatever DOCKER_HOST names.
    std::env::set_var("DOCKER_HOST", &direct);
    let tag = std::env::var("NDS_IMAGE_TAG").unwrap_or_else(|_| {
        let out = Command::new(root().join("scripts/build-image"))
            .arg("nds-proxy:test")
            .output()
            .expect("scripts/build-image");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        "nds-proxy:test".into()
    });
    let busybox = std::env::var("NDS_IMAGE").unwrap_or("nds-busybox".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (name, version) = tag.split_once(':').unwrap_or((&tag, "latest"));
    let image = GenericImage::new(name, version)
        .with_env_var("LISTEN", format!("127.0.0.1:{port}"))
        .with_env_var("CONTAINERS", "1")
        .with_env_var("ALLOW_EXEC", "1")
        .with_env_var("ALLOW_ATTACH", "1")
        .with_env_var("POST", "1")
        .with_volume(sock.clone(), "/var/run/docker.sock")
        .with_wait_for(WaitFor::message_on_stderr("Docker API proxy:"));
    let client = clients::Cli::default();
    let proxy = client.run(RunnableImage::from(image).with_network("host"));
    std::thread::sleep(Duration::from_millis(300));

    let host = format!("tcp://127.0.0.1:{port}");
    let (ok, id) = docker("docker", &direct, &["run", "-d", "-i", "--network", "none", &busybox, "cat"], b"");
    assert!(ok, "{id}");
    let id = id.trim().to_string();
    for cli in ["/usr/local/bin/docker", "/usr/bin/docker"] {
        if !std::path::Path::new(cli).exists() {
            continue;
        }
        let (ok, out) = docker(cli, &host, &["run", "--rm", "--network", "none", &busybox, "echo", "hi"], b"");
        assert!(ok && out == "hi\n", "{cli} run: {out}");
        let (ok, out) = docker(cli, &host, &["exec", "-i", &id, "tr", "a-z", "A-Z"], b"x\n");
        assert!(ok && out == "X\n", "{cli} exec -i: {out}");
    }
    docker("docker", &direct, &["rm", "-f", &id], b"");
    drop(proxy);
}

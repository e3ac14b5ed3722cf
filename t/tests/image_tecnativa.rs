//! The image against Tecnativa's docker-socket-proxy, variable by variable: the cases of
//! Tecnativa's own test suite (`tests/test_service.py`: defaults, `CONTAINERS=1`,
//! `POST=1`, `POST=1 NETWORKS=1`, exec), then one docker CLI command for every switch of
//! the allow-list, method and guard variable, refused without it and let through with
//! it. Where the image deliberately differs (README, "Differences from Tecnativa's"),
//! the case says so and checks the image's behaviour.
//!
//! As in Tecnativa's suite, "refused" means the proxy refused (its message), and "passes"
//! that the proxy let the request through, whatever the daemon then answered (a swarm
//! command on a daemon outside a swarm fails there); "works" also needs the command to
//! succeed.

mod common;

use std::time::Duration;

use common::Proxy;
use nds_tests::cli::{direct, docker, Containers, Input, Out};
use nds_tests::{image, unique, Cli};

/// What the proxy's refusals say: the image's own, and the module's.
const REFUSED: &[&str] = &[
    "access denied by the Docker API proxy",
    "is not allowed by this proxy",
    "is refused by this proxy",
];

#[derive(Debug)]
enum Want {
    /// The command succeeds.
    Works,
    /// The proxy lets it through; the daemon may refuse it.
    Passes,
    /// The proxy refuses it, and its message has this.
    Refused(&'static str),
    /// The proxy refuses a hijack: the CLI shows the status, not the message.
    RefusedHijack,
}

/// A command line; `{run}` is a running container, `{new}` a fresh running one (for
/// commands that stop or remove it), `{created}` a created, not started one, `{label}`
/// the label of the containers this test creates, `{tmp}` a directory for files.
struct Case {
    env: &'static [(&'static str, &'static str)],
    args: &'static str,
    want: Want,
}

use Want::*;

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Tecnativa's suite: test_default_permissions.
    Case { env: &[], args: "version", want: Works },
    Case { env: &[], args: "pull nds-no-such-image", want: Refused("read-only, POST requests need POST=1") },
    Case { env: &[], args: "run --rm --network none IMAGE true", want: Refused("read-only") },
    // (The CLI inspects the container first.)
    Case { env: &[], args: "logs {run}", want: Refused("this image allows it with CONTAINERS=1") },
    Case { env: &[], args: "wait {run}", want: Refused("read-only") },
    Case { env: &[], args: "rm -f {new}", want: Refused("DELETE requests need DELETE=1") },
    Case { env: &[], args: "restart {new}", want: Refused("read-only") },
    Case { env: &[], args: "network ls", want: Refused("this image allows it with NETWORKS=1") },
    Case { env: &[], args: "config ls", want: Refused("this image allows it with CONFIGS=1") },
    Case { env: &[], args: "service ls", want: Refused("this image allows it with SERVICES=1") },
    Case { env: &[], args: "secret ls", want: Refused("this image allows it with SECRETS=1") },
    Case { env: &[], args: "plugin ls", want: Refused("this image allows it with PLUGINS=1") },
    Case { env: &[], args: "info", want: Refused("this image allows it with INFO=1") },
    Case { env: &[], args: "system info", want: Refused("this image allows it with INFO=1") },
    Case { env: &[], args: "swarm init", want: Refused("read-only") },
    // test_container_permissions. Logs: Tecnativa's newer releases and this image need
    // ALLOW_LOGS=1 (its older suite expects CONTAINERS=1 to allow them).
    Case { env: &[("CONTAINERS", "1")], args: "inspect {run}", want: Works },
    Case { env: &[("CONTAINERS", "1")], args: "logs {run}", want: Refused("ALLOW_LOGS=1") },
    Case { env: &[("CONTAINERS", "1"), ("ALLOW_LOGS", "1")], args: "logs {run}", want: Works },
    Case { env: &[("CONTAINERS", "1")], args: "wait {run}", want: Refused("read-only") },
    Case { env: &[("CONTAINERS", "1")], args: "run --rm --network none IMAGE true", want: Refused("read-only") },
    Case { env: &[("CONTAINERS", "1")], args: "rm -f {new}", want: Refused("DELETE=1") },
    Case { env: &[("CONTAINERS", "1")], args: "restart {new}", want: Refused("read-only") },
    // test_post_permissions.
    Case { env: &[("POST", "1")], args: "rm -f {new}", want: Refused("DELETE=1") },
    Case { env: &[("POST", "1")], args: "pull nds-no-such-image", want: Refused("IMAGES=1") },
    Case { env: &[("POST", "1")], args: "run --rm --network none IMAGE true", want: Refused("CONTAINERS=1") },
    Case { env: &[("POST", "1")], args: "network create nds-tecnativa-net", want: Refused("NETWORKS=1") },
    // test_network_post_permissions: network rm needs DELETE=1 (Tecnativa's newer
    // method switches; its older suite expects POST=1 to allow it).
    Case { env: &[("POST", "1"), ("NETWORKS", "1")], args: "network ls", want: Works },
    Case { env: &[("POST", "1"), ("NETWORKS", "1")], args: "network create --label {label} nds-tecnativa-net", want: Works },
    Case { env: &[("POST", "1"), ("NETWORKS", "1")], args: "network rm nds-tecnativa-net", want: Refused("DELETE requests need DELETE=1") },
    Case { env: &[("POST", "1"), ("NETWORKS", "1"), ("DELETE", "1")], args: "network rm nds-tecnativa-net", want: Works },
    // test_exec_permissions: CONTAINERS=1 EXEC=1 POST=1 in Tecnativa's older suite;
    // ALLOW_EXEC=1 in its newer releases and here.
    Case { env: &[("CONTAINERS", "1"), ("EXEC", "1"), ("POST", "1")], args: "exec {run} ls", want: Refused("ALLOW_EXEC=1") },
    Case { env: &[("CONTAINERS", "1"), ("ALLOW_EXEC", "1"), ("POST", "1")], args: "exec {run} ls", want: Works },
    // The CLI inspects the container first: ALLOW_EXEC alone starts execs for clients
    // that do not (docker-py's exec_run, the API).
    Case { env: &[("ALLOW_EXEC", "1"), ("POST", "1")], args: "exec {run} ls", want: Refused("CONTAINERS=1") },
    // Every section switch, by one command.
    Case { env: &[("EVENTS", "0")], args: "events --since 0 --until 1", want: Refused("EVENTS=1") },
    Case { env: &[], args: "events --since 0 --until 1", want: Works },
    Case { env: &[("VERSION", "0")], args: "version --format {{.Server.Version}}", want: Refused("VERSION=1") },
    Case { env: &[("IMAGES", "1")], args: "images", want: Works },
    Case { env: &[("INFO", "1")], args: "info", want: Works },
    Case { env: &[("VOLUMES", "1")], args: "volume ls", want: Works },
    Case { env: &[], args: "volume ls", want: Refused("VOLUMES=1") },
    Case { env: &[("SYSTEM", "1")], args: "system df", want: Works },
    Case { env: &[("PLUGINS", "1")], args: "plugin ls", want: Works },
    Case { env: &[("SERVICES", "1")], args: "service ls", want: Passes },
    Case { env: &[("SECRETS", "1")], args: "secret ls", want: Passes },
    Case { env: &[("CONFIGS", "1")], args: "config ls", want: Passes },
    Case { env: &[("NODES", "1")], args: "node ls", want: Passes },
    Case { env: &[], args: "node ls", want: Refused("NODES=1") },
    Case { env: &[("SWARM", "1")], args: "swarm unlock-key", want: Passes },
    Case { env: &[], args: "swarm unlock-key", want: Refused("SWARM=1") },
    // The finer switches, each granted without CONTAINERS.
    Case { env: &[("POST", "1")], args: "start {created}", want: Refused("ALLOW_START=1") },
    Case { env: &[("ALLOW_START", "1"), ("POST", "1")], args: "start {created}", want: Works },
    Case { env: &[("ALLOW_STOP", "1"), ("POST", "1")], args: "stop -t 0 {new}", want: Works },
    Case { env: &[("ALLOW_RESTARTS", "1"), ("POST", "1")], args: "restart -t 0 {new}", want: Works },
    // Kill: Tecnativa's newer releases take it from ALLOW_RESTARTS to ALLOW_KILL.
    Case { env: &[("ALLOW_RESTARTS", "1"), ("POST", "1")], args: "kill {new}", want: Refused("ALLOW_KILL=1") },
    Case { env: &[("ALLOW_KILL", "1"), ("POST", "1")], args: "kill {new}", want: Works },
    Case { env: &[("ALLOW_PAUSE", "1"), ("POST", "1")], args: "pause {new}", want: Works },
    Case { env: &[("ALLOW_UNPAUSE", "1"), ("POST", "1")], args: "unpause {run}", want: Passes },
    Case { env: &[("POST", "1")], args: "unpause {run}", want: Refused("ALLOW_UNPAUSE=1") },
    Case { env: &[("CONTAINERS", "1"), ("POST", "1")], args: "run --rm --label {label} --network none IMAGE echo hi", want: RefusedHijack },
    Case { env: &[("CONTAINERS", "1"), ("ALLOW_ATTACH", "1"), ("POST", "1")], args: "run --rm --network none IMAGE echo hi", want: Works },
    // (Copying out starts with a HEAD, whose refusal has no body for the CLI to show.)
    Case { env: &[("ALLOW_ARCHIVE", "1")], args: "cp {run}:/etc/hostname -", want: Works },
    Case { env: &[("ALLOW_ARCHIVE", "1"), ("POST", "1")], args: "cp /etc/hostname {run}:/tmp/", want: Refused("PUT requests need PUT=1") },
    Case { env: &[("ALLOW_ARCHIVE", "1"), ("POST", "1"), ("PUT", "1")], args: "cp /etc/hostname {run}:/tmp/", want: Works },
    Case { env: &[], args: "export -o {tmp}/c.tar {run}", want: Refused("ALLOW_EXPORT=1") },
    Case { env: &[("ALLOW_EXPORT", "1")], args: "export -o {tmp}/c.tar {run}", want: Works },
    Case { env: &[("ALLOW_TOP", "1")], args: "top {run}", want: Works },
    Case { env: &[], args: "top {run}", want: Refused("ALLOW_TOP=1") },
    Case { env: &[("ALLOW_CHANGES", "1")], args: "diff {run}", want: Works },
    Case { env: &[("CONTAINERS", "1"), ("DELETE", "1")], args: "rm {created}", want: Works },
    // The guards, on with POST=1, each lifted by its variable.
    Case { env: &[("CONTAINERS", "1"), ("POST", "1")], args: "create --label {label} --network none IMAGE true", want: Works },
    Case { env: &[("CONTAINERS", "1"), ("POST", "1")], args: "create --privileged --network none IMAGE true", want: Refused("ALLOW_PRIVILEGED=1") },
    Case { env: &[("CONTAINERS", "1"), ("POST", "1"), ("ALLOW_PRIVILEGED", "1")], args: "create --label {label} --privileged --network none IMAGE true", want: Works },
    Case { env: &[("CONTAINERS", "1"), ("POST", "1")], args: "create --device /dev/null --network none IMAGE true", want: Refused("ALLOW_DEVICES=1") },
    Case { env: &[("CONTAINERS", "1"), ("POST", "1"), ("ALLOW_DEVICES", "1")], args: "create --label {label} --device /dev/null --network none IMAGE true", want: Works },
    Case { env: &[("CONTAINERS", "1"), ("POST", "1")], args: "create --network host IMAGE true", want: Refused("ALLOW_HOST_NAMESPACES=1") },
    Case { env: &[("CONTAINERS", "1"), ("POST", "1"), ("ALLOW_HOST_NAMESPACES", "1")], args: "create --label {label} --pid host --network none IMAGE true", want: Works },
    Case { env: &[("CONTAINERS", "1"), ("POST", "1")], args: "create --security-opt seccomp=unconfined --network none IMAGE true", want: Refused("ALLOW_UNCONFINED=1") },
    Case { env: &[("CONTAINERS", "1"), ("POST", "1"), ("ALLOW_UNCONFINED", "1")], args: "create --label {label} --security-opt seccomp=unconfined --network none IMAGE true", want: Works },
    Case { env: &[("CONTAINERS", "1"), ("POST", "1")], args: "create --cap-add NET_ADMIN --network none IMAGE true", want: Refused("ALLOW_CAPABILITIES") },
    Case { env: &[("CONTAINERS", "1"), ("POST", "1"), ("ALLOW_CAPABILITIES", "NET_ADMIN,SYS_TIME")], args: "create --label {label} --cap-add NET_ADMIN --network none IMAGE true", want: Works },
    Case { env: &[("CONTAINERS", "1"), ("POST", "1")], args: "create -v /tmp:/x --network none IMAGE true", want: Refused("ALLOW_BIND_MOUNTS") },
    Case { env: &[("CONTAINERS", "1"), ("POST", "1"), ("ALLOW_BIND_MOUNTS", "/srv,/tmp")], args: "create --label {label} -v /tmp:/x --network none IMAGE true", want: Works },
    Case { env: &[("CONTAINERS", "1"), ("POST", "1"), ("ALLOW_BIND_MOUNTS", "/srv,/tmp")], args: "create -v /etc:/x --network none IMAGE true", want: Refused("ALLOW_BIND_MOUNTS") },
];

fn refused(out: &Out) -> bool {
    REFUSED
        .iter()
        .any(|m| out.stderr.contains(m) || out.stdout_str().contains(m))
}

#[test]
fn image_tecnativa_compatibility() {
    let label_value = unique("tecnativa");
    let label = format!("nds-test={label_value}");
    let img = image();
    let sleeper = |started: bool| -> String {
        let verb = if started { "run" } else { "create" };
        let mut args = vec![verb];
        if started {
            args.push("-d");
        }
        args.extend(["--label", &label, "--network", "none", &img, "sleep", "600"]);
        direct(&args)
    };
    let tmp = tempfile::tempdir().unwrap();
    let tmp_path = tmp.path().display().to_string();
    let run = sleeper(true);
    let mut keep = Containers(vec![run.clone()]);
    let cli = Cli::setup();
    // One proxy per environment, in the order of first use.
    let mut envs: Vec<&[(&str, &str)]> = Vec::new();
    for c in CASES {
        if !envs.contains(&c.env) {
            envs.push(c.env);
        }
    }
    let mut failures = Vec::new();
    for env in envs {
        let proxy = Proxy::start(env);
        for case in CASES.iter().filter(|c| c.env == env) {
            let mut line = case
                .args
                .replace("{run}", &run)
                .replace("{label}", &label)
                .replace("{tmp}", &tmp_path)
                .replace("IMAGE", &img);
            for (tag, started) in [("{new}", true), ("{created}", false)] {
                if line.contains(tag) {
                    let id = sleeper(started);
                    keep.0.push(id.clone());
                    line = line.replace(tag, &id);
                }
            }
            let args: Vec<&str> = line.split(' ').collect();
            let out = docker(
                &cli,
                &proxy.host(),
                &args,
                Input::None,
                Duration::from_secs(60),
            );
            let ok = match &case.want {
                Works => out.ok() && !refused(&out),
                Passes => !refused(&out),
                Refused(needle) => !out.ok() && refused(&out) && out.stderr.contains(needle),
                RefusedHijack => !out.ok() && out.stderr.contains("received 403"),
            };
            println!(
                "  {:60} {:75} {}",
                format!("{env:?}"),
                case.args,
                if ok { "ok" } else { "NO" }
            );
            if !ok {
                failures.push(format!(
                    "{env:?} {line}: want {:?}: {}",
                    case.want,
                    out.brief()
                ));
            }
        }
        assert!(proxy.running(), "{}", proxy.logs().brief());
    }
    // The containers this test created, through the proxy or directly.
    keep.0
        .extend(common::labelled(&label_value).lines().map(str::to_string));
    let _ = docker(
        &cli,
        &nds_tests::direct_host(),
        &["network", "rm", "nds-tecnativa-net"],
        Input::None,
        Duration::from_secs(30),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

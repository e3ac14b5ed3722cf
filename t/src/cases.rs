//! The docker CLI cases of the matrix. Each case sets up what it needs on the direct
//! socket, runs one command against `host`, and returns its result in a form that is the
//! same on every correct path (container IDs and timestamps left out).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::cli::{direct, docker, docker_env, docker_until, Containers, Input, Out};
use crate::{image, pseudo_random, sha256_hex, unique, Cli};

pub struct Case {
    pub name: &'static str,
    /// Uses a hijacked connection (attach/exec start): these fail through stock nginx.
    pub hijack: bool,
    pub run: fn(&Ctx) -> Out,
    /// What the direct socket's stdout must contain, so that a case where both paths
    /// print nothing cannot pass.
    pub expect: &'static str,
}

/// Where and how a case runs.
pub struct Ctx<'a> {
    pub cli: &'a Cli,
    pub host: &'a str,
    /// Limit for the command under test (setup has its own).
    pub timeout: Duration,
}

fn img() -> String {
    image()
}

fn sleeper(c: &mut Containers) -> String {
    let id = direct(&["run", "-d", "--network", "none", &img(), "sleep", "300"]);
    c.0.push(id.clone());
    id
}

fn run_echo(x: &Ctx) -> Out {
    let (cli, host, t) = (x.cli, x.host, x.timeout);
    docker(
        cli,
        host,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &img(),
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
        Input::None,
        t,
    )
}

fn run_i(x: &Ctx) -> Out {
    let (cli, host, t) = (x.cli, x.host, x.timeout);
    docker(
        cli,
        host,
        &[
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            &img(),
            "tr",
            "a-z",
            "A-Z",
        ],
        Input::Bytes(b"hello\nworld\n".to_vec()),
        t,
    )
}

fn run_i_slow_reader(x: &Ctx) -> Out {
    let (cli, host, t) = (x.cli, x.host, x.timeout);
    let lines: String = (0..40).map(|i| format!("line {i}\n")).collect();
    docker(
        cli,
        host,
        &[
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            &img(),
            "sh",
            "-c",
            "while read l; do usleep 20000; echo \"got $l\"; done; echo end",
        ],
        Input::Bytes(lines.into_bytes()),
        t,
    )
}

fn run_i_slow_writer(x: &Ctx) -> Out {
    let (cli, host, t) = (x.cli, x.host, x.timeout);
    docker(
        cli,
        host,
        &[
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            &img(),
            "sh",
            "-c",
            "cat; echo done",
        ],
        Input::Slow(
            (0..5).map(|i| format!("tick {i}")).collect(),
            Duration::from_millis(300),
        ),
        t,
    )
}

fn run_t(x: &Ctx) -> Out {
    let (cli, host, t) = (x.cli, x.host, x.timeout);
    docker(
        cli,
        host,
        &[
            "run",
            "--rm",
            "-t",
            "--network",
            "none",
            &img(),
            "sh",
            "-c",
            "echo tty; tty; exit 4",
        ],
        Input::None,
        t,
    )
}

fn exec_plain(x: &Ctx) -> Out {
    let (cli, host, t) = (x.cli, x.host, x.timeout);
    let mut c = Containers(vec![]);
    let id = sleeper(&mut c);
    docker(
        cli,
        host,
        &["exec", &id, "sh", "-c", "echo a; echo b >&2; exit 2"],
        Input::None,
        t,
    )
}

fn exec_i(x: &Ctx) -> Out {
    let (cli, host, t) = (x.cli, x.host, x.timeout);
    let mut c = Containers(vec![]);
    let id = sleeper(&mut c);
    docker(
        cli,
        host,
        &["exec", "-i", &id, "tr", "a-z", "A-Z"],
        Input::Bytes(b"abc\ndef\n".to_vec()),
        t,
    )
}

fn exec_t(x: &Ctx) -> Out {
    let (cli, host, t) = (x.cli, x.host, x.timeout);
    let mut c = Containers(vec![]);
    let id = sleeper(&mut c);
    docker(cli, host, &["exec", "-t", &id, "echo", "x"], Input::None, t)
}

fn attach(x: &Ctx) -> Out {
    let (cli, host, t) = (x.cli, x.host, x.timeout);
    let mut c = Containers(vec![]);
    let id = direct(&[
        "run",
        "-d",
        "-i",
        "--network",
        "none",
        &img(),
        "sh",
        "-c",
        "read a; echo \"got $a\"; read b; echo \"got $b\" >&2; sleep 1; exit 5",
    ]);
    c.0.push(id.clone());
    // The daemon drops a plain attach's output once its stdin ends: write slowly and
    // end stdin only after the answers, so the case does not race the daemon. The first
    // line waits two seconds: dockerd 20.10 hooks up the attach's output after it has
    // answered, and a line read before that (seen once on the direct socket, with the
    // control's 16 cases at once on 2 cores, when the pause was one second) loses its
    // echo.
    let lines = vec!["one".to_string(), "two".to_string()];
    docker(
        cli,
        host,
        &["attach", &id],
        Input::Slow(lines, Duration::from_millis(2000)),
        t,
    )
}

fn finished(cmd: &str) -> (Containers, String) {
    let id = direct(&["run", "-d", "--network", "none", &img(), "sh", "-c", cmd]);
    direct(&["wait", &id]);
    (Containers(vec![id.clone()]), id)
}

fn logs(x: &Ctx) -> Out {
    let (cli, host, t) = (x.cli, x.host, x.timeout);
    let (_c, id) = finished("echo l1; echo e1 >&2; echo l2");
    docker(cli, host, &["logs", &id], Input::None, t)
}

fn logs_follow(x: &Ctx) -> Out {
    let (cli, host, t) = (x.cli, x.host, x.timeout);
    let mut c = Containers(vec![]);
    let id = direct(&[
        "run",
        "-d",
        "--network",
        "none",
        &img(),
        "sh",
        "-c",
        "echo first; sleep 2; echo second",
    ]);
    c.0.push(id.clone());
    docker(cli, host, &["logs", "-f", &id], Input::None, t)
}

fn events(x: &Ctx) -> Out {
    // Live: the stream is open while a container comes and goes, and must deliver each
    // event as it happens. (Querying the past alone races the daemon's 256-event memory
    // when other tests run.) `--since` as well: a stream that subscribes more than the
    // pause below late, on a loaded machine, still gets what it missed from that memory.
    let label = unique("nds-events");
    let filter = format!("label=nds={label}");
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .saturating_sub(1)
        .to_string();
    std::thread::scope(|s| {
        let events = s.spawn(|| {
            docker_until(
                x.cli,
                x.host,
                &[
                    "events",
                    "--since",
                    &since,
                    "--filter",
                    &filter,
                    "--format",
                    "{{.Type}} {{.Action}}",
                ],
                "container destroy",
                x.timeout,
            )
        });
        std::thread::sleep(Duration::from_millis(1500));
        let id = direct(&[
            "run",
            "-d",
            "--label",
            &format!("nds={label}"),
            "--network",
            "none",
            &img(),
            "true",
        ]);
        direct(&["wait", &id]);
        direct(&["rm", &id]);
        events.join().unwrap()
    })
}

/// The `proxy_read_timeout` of the proxies the cases run through: shorter than the
/// `wait` case's silence, and long enough for the daemon's slowest answer head on a
/// loaded 2-core machine (6 s was not: `POST /containers/{id}/start` took longer while
/// four matrices ran at once, and got a 504).
pub const READ_TIMEOUT: &str = "proxy_read_timeout 10s;";

fn wait_long(x: &Ctx) -> Out {
    // The container exits 13 s after the wait request went out (released by a file), so
    // the request sits silent longer than READ_TIMEOUT whatever the machine's load.
    let mut c = Containers(vec![]);
    let id = direct(&[
        "run",
        "-d",
        "--network",
        "none",
        &img(),
        "sh",
        "-c",
        "while [ ! -f /tmp/go ]; do usleep 100000; done; exit 7",
    ]);
    c.0.push(id.clone());
    std::thread::scope(|s| {
        let waiter = s.spawn(|| docker(x.cli, x.host, &["wait", &id], Input::None, x.timeout));
        std::thread::sleep(Duration::from_secs(13));
        direct(&["exec", &id, "touch", "/tmp/go"]);
        waiter.join().unwrap()
    })
}

fn cp_both_ways(x: &Ctx) -> Out {
    let (cli, host, t) = (x.cli, x.host, x.timeout);
    let mut c = Containers(vec![]);
    let id = sleeper(&mut c);
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(3 << 20, 7);
    let src = dir.path().join("in.bin");
    std::fs::write(&src, &data).unwrap();
    let to = docker(
        cli,
        host,
        &["cp", src.to_str().unwrap(), &format!("{id}:/tmp/f.bin")],
        Input::None,
        t,
    );
    if !to.ok() {
        return to;
    }
    let dst = dir.path().join("out.bin");
    let from = docker(
        cli,
        host,
        &["cp", &format!("{id}:/tmp/f.bin"), dst.to_str().unwrap()],
        Input::None,
        t,
    );
    if !from.ok() {
        return from;
    }
    let back = std::fs::read(&dst).unwrap_or_default();
    Out {
        code: Some(0),
        stdout: format!("same={}\n", back == data).into_bytes(),
        stderr: String::new(),
        timed_out: false,
    }
}

fn build_legacy(x: &Ctx) -> Out {
    let (cli, host, t) = (x.cli, x.host, x.timeout);
    let dir = tempfile::tempdir().unwrap();
    let tag = unique("nds-build").to_lowercase();
    // The label keeps concurrent builds (the matrix runs in parallel) from sharing cached
    // layers, whose concurrent commits dockerd does not always survive.
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {}\nLABEL nds.build={tag}\nCOPY data.txt /data.txt\nRUN tr a-z A-Z < /data.txt > /up.txt\nCMD [\"cat\", \"/up.txt\"]\n", img()),
    )
    .unwrap();
    std::fs::write(dir.path().join("data.txt"), "built through the proxy\n").unwrap();
    let b = docker_env(
        cli,
        host,
        &[
            "build",
            "-q",
            "--network",
            "none",
            "-t",
            &tag,
            dir.path().to_str().unwrap(),
        ],
        Input::None,
        t,
        &[("DOCKER_BUILDKIT", "0")],
    );
    if !b.ok() {
        return b;
    }
    let out = docker(
        cli,
        host,
        &["run", "--rm", "--network", "none", &tag],
        Input::None,
        t,
    );
    let _ = docker(
        cli,
        &crate::direct_host(),
        &["rmi", "-f", &tag],
        Input::None,
        t,
    );
    out
}

fn stdin_64m(x: &Ctx) -> Out {
    let (cli, host, t) = (x.cli, x.host, x.timeout);
    let data = pseudo_random(64 << 20, 64);
    let want = sha256_hex(&data);
    let out = docker(
        cli,
        host,
        &["run", "--rm", "-i", "--network", "none", &img(), "cat"],
        Input::Bytes(data),
        t * 2,
    );
    Out {
        stdout: format!(
            "len={} sha_ok={}\n",
            out.stdout.len(),
            sha256_hex(&out.stdout) == want
        )
        .into_bytes(),
        ..out
    }
}

pub fn all() -> Vec<Case> {
    vec![
        Case {
            name: "run",
            hijack: true,
            run: run_echo,
            expect: "out\n",
        },
        Case {
            name: "run -i",
            hijack: true,
            run: run_i,
            expect: "HELLO\nWORLD\n",
        },
        Case {
            name: "run -i (slow reader)",
            hijack: true,
            run: run_i_slow_reader,
            expect: "got line 39\nend\n",
        },
        Case {
            name: "run -i (slow writer)",
            hijack: true,
            run: run_i_slow_writer,
            expect: "tick 4\ndone\n",
        },
        Case {
            name: "run -t",
            hijack: true,
            run: run_t,
            expect: "tty\r\n/dev/pts/",
        },
        Case {
            name: "exec",
            hijack: true,
            run: exec_plain,
            expect: "a\n",
        },
        Case {
            name: "exec -i",
            hijack: true,
            run: exec_i,
            expect: "ABC\nDEF\n",
        },
        Case {
            name: "exec -t",
            hijack: true,
            run: exec_t,
            expect: "x\r\n",
        },
        Case {
            name: "attach",
            hijack: true,
            run: attach,
            expect: "got one\n",
        },
        Case {
            name: "logs",
            hijack: false,
            run: logs,
            expect: "l1\nl2\n",
        },
        Case {
            name: "logs -f",
            hijack: false,
            run: logs_follow,
            expect: "first\nsecond\n",
        },
        Case {
            name: "events",
            hijack: false,
            run: events,
            expect: "container create\ncontainer start\ncontainer die\ncontainer destroy\n",
        },
        Case {
            name: "wait (> proxy_read_timeout)",
            hijack: false,
            run: wait_long,
            expect: "7\n",
        },
        Case {
            name: "cp both ways",
            hijack: false,
            run: cp_both_ways,
            expect: "same=true",
        },
        Case {
            name: "build (legacy)",
            hijack: false,
            run: build_legacy,
            expect: "BUILT THROUGH THE PROXY",
        },
        Case {
            name: "64 MiB stdin round trip",
            hijack: true,
            run: stdin_64m,
            expect: "len=67108864 sha_ok=true",
        },
    ]
}

/// The direct socket's answer for (cli, case), computed once per test binary: tests that
/// run at once and ask for the same baseline wait for one run of it (four matrix tests
/// each running it on the direct socket quadrupled that load).
pub fn baseline(cli: &Cli, case: &Case) -> Out {
    type Cell = Arc<OnceLock<Out>>;
    static CACHE: OnceLock<Mutex<HashMap<(String, String), Cell>>> = OnceLock::new();
    let key = (cli.name.to_string(), case.name.to_string());
    let cell: Cell = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(key)
        .or_default()
        .clone();
    cell.get_or_init(|| {
        let host = crate::direct_host();
        let out = (case.run)(&Ctx {
            cli,
            host: &host,
            timeout: Duration::from_secs(60),
        });
        assert!(
            !out.timed_out,
            "baseline {} / {} timed out",
            cli.name, case.name
        );
        assert!(
            out.stdout_str().contains(case.expect),
            "baseline {} / {} on the direct socket: {}",
            cli.name,
            case.name,
            out.brief()
        );
        out
    })
    .clone()
}

/// Runs every case with every CLI against `host` and compares each with the direct
/// socket. Returns the table to print and the differing cases, described.
pub fn compare_all(host: &str, label: &str) -> (String, Vec<String>) {
    compare(host, label, |_| true)
}

/// [`compare_all`] for the cases `which` selects.
pub fn compare(host: &str, label: &str, which: impl Fn(&Case) -> bool) -> (String, Vec<String>) {
    let mut table = format!("\n{label}\n");
    let mut failures = Vec::new();
    for cli in Cli::all() {
        let (t, f) = compare_cli(&cli, host, &which);
        table += &t;
        failures.extend(f);
    }
    (table, failures)
}

/// [`compare`] for one CLI: its table lines and the differing cases, described.
pub fn compare_cli(cli: &Cli, host: &str, which: impl Fn(&Case) -> bool) -> (String, Vec<String>) {
    let mut table = String::new();
    let mut failures = Vec::new();
    for case in all().into_iter().filter(|c| which(c)) {
        let want = baseline(cli, &case);
        let t0 = std::time::Instant::now();
        let got = (case.run)(&Ctx {
            cli,
            host,
            timeout: Duration::from_secs(60),
        });
        let same = got == want;
        table += &format!(
            "  {:5} {:<30} {:<14} {:5.1} s\n",
            cli.name,
            case.name,
            if same { "same as direct" } else { "DIFFERS" },
            t0.elapsed().as_secs_f64()
        );
        if !same {
            failures.push(format!(
                "{} / {}:\n    direct: {}\n    proxied: {}",
                cli.name,
                case.name,
                want.brief(),
                got.brief()
            ));
        }
    }
    (table, failures)
}

/// The control: every case with `cli28` (which demands a 101) against `host`, side by
/// side (stock nginx hangs some until the client gives up). Returns the names of the
/// cases that differ from the direct socket, and the table to print.
pub fn control(host: &str, label: &str) -> (Vec<&'static str>, String) {
    control_of(host, label, |_| true)
}

/// [`control`] for the cases `which` selects.
pub fn control_of(
    host: &str,
    label: &str,
    which: impl Fn(&Case) -> bool,
) -> (Vec<&'static str>, String) {
    let cli = Cli::all()
        .into_iter()
        .find(|c| c.name == "cli28")
        .expect("docker CLI 28");
    let cases: Vec<Case> = all().into_iter().filter(|c| which(c)).collect();
    let results: Vec<(bool, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|case| {
                let cli = &cli;
                s.spawn(move || {
                    let want = baseline(cli, case);
                    let got = (case.run)(&Ctx {
                        cli,
                        host,
                        timeout: Duration::from_secs(15),
                    });
                    (got == want, got.brief())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut table = format!("\n{label}, cli28\n");
    let mut differ = Vec::new();
    for (case, (same, brief)) in cases.iter().zip(results) {
        table += &format!(
            "  {:<30} {}\n",
            case.name,
            if same {
                "same as direct".to_string()
            } else {
                format!("DIFFERS: {brief}")
            }
        );
        if !same {
            differ.push(case.name);
        }
    }
    (differ, table)
}

/// A session that streams for a while, for checks across reloads: the input of
/// `exec -i ID sha256sum` (`lines` lines, 100 ms apart) and what it must print.
pub fn slow_checksum(seed: usize, lines: usize) -> (Input, String) {
    let lines: Vec<String> = (0..lines)
        .map(|k| sha256_hex(format!("{seed}-{k}").as_bytes()))
        .collect();
    let mut sent = lines.join("\n");
    sent.push('\n');
    let want = format!("{}  -\n", sha256_hex(sent.as_bytes()));
    (Input::Slow(lines, Duration::from_millis(100)), want)
}

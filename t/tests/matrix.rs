//! The core matrix: every case through nginx with the module, for each proxy recipe and
//! each docker CLI, compared with the same command on the direct socket.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use nds_tests::cases::{self, Case, Ctx};
use nds_tests::{direct_host, Cli, Nginx, NginxConf, Out, Recipe};

/// The direct socket's answer for (cli, case), computed once per test binary.
fn baseline(cli: &Cli, case: &Case) -> Out {
    static CACHE: OnceLock<Mutex<HashMap<(String, String), Out>>> = OnceLock::new();
    let key = (cli.name.to_string(), case.name.to_string());
    if let Some(o) = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .get(&key)
    {
        return o.clone();
    }
    let host = direct_host();
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
    CACHE
        .get()
        .unwrap()
        .lock()
        .unwrap()
        .insert(key, out.clone());
    out
}

fn run_matrix(recipe: Recipe) {
    let mut conf = NginxConf::docker(true, recipe);
    // Shorter than the `wait` case's container, longer than any pause in the others
    // (and than the daemon's slowest head under a loaded CI machine).
    conf.http = "proxy_read_timeout 6s;".into();
    let nginx = Nginx::start(&conf);
    let host = nginx.host();
    let mut table = format!("\nmatrix {recipe:?} (module loaded)\n");
    let mut failures = Vec::new();
    for cli in Cli::all() {
        for case in cases::all() {
            let want = baseline(&cli, &case);
            let got = (case.run)(&Ctx {
                cli: &cli,
                host: &host,
                timeout: Duration::from_secs(60),
            });
            let same = got == want;
            table += &format!(
                "  {:5} {:<30} {}\n",
                cli.name,
                case.name,
                if same { "same as direct" } else { "DIFFERS" }
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
    }
    println!("{table}");
    nginx.assert_healthy();
    assert!(
        failures.is_empty(),
        "{recipe:?}: {} case(s) differ from the direct socket:\n{}\nerror log:\n{}",
        failures.len(),
        failures.join("\n"),
        nginx.error_log()
    );
}

#[test]
fn matrix_defaults() {
    run_matrix(Recipe::Defaults);
}

#[test]
fn matrix_buffering_off() {
    run_matrix(Recipe::BufferingOff);
}

#[test]
fn matrix_websocket_recipe() {
    run_matrix(Recipe::WebSocket);
}

#[test]
fn matrix_auth_request() {
    run_matrix(Recipe::AuthRequest);
}

#[test]
fn matrix_recommended() {
    run_matrix(Recipe::Recommended);
}

/// The control: the same cases through nginx without the module. Returns the names of
/// the cases that differ from the direct socket, for `cli28` (which demands a 101).
fn control(recipe: Recipe) -> (Vec<&'static str>, String) {
    let mut conf = NginxConf::docker(false, recipe);
    conf.http = "proxy_read_timeout 6s;".into();
    let nginx = Nginx::start(&conf);
    let host = nginx.host();
    let cli = Cli::all()
        .into_iter()
        .find(|c| c.name == "cli28")
        .expect("docker CLI 28");
    let cases: Vec<Case> = cases::all();
    // Stock nginx hangs some of these until the client gives up: run them side by side.
    let results: Vec<(bool, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|case| {
                let (cli, host) = (&cli, &host);
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
    let mut table = format!("\ncontrol {recipe:?} (stock nginx, no module), cli28\n");
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
    println!("{table}");
    (differ, table)
}

#[test]
fn control_stock_nginx_defaults() {
    let (differ, table) = control(Recipe::Defaults);
    // "unable to upgrade to tcp, received 200" for every hijack; /wait cut at 3 s.
    for case in cases::all() {
        if case.hijack || case.name.starts_with("wait") {
            assert!(
                differ.contains(&case.name),
                "{} passed without the module{table}",
                case.name
            );
        }
    }
}

#[test]
fn control_stock_nginx_websocket_recipe() {
    let (differ, table) = control(Recipe::WebSocket);
    // The daemon's 101 gets through, but nginx ends the tunnel at the client's EOF:
    // whatever the container prints after stdin ends is lost.
    for name in [
        "run",
        "run -i (slow reader)",
        "run -t",
        "exec",
        "exec -t",
        "wait (> proxy_read_timeout)",
    ] {
        assert!(
            differ.contains(&name),
            "{name} passed without the module{table}"
        );
    }
}

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
    // Shorter than the `wait` case's container, longer than any pause in the others.
    conf.http = "proxy_read_timeout 3s;".into();
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

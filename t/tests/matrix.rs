//! The core matrix: every case through nginx with the module, for each proxy recipe and
//! each docker CLI, compared with the same command on the direct socket.

use nds_tests::cases;
use nds_tests::{Nginx, NginxConf, Recipe};

fn run_matrix(recipe: Recipe) {
    let mut conf = NginxConf::docker(true, recipe);
    // Shorter than the `wait` case's container, longer than any pause in the others
    // (and than the daemon's slowest head under a loaded CI machine).
    conf.http = cases::READ_TIMEOUT.into();
    let nginx = Nginx::start(&conf);
    let label = format!("matrix {recipe:?} (module loaded)");
    let (table, failures) = cases::compare_all(&nginx.host(), &label);
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

/// The control: the same cases through nginx without the module.
fn control(recipe: Recipe) -> (Vec<&'static str>, String) {
    let mut conf = NginxConf::docker(false, recipe);
    conf.http = cases::READ_TIMEOUT.into();
    let nginx = Nginx::start(&conf);
    let (differ, table) = cases::control(
        &nginx.host(),
        &format!("control {recipe:?} (stock nginx, no module)"),
    );
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

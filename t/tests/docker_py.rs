//! docker-py (the `docker` package from PyPI), the Python client behind Ansible's and
//! compose v1's Docker support, through nginx with the module: builds (contexts whose
//! archive the daemon does not read to its end), attach, exec with and without stdin,
//! logs with follow, events, wait and archives (`t/docker-py-cases.py`), through a plain
//! `proxy_pass`, the WebSocket recipe and `docker-api.conf`, compared line by line with
//! the direct socket. The control, stock nginx with a plain `proxy_pass`, loses the end
//! of the builds (and every hijack, as the matrix's control shows).

use std::collections::BTreeMap;
use std::process::Command;

use nds_tests::{docker_sock, image, root, Nginx, NginxConf, Recipe};

/// The script's `case -> result` lines against `base_url` (all cases, or `only`).
fn run_cases(base_url: &str, only: &[&str]) -> BTreeMap<String, String> {
    let out = Command::new("python3")
        .arg(root().join("t/docker-py-cases.py"))
        .args([base_url, &image()])
        .args(only)
        .output()
        .expect("run python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "docker-py-cases.py {base_url} failed (docker-py missing? scripts/test installs it \
         with pip):\n{stderr}"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Cases whose result differs from `direct`, with both results.
fn differ(direct: &BTreeMap<String, String>, got: &BTreeMap<String, String>) -> Vec<String> {
    direct
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: direct {v:?}, proxy {:?}", got.get(k)))
        .collect()
}

#[test]
fn docker_py_through_the_module() {
    let direct = run_cases(&format!("unix://{}", docker_sock().display()), &[]);
    assert!(direct.len() >= 11, "{direct:?}");
    for (k, v) in &direct {
        assert!(!v.starts_with("error"), "direct {k}: {v}");
    }
    let mut failures = Vec::new();
    for recipe in [Recipe::Defaults, Recipe::WebSocket, Recipe::Recommended] {
        let nginx = Nginx::start(&NginxConf::docker(true, recipe));
        let got = run_cases(&nginx.host(), &[]);
        let d = differ(&direct, &got);
        println!(
            "  {recipe:?}: {} of {} cases as on the direct socket",
            direct.len() - d.len(),
            direct.len()
        );
        nginx.assert_healthy();
        failures.extend(d.into_iter().map(|f| format!("{recipe:?}: {f}")));
        if recipe == Recipe::Defaults {
            // The builds end with the daemon's reset (HTTP/1.0 to the daemon): one line
            // each, at info level, not an error.
            let log = nginx.error_log();
            assert!(
                log.contains("the daemon reset the connection after its response"),
                "{log}"
            );
            assert!(!log.contains("recv() failed"), "{log}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn control_stock_nginx_docker_py() {
    // The builds (the hijacks fail too, but only after a timeout of a minute each; the
    // matrix's control shows them).
    let cases = ["build_buildargs", "build_custom_context"];
    let direct = run_cases(&format!("unix://{}", docker_sock().display()), &cases);
    let nginx = Nginx::start(&NginxConf::docker(false, Recipe::Defaults));
    let got = run_cases(&nginx.host(), &cases);
    let d = differ(&direct, &got);
    println!(
        "  control (stock nginx, plain proxy_pass):\n    {}",
        d.join("\n    ")
    );
    for case in cases {
        assert!(
            d.iter().any(|f| f.starts_with(&format!("{case}:"))),
            "{case} passed through stock nginx"
        );
    }
}

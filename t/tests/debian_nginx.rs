//! The module built on this machine for its Debian nginx (scripts/build-debian), loaded
//! into /usr/sbin/nginx: the hijacking cases of the matrix, both CLIs, against the direct
//! socket. Ignored in scripts/test, where the Debian packages (debian_package.rs) carry the
//! same cases through Debian's nginx; `scripts/test-asan --debian` runs it with the
//! module built with AddressSanitizer.

use std::path::PathBuf;

use nds_tests::cases;
use nds_tests::{root, Cli, Nginx, NginxConf, Recipe};

#[test]
#[ignore = "scripts/test-asan --debian runs it; debian_package.rs covers Debian's nginx"]
fn debian_nginx_with_the_module_matches_the_direct_socket() {
    let bin = PathBuf::from(std::env::var("NDS_DEBIAN_NGINX").unwrap_or("/usr/sbin/nginx".into()));
    let module = std::env::var_os("NDS_DEBIAN_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/debian/ngx_http_docker_stream_module.so"));
    assert!(
        bin.exists() && module.exists(),
        "run scripts/build-debian first ({bin:?}, {module:?})"
    );

    let version = std::process::Command::new(&bin).arg("-v").output().unwrap();
    println!("{}", String::from_utf8_lossy(&version.stderr).trim());

    let mut conf = NginxConf::docker(true, Recipe::Defaults);
    conf.nginx_bin = Some(bin);
    conf.module_file = Some(module);
    conf.http = cases::READ_TIMEOUT.into();
    let nginx = Nginx::start(&conf);
    // Both CLIs at once (each case compared with the direct socket, as in the matrix).
    let host = nginx.host();
    let results: Vec<(String, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = Cli::all()
            .into_iter()
            .map(|cli| {
                let host = &host;
                s.spawn(move || {
                    cases::compare_cli(&cli, host, |c| c.hijack || c.name.starts_with("wait"))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut failures = Vec::new();
    for (table, f) in results {
        print!("{table}");
        failures.extend(f);
    }
    nginx.assert_healthy();
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        nginx.error_log()
    );
}

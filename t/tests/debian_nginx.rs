//! The module built for Debian 12's own nginx 1.22 (scripts/build-debian), loaded into
//! /usr/sbin/nginx: the hijacking cases of the matrix, both CLIs, against the direct socket.

use std::path::PathBuf;
use std::time::Duration;

use nds_tests::cases::{self, Ctx};
use nds_tests::{direct_host, root, Cli, Nginx, NginxConf, Recipe};

#[test]
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
    let direct = direct_host();
    let mut failures = Vec::new();
    for cli in Cli::all() {
        for case in cases::all()
            .into_iter()
            .filter(|c| c.hijack || c.name.starts_with("wait"))
        {
            let run = |host: &str| {
                (case.run)(&Ctx {
                    cli: &cli,
                    host,
                    timeout: Duration::from_secs(60),
                })
            };
            let want = run(&direct);
            assert!(
                want.stdout_str().contains(case.expect),
                "baseline {}: {}",
                case.name,
                want.brief()
            );
            let got = run(&nginx.host());
            println!(
                "  {:5} {:<30} {}",
                cli.name,
                case.name,
                if got == want {
                    "same as direct"
                } else {
                    "DIFFERS"
                }
            );
            if got != want {
                failures.push(format!(
                    "{} / {}: direct {} / proxied {}",
                    cli.name,
                    case.name,
                    want.brief(),
                    got.brief()
                ));
            }
        }
    }
    nginx.assert_healthy();
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        nginx.error_log()
    );
}

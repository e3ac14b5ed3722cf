//! Directives: `nginx -t` accepts good values and rejects bad ones with a message that
//! names the directive.

use nds_tests::nginx::config_test;

#[test]
fn good_values_pass() {
    for conf in [
        "docker_stream on; docker_stream_timeout 1h;",
        "docker_stream off;",
        "docker_stream_timeout off;",
        "docker_stream_timeout 90;",
        "docker_stream_timeout 1h30m;",
        "docker_stream_timeout 500ms;",
        "docker_stream_splice auto;",
        "docker_stream_splice on;",
        "docker_stream_splice OFF;",
        "server { listen 127.0.0.1:1; docker_stream_splice off; location / { docker_stream_splice on; } }",
        "server { listen 127.0.0.1:1; docker_stream off; location / { docker_stream on; docker_stream_timeout 5m; } }",
        "docker_api_allow read;",
        "docker_api_allow all;",
        "docker_api_deny containers.exec exec.start; docker_api_allow containers ping.read ImageBuild unknown write;",
        "docker_api_allow read; server { listen 127.0.0.1:1; docker_api_deny all; location / { docker_api_allow ContainerList; } }",
        "docker_api_policy a { allow read; } docker_api_rules a;",
        "docker_api_policy a { deny all; } server { listen 127.0.0.1:1; location / { docker_api_rules $http_x; } }",
        "server { listen 127.0.0.1:1; location / { docker_api_rules b; } } docker_api_policy b { allow all; }",
        "docker_api_policy ci-2.x_y { deny containers.exec; allow read containers; } docker_api_rules $http_x; server { listen 127.0.0.1:1; location / { docker_api_allow all; } }",
        "docker_api_guard all; docker_api_guard_capabilities chown CAP_NET_RAW; docker_api_guard_bind_mounts / /srv/x/;",
        "docker_api_guard privileged devices; server { listen 127.0.0.1:1; location / { docker_api_guard off; docker_api_guard_body_size 4k; } }",
        "docker_api_guard_body_size 10m;",
        "server { listen 127.0.0.1:1; location = /m { docker_api_metrics; } location = /n { docker_api_metrics; } }",
        "docker_api_policy a { allow all; guard privileged host_namespaces; guard_capabilities CHOWN; guard_bind_mounts /srv; }",
    ] {
        let (ok, out) = config_test(conf);
        assert!(ok, "{conf}: {out}");
    }
}

#[test]
fn bad_values_fail_with_the_directive_named() {
    for (conf, needle) in [
        ("docker_stream maybe;", "\"docker_stream\""),
        ("docker_stream;", "\"docker_stream\""),
        ("docker_stream on off;", "\"docker_stream\""),
        (
            "docker_stream_timeout 5x;",
            "\"docker_stream_timeout\": invalid time value \"5x\"",
        ),
        ("docker_stream_timeout -1;", "\"docker_stream_timeout\""),
        (
            "docker_stream_timeout 0;",
            "\"docker_stream_timeout\" must be positive",
        ),
        ("docker_stream_timeout 30d;", "too large"),
        ("docker_stream_timeout;", "\"docker_stream_timeout\""),
        (
            "docker_stream_timeout 1s; docker_stream_timeout 2s;",
            "is duplicate",
        ),
        ("docker_stream_timeout 1h 2h;", "\"docker_stream_timeout\""),
        (
            "docker_stream_splice yes;",
            "invalid value \"yes\" in \"docker_stream_splice\"",
        ),
        ("docker_stream_splice;", "\"docker_stream_splice\""),
        (
            "docker_stream_splice on; docker_stream_splice off;",
            "is duplicate",
        ),
        ("docker_api_allow;", "\"docker_api_allow\""),
        ("docker_api_deny;", "\"docker_api_deny\""),
        (
            "docker_api_allow read containers.execute;",
            "\"docker_api_allow\": unknown operation, group or section \"containers.execute\"",
        ),
        (
            "docker_api_deny containerCreate;",
            "\"docker_api_deny\": unknown operation, group or section \"containerCreate\"",
        ),
        ("docker_api_allow READ;", "\"READ\""),
        (
            "server { listen 127.0.0.1:1; location / { docker_api_rules nosuch; } }",
            "names \"nosuch\", which no \"docker_api_policy\" defines",
        ),
        (
            "docker_api_policy a { allow read; } docker_api_policy a { allow read; }",
            "\"docker_api_policy\": \"a\" is already defined",
        ),
        ("docker_api_policy a { }", "\"a\" has no rules"),
        (
            "docker_api_policy a { permit read; }",
            "unknown directive \"permit\" in \"docker_api_policy\" \"a\"",
        ),
        ("docker_api_policy a { allow; }", "needs an operation"),
        (
            "docker_api_policy a { allow nope; }",
            "unknown operation, group or section \"nope\"",
        ),
        (
            "docker_api_policy \"a b\" { allow read; }",
            "invalid policy name",
        ),
        ("docker_api_rules \"a;b\";", "invalid policy name"),
        (
            "docker_api_policy a { allow read; } docker_api_rules a; docker_api_rules a;",
            "\"docker_api_rules\" directive is duplicate",
        ),
        (
            "docker_api_policy a { allow read; } docker_api_allow read; docker_api_rules a;",
            "cannot be combined",
        ),
        (
            "docker_api_policy a { allow read; } docker_api_rules a; docker_api_deny all;",
            "\"docker_api_deny\" cannot be combined",
        ),
        (
            "server { listen 127.0.0.1:1; docker_api_policy a { allow read; } }",
            "\"docker_api_policy\" directive is not allowed here",
        ),
        (
            "docker_api_policy a { allow read; { } }",
            "unexpected \"{\"",
        ),
        ("docker_api_policy a;", "\"docker_api_policy\""),
        ("docker_api_guard;", "\"docker_api_guard\""),
        ("docker_api_metrics;", "\"docker_api_metrics\" directive is not allowed here"),
        (
            "server { listen 127.0.0.1:1; location / { docker_api_metrics on; } }",
            "invalid number of arguments in \"docker_api_metrics\"",
        ),
        (
            "server { listen 127.0.0.1:1; location / { proxy_pass http://127.0.0.1:1; docker_api_metrics; } }",
            "this location has a content handler already",
        ),
        (
            "docker_api_guard privilegde;",
            "\"docker_api_guard\": unknown guard \"privilegde\"",
        ),
        (
            "docker_api_guard all devices;",
            "\"off\" and \"all\" stand alone",
        ),
        (
            "docker_api_guard all; docker_api_guard off;",
            "\"docker_api_guard\" directive is duplicate",
        ),
        (
            "docker_api_guard_capabilities ALL;",
            "\"docker_api_guard_capabilities\": invalid capability \"ALL\"",
        ),
        (
            "docker_api_guard_bind_mounts srv/data;",
            "\"srv/data\" is not an absolute path",
        ),
        (
            "docker_api_guard_body_size big;",
            "\"docker_api_guard_body_size\": invalid size \"big\"",
        ),
        ("docker_api_guard_body_size 0;", "invalid size \"0\""),
        (
            "docker_api_refusal_hint a; docker_api_refusal_hint b;",
            "\"docker_api_refusal_hint\" directive is duplicate",
        ),
        (
            "docker_api_refusal_hint \"$no_such_variable\";",
            "unknown \"no_such_variable\" variable",
        ),
        (
            "docker_api_policy a { allow all; guard everything; }",
            "\"guard\" in \"docker_api_policy\" \"a\": unknown guard \"everything\"",
        ),
    ] {
        let (ok, out) = config_test(conf);
        assert!(!ok, "{conf} was accepted");
        assert!(
            out.contains("[emerg]") && out.contains(needle),
            "{conf}: {out}"
        );
        assert!(!out.contains("panicked"), "{conf}: {out}");
    }
}

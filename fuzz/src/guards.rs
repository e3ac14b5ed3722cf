//! `guards::check_body` on arbitrary bodies: never panics; with every guard on it refuses
//! whatever any single guard refuses (and lets through only what each lets through); and
//! a body it lets through, given one more `"HostConfig":{"Privileged":true}` at its end,
//! is refused by the `privileged` guard (Go merges a duplicated struct, so a later
//! object can never hide an earlier one's fields or the reverse).

use docker_stream_logic::guards::{check_body, Body, Guard, Guards};

fn guards(names: &[&str]) -> Guards {
    let mut g = Guards::default();
    g.set_guards(names).unwrap();
    g
}

pub fn check(data: &[u8]) {
    let all = guards(&["all"]);
    for kind in [
        Body::ContainerCreate,
        Body::ContainerExec,
        Body::ContainerUpdate,
        Body::VolumeCreate,
        Body::Service,
        Body::PluginPrivileges,
        Body::PluginSet,
        Body::ContainerStart,
    ] {
        let verdict_all = check_body(kind, &all, data);
        for g in Guard::ALL {
            let one = check_body(kind, &guards(&[g.name()]), data);
            if one.is_err() {
                assert!(
                    verdict_all.is_err(),
                    "{g:?} refuses {kind:?}, all lets through"
                );
            }
            if verdict_all.is_ok() {
                assert!(one.is_ok(), "all lets {kind:?} through, {g:?} refuses");
            }
        }
        if kind == Body::ContainerCreate && verdict_all.is_ok() {
            let text = String::from_utf8_lossy(data);
            let trimmed = text.trim_end();
            if let Some(head) = trimmed.strip_suffix('}') {
                let sep = if head.trim_end().ends_with('{') {
                    ""
                } else {
                    ","
                };
                let more = format!("{head}{sep}\"HostConfig\":{{\"Privileged\":true}}}}");
                let r = check_body(kind, &guards(&["privileged"]), more.as_bytes());
                if let Err(e) = &r {
                    assert_ne!(e.guard, None, "{more:?} became unreadable: {}", e.message);
                }
                assert!(r.is_err(), "{more:?} was let through");
            }
        }
    }
}

//! `docker_api_allow` / `docker_api_deny` / `docker_api_rules`: the request's Docker API
//! operation (classified from its method and nginx's normalized path, as dockerd routes)
//! is checked against the location's rules, or those of the policy named for the
//! request; a refused request gets `403` with a JSON `{"message": ...}` that the docker
//! CLI shows as "Error response from daemon: ...", and never reaches the daemon.
//!
//! Then the guards (`docker_api_guard`): for a build its query, for the operations that
//! carry a container, exec or volume spec their body, read in full before `proxy_pass`
//! sees it (so these bodies are buffered; every other request streams as before) and
//! decoded as dockerd decodes it (`logic/src/guards.rs`). What cannot be read in full or
//! decoded is refused.
//!
//! The check runs in the pre-content phase: after the access phase (`allow`/`deny`,
//! `auth_request` and the variables it sets), before `proxy_pass`, and before the module
//! releases a held `100 Continue` (so a refused request is not invited to send its body).

use core::ptr;

use nginx_sys::{
    ngx_conf_t, ngx_http_complex_value, ngx_http_complex_value_t, ngx_http_core_run_phases,
    ngx_http_finalize_request, ngx_http_phases_NGX_HTTP_PRECONTENT_PHASE,
    ngx_http_read_client_request_body, ngx_http_request_body_t, ngx_http_request_t,
    ngx_http_send_response, ngx_int_t, ngx_pnalloc, ngx_str_t, ngx_uint_t, NGX_DECLINED, NGX_DONE,
    NGX_ERROR, NGX_HTTP_FORBIDDEN, NGX_HTTP_INTERNAL_SERVER_ERROR,
    NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, NGX_HTTP_SPECIAL_RESPONSE, NGX_LOG_ERR, NGX_OK,
};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf};

use ngx::ngx_string;

use docker_stream_logic::guards::{
    check_body, check_build_query, refuse_unreadable, Body, Guards, Refusal,
};
use docker_stream_logic::operation::{classify, Operation};
use docker_stream_logic::rules::{
    decide, json_string, no_policy_message, refusal_message, rule_label,
};

use crate::api_conf::Access;
use crate::conf::DEFAULT_GUARD_BODY_LIMIT;
use crate::{body_limit, expect, guard, marks, metrics, phase, DockerStreamModule};

/// # Safety
/// `cf` is the configuration being parsed (postconfiguration), after `expect::register`:
/// handlers pushed later run earlier in a phase.
pub unsafe fn register(cf: *mut ngx_conf_t) -> ngx_int_t {
    phase::add(cf, ngx_http_phases_NGX_HTTP_PRECONTENT_PHASE, check)
}

unsafe extern "C" fn check(r: *mut ngx_http_request_t) -> ngx_int_t {
    let log = (*(*r).connection).log;
    guard::catch_status(log, || {
        // SAFETY: nginx passes a live request to phase handlers.
        unsafe {
            // Subrequests (auth_request) are not requests to the daemon.
            if r != (*r).main {
                return DECLINED;
            }
            let Some(conf) = DockerStreamModule::location_conf(&*r) else {
                return DECLINED;
            };
            // Nothing to check (every request passes here): no classification.
            if conf.access.is_none() && !conf.guards.any() {
                return DECLINED;
            }
            // The metrics location answers itself: it is not a Docker API request.
            if metrics::is_metrics_location(r) {
                return DECLINED;
            }
            let op = classify((*r).method_name.as_bytes(), (*r).uri.as_bytes()).operation;
            let mut guards = &conf.guards;
            if let Some(access) = &conf.access {
                let (rules, policy) = match access {
                    Access::Rules(rules) => (rules.as_slice(), None),
                    Access::Policy(cv) => {
                        let mut name = ngx_str_t::default();
                        if ngx_http_complex_value(r, *cv, &mut name) != NGX_OK as ngx_int_t {
                            return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
                        }
                        let found = DockerStreamModule::main_conf(&*r)
                            .and_then(|main| main.policy(name.as_bytes()));
                        let Some(p) = found else {
                            let message = no_policy_message(name.as_bytes());
                            return refuse(r, FORBIDDEN, &message, "no policy");
                        };
                        if let Some(g) = &p.guards {
                            guards = g;
                        }
                        (p.rules.as_slice(), Some(p.name.as_str()))
                    }
                };
                let decision = decide(rules, op);
                let rule = rule_label(decision, policy);
                if !decision.allowed() {
                    return refuse(r, FORBIDDEN, &refusal_message(decision, op, policy), &rule);
                }
                record(r, true, &rule);
            } else if guards.any() {
                record(r, true, "docker_api_guard");
            }
            match (op, guards.any()) {
                (Some(op), true) => check_guards(r, op, guards, conf.body_limit),
                _ => DECLINED,
            }
        }
    })
}

const DECLINED: ngx_int_t = NGX_DECLINED as ngx_int_t;
const FORBIDDEN: ngx_uint_t = NGX_HTTP_FORBIDDEN as ngx_uint_t;
const TOO_LARGE: ngx_uint_t = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE as ngx_uint_t;

/// The guards of a request: its query for a build, its body for the operations that
/// carry a spec. The body is read in full first (as the mirror module does), then the
/// phases run again and this check finds it read.
///
/// # Safety
/// `r` is the live main request, in a phase handler.
unsafe fn check_guards(
    r: *mut ngx_http_request_t,
    op: &Operation,
    guards: &Guards,
    limit: Option<usize>,
) -> ngx_int_t {
    if op.name == "ImageBuild" {
        if let Err(e) = check_build_query(guards, (*r).args.as_bytes()) {
            return refuse(
                r,
                FORBIDDEN,
                &Guards::message(op.name, &e),
                &guard_label(&e),
            );
        }
        return DECLINED;
    }
    if let Some(e) = refuse_unreadable(op.name, guards) {
        return refuse(
            r,
            FORBIDDEN,
            &Guards::message(op.name, &e),
            &guard_label(&e),
        );
    }
    let Some(kind) = Body::of(op.name, guards) else {
        return DECLINED;
    };
    let limit = limit.unwrap_or(DEFAULT_GUARD_BODY_LIMIT);
    let too_large = || {
        format!(
            "{} is refused by this proxy: its body is larger than docker_api_guard_body_size ({limit} bytes), and a guarded request is checked whole or not at all",
            op.name
        )
    };
    let rb = (*r).request_body;
    if rb.is_null() {
        if (*r).discard_body() != 0 {
            return refuse(
                r,
                FORBIDDEN,
                &format!(
                    "{}: the body was discarded before it could be checked",
                    op.name
                ),
                "docker_api_guard",
            );
        }
        let length = (*r).headers_in.content_length_n;
        if length > limit as i64 {
            return refuse(r, TOO_LARGE, &too_large(), "docker_api_guard_body_size");
        }
        if !body_limit::start(r, limit) {
            return NGX_ERROR as ngx_int_t;
        }
        // The client waits for a 100 before it sends the body: nginx sends it now.
        expect::release_for_body(r);
        let rc = ngx_http_read_client_request_body(r, Some(body_read));
        if rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
            return rc;
        }
        ngx_http_finalize_request(r, NGX_DONE as ngx_int_t);
        return NGX_DONE as ngx_int_t;
    }
    let body = match body_bytes(rb, limit) {
        Ok(Some(body)) => body,
        Ok(None) => return refuse(r, TOO_LARGE, &too_large(), "docker_api_guard_body_size"),
        Err(e) => {
            return refuse(
                r,
                FORBIDDEN,
                &format!(
                    "{}: the body could not be read to be checked ({e})",
                    op.name
                ),
                "docker_api_guard",
            )
        }
    };
    match check_body(kind, guards, &body) {
        Ok(()) => DECLINED,
        Err(e) => refuse(
            r,
            FORBIDDEN,
            &Guards::message(op.name, &e),
            &guard_label(&e),
        ),
    }
}

/// The body is read: the phases go on from this check, which now finds it.
unsafe extern "C" fn body_read(r: *mut ngx_http_request_t) {
    // SAFETY: nginx calls the post handler with the live request once its body is read;
    // the same steps as ngx_http_mirror_body_handler.
    (*r).set_preserve_body(1);
    (*r).write_event_handler = Some(ngx_http_core_run_phases);
    ngx_http_core_run_phases(r);
}

/// The read body, in memory or in its temporary file; `None` when it is longer than
/// `limit`.
///
/// # Safety
/// `rb` is the request body nginx read for a live request.
unsafe fn body_bytes(
    rb: *mut ngx_http_request_body_t,
    limit: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let mut cl = (*rb).bufs;
    while !cl.is_null() {
        let b = (*cl).buf;
        cl = (*cl).next;
        if b.is_null() {
            continue;
        }
        let in_memory = (*b).temporary() != 0 || (*b).memory() != 0 || (*b).mmap() != 0;
        let len = if in_memory {
            (*b).last.offset_from((*b).pos) as usize
        } else if (*b).in_file() != 0 && !(*b).file.is_null() {
            ((*b).file_last - (*b).file_pos) as usize
        } else {
            0
        };
        if out.len() + len > limit {
            return Ok(None);
        }
        if in_memory {
            out.extend_from_slice(core::slice::from_raw_parts((*b).pos, len));
        } else if len > 0 {
            let start = out.len();
            out.resize(start + len, 0);
            let fd = (*(*b).file).fd;
            let mut done = 0;
            while done < len {
                let n = libc::pread(
                    fd,
                    out[start + done..].as_mut_ptr().cast(),
                    len - done,
                    (*b).file_pos + done as i64,
                );
                if n <= 0 {
                    return Err(std::io::Error::last_os_error());
                }
                done += n as usize;
            }
        }
    }
    Ok(Some(out))
}

fn guard_label(e: &Refusal) -> String {
    match e.guard {
        Some(g) => format!("docker_api_guard {}", g.name()),
        None => "docker_api_guard".to_owned(),
    }
}

/// What the check decided, for `$docker_api_decision` and `$docker_api_rule`.
#[derive(Clone, Copy)]
#[repr(C)]
struct Verdict {
    allowed: bool,
    rule: ngx_str_t,
}

/// # Safety
/// `r` is the live main request.
pub unsafe fn record(r: *mut ngx_http_request_t, allowed: bool, rule: &str) {
    let data = ngx_pnalloc((*r).pool, rule.len().max(1)).cast::<u8>();
    if data.is_null() {
        return;
    }
    ptr::copy_nonoverlapping(rule.as_ptr(), data, rule.len());
    let rule = ngx_str_t {
        len: rule.len(),
        data,
    };
    marks::set(r, marks::VERDICT, Verdict { allowed, rule });
}

/// `(allowed, rule)` as the check recorded them for the main request of `r`.
///
/// # Safety
/// `r` is a live request.
pub unsafe fn recorded(r: *mut ngx_http_request_t) -> Option<(bool, ngx_str_t)> {
    let v = marks::find::<Verdict>((*r).main, marks::VERDICT);
    (!v.is_null()).then(|| ((*v).allowed, (*v).rule))
}

/// `message`, then `docker_api_refusal_hint` when it is set and not empty.
///
/// # Safety
/// `r` is the live main request.
unsafe fn with_hint(r: *mut ngx_http_request_t, message: &str) -> String {
    let Some(conf) = DockerStreamModule::location_conf(&*r) else {
        return message.to_owned();
    };
    if conf.refusal_hint.is_null() {
        return message.to_owned();
    }
    let mut hint = ngx_str_t::default();
    if ngx_http_complex_value(r, conf.refusal_hint, &mut hint) != NGX_OK as ngx_int_t
        || hint.len == 0
    {
        return message.to_owned();
    }
    format!("{message}; {}", String::from_utf8_lossy(hint.as_bytes()))
}

/// Logs the refusal, records it, sends it as JSON with `status` and finishes the request.
///
/// # Safety
/// `r` is the live main request, in a phase handler.
unsafe fn refuse(
    r: *mut ngx_http_request_t,
    status: ngx_uint_t,
    message: &str,
    rule: &str,
) -> ngx_int_t {
    // Recorded first: the hint may name `$docker_api_rule`.
    record(r, false, rule);
    let message = with_hint(r, message);
    api_log!(NGX_LOG_ERR, (*(*r).connection).log, "{}", message);
    let body = format!("{{\"message\":{}}}\n", json_string(&message));
    let data = ngx_pnalloc((*r).pool, body.len()).cast::<u8>();
    if data.is_null() {
        return NGX_ERROR as ngx_int_t;
    }
    core::ptr::copy_nonoverlapping(body.as_ptr(), data, body.len());
    // SAFETY: all-zero is a valid complex value (no lengths: its value is used as it is).
    let mut cv: ngx_http_complex_value_t = core::mem::zeroed();
    cv.value = ngx_str_t {
        len: body.len(),
        data,
    };
    let mut content_type = ngx_string!("application/json");
    // Discards the body (unread: a held 100 Continue stays unsent), sends head and body.
    let rc = ngx_http_send_response(r, status, &mut content_type, &mut cv);
    ngx_http_finalize_request(r, rc);
    NGX_DONE as ngx_int_t
}

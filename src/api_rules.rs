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

use core::ptr::{self, NonNull};

use nginx_sys::{
    ngx_conf_t, ngx_http_complex_value_t, ngx_http_core_run_phases, ngx_http_finalize_request,
    ngx_http_phases_NGX_HTTP_PRECONTENT_PHASE, ngx_http_read_client_request_body,
    ngx_http_request_body_t, ngx_http_request_t, ngx_http_send_response, ngx_int_t, ngx_str_t,
    NGX_HTTP_SPECIAL_RESPONSE, NGX_LOG_ERR,
};
use ngx::core::Status;
use ngx::http::{HTTPStatus, HttpModuleLocationConf, HttpModuleMainConf, Request};
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
pub unsafe fn register(cf: *mut ngx_conf_t) -> Status {
    phase::add(cf, ngx_http_phases_NGX_HTTP_PRECONTENT_PHASE, check)
}

unsafe extern "C" fn check(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx passes a live request to phase handlers.
    let r = Request::from_ngx_http_request(r);
    guard::catch_status(r.log(), || check_request(r)).into()
}

fn check_request(r: &mut Request) -> Status {
    // Subrequests (auth_request) are not requests to the daemon.
    if !r.is_main() {
        return Status::NGX_DECLINED;
    }
    let Some(conf) = DockerStreamModule::location_conf(r) else {
        return Status::NGX_DECLINED;
    };
    // Nothing to check (every request passes here): no classification.
    if conf.access.is_none() && !conf.guards.any() {
        return Status::NGX_DECLINED;
    }
    // The metrics location answers itself: it is not a Docker API request.
    if metrics::is_metrics_location(r) {
        return Status::NGX_DECLINED;
    }
    let h = r.as_ref();
    let op = classify(h.method_name.as_bytes(), h.uri.as_bytes()).operation;
    let mut guards = &conf.guards;
    if let Some(access) = &conf.access {
        let (rules, policy) = match access {
            Access::Rules(rules) => (rules.as_slice(), None),
            Access::Policy(cv) => {
                // SAFETY: the policy's complex value, compiled with the configuration.
                let Some(name) = r.get_complex_value(unsafe { &**cv }) else {
                    return HTTPStatus::INTERNAL_SERVER_ERROR.into();
                };
                let found =
                    DockerStreamModule::main_conf(r).and_then(|main| main.policy(name.as_bytes()));
                let Some(p) = found else {
                    let message = no_policy_message(name.as_bytes());
                    return refuse(r, HTTPStatus::FORBIDDEN, &message, "no policy");
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
            let message = refusal_message(decision, op, policy);
            return refuse(r, HTTPStatus::FORBIDDEN, &message, &rule);
        }
        record(r, true, &rule);
    } else if guards.any() {
        record(r, true, "docker_api_guard");
    }
    match (op, guards.any()) {
        (Some(op), true) => check_guards(r, op, guards, conf.body_limit),
        _ => Status::NGX_DECLINED,
    }
}

/// The guards of a request: its query for a build, its body for the operations that
/// carry a spec. The body is read in full first (as the mirror module does), then the
/// phases run again and this check finds it read. `r` is the main request, in a phase
/// handler.
fn check_guards(r: &mut Request, op: &Operation, guards: &Guards, limit: Option<usize>) -> Status {
    if op.name == "ImageBuild" {
        if let Err(e) = check_build_query(guards, r.as_ref().args.as_bytes()) {
            return refuse(
                r,
                HTTPStatus::FORBIDDEN,
                &Guards::message(op.name, &e),
                &guard_label(&e),
            );
        }
        return Status::NGX_DECLINED;
    }
    if let Some(e) = refuse_unreadable(op.name, guards) {
        return refuse(
            r,
            HTTPStatus::FORBIDDEN,
            &Guards::message(op.name, &e),
            &guard_label(&e),
        );
    }
    let Some(kind) = Body::of(op.name, guards) else {
        return Status::NGX_DECLINED;
    };
    let limit = limit.unwrap_or(DEFAULT_GUARD_BODY_LIMIT);
    let too_large = || {
        format!(
            "{} is refused by this proxy: its body is larger than docker_api_guard_body_size ({limit} bytes), and a guarded request is checked whole or not at all",
            op.name
        )
    };
    let Some(rb) = NonNull::new(r.as_ref().request_body) else {
        return read_body(r, op, limit, too_large);
    };
    // SAFETY: the body nginx read for this request.
    let body = match unsafe { body_bytes(rb.as_ref(), limit) } {
        Ok(Some(body)) => body,
        Ok(None) => {
            return refuse(
                r,
                HTTPStatus::REQUEST_ENTITY_TOO_LARGE,
                &too_large(),
                "docker_api_guard_body_size",
            )
        }
        Err(e) => {
            return refuse(
                r,
                HTTPStatus::FORBIDDEN,
                &format!(
                    "{}: the body could not be read to be checked ({e})",
                    op.name
                ),
                "docker_api_guard",
            )
        }
    };
    match check_body(kind, guards, &body) {
        Ok(()) => Status::NGX_DECLINED,
        Err(e) => refuse(
            r,
            HTTPStatus::FORBIDDEN,
            &Guards::message(op.name, &e),
            &guard_label(&e),
        ),
    }
}

/// Starts reading the body of a guarded request (or refuses it when it cannot be read
/// whole); the phases run again once it is read.
fn read_body(
    r: &mut Request,
    op: &Operation,
    limit: usize,
    too_large: impl FnOnce() -> String,
) -> Status {
    let h = r.as_ref();
    if h.discard_body() != 0 {
        let message = format!(
            "{}: the body was discarded before it could be checked",
            op.name
        );
        return refuse(r, HTTPStatus::FORBIDDEN, &message, "docker_api_guard");
    }
    if h.headers_in.content_length_n > limit as i64 {
        let message = too_large();
        let status = HTTPStatus::REQUEST_ENTITY_TOO_LARGE;
        return refuse(r, status, &message, "docker_api_guard_body_size");
    }
    if !body_limit::start(r, limit) {
        return Status::NGX_ERROR;
    }
    // The client waits for a 100 before it sends the body: nginx sends it now.
    expect::release_for_body(r);
    // SAFETY: the live main request, in a phase handler, as the mirror module reads one.
    let rc = unsafe { ngx_http_read_client_request_body(r.into(), Some(body_read)) };
    if rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
        return Status(rc);
    }
    // SAFETY: as above; the read goes on without the phase handler.
    unsafe { ngx_http_finalize_request(r.into(), Status::NGX_DONE.into()) };
    Status::NGX_DONE
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
    rb: &ngx_http_request_body_t,
    limit: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let mut cl = rb.bufs;
    while let Some(link) = cl.as_ref() {
        cl = link.next;
        let Some(b) = link.buf.as_ref() else {
            continue;
        };
        let in_memory = b.temporary() != 0 || b.memory() != 0 || b.mmap() != 0;
        let file = b.file.as_ref().filter(|_| b.in_file() != 0);
        let len = match (in_memory, file) {
            (true, _) => b.last.offset_from(b.pos) as usize,
            (false, Some(_)) => (b.file_last - b.file_pos) as usize,
            (false, None) => 0,
        };
        if out.len() + len > limit {
            return Ok(None);
        }
        if in_memory {
            out.extend_from_slice(core::slice::from_raw_parts(b.pos, len));
        } else if let Some(file) = file.filter(|_| len > 0) {
            let start = out.len();
            out.resize(start + len, 0);
            let mut done = 0;
            while done < len {
                let n = libc::pread(
                    file.fd,
                    out[start + done..].as_mut_ptr().cast(),
                    len - done,
                    b.file_pos + done as i64,
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

/// Records the decision for the main request `r`.
pub fn record(r: &Request, allowed: bool, rule: &str) {
    let data = r.pool().alloc_unaligned(rule.len().max(1)).cast::<u8>();
    if data.is_null() {
        return;
    }
    // SAFETY: room for the rule's bytes, from the request's pool.
    unsafe { ptr::copy_nonoverlapping(rule.as_ptr(), data, rule.len()) };
    let rule = ngx_str_t {
        len: rule.len(),
        data,
    };
    // SAFETY: VERDICT marks hold a `Verdict`, whose rule lives in the same pool.
    unsafe { marks::set(r, marks::VERDICT, Verdict { allowed, rule }) };
}

/// `(allowed, rule)` as the check recorded them for the main request of `r`.
pub fn recorded(r: &Request) -> Option<(bool, ngx_str_t)> {
    // SAFETY: a request's main request is live while it is; VERDICT marks hold a
    // `Verdict`.
    let v = unsafe {
        let main = Request::from_ngx_http_request(r.as_ref().main);
        marks::find::<Verdict>(main, marks::VERDICT)
    };
    v.map(|v| (v.allowed, v.rule))
}

/// `message`, then `docker_api_refusal_hint` when it is set and not empty.
fn with_hint(r: &Request, message: &str) -> String {
    let hint = DockerStreamModule::location_conf(r)
        // SAFETY: a non-null hint is a complex value compiled with the configuration.
        .and_then(|conf| unsafe { conf.refusal_hint.as_ref() })
        .and_then(|cv| r.get_complex_value(cv))
        .filter(|hint| !hint.is_empty());
    match hint {
        Some(hint) => format!("{message}; {}", String::from_utf8_lossy(hint.as_bytes())),
        None => message.to_owned(),
    }
}

/// Logs the refusal, records it, sends it as JSON with `status` and finishes the main
/// request `r` (in a phase handler).
fn refuse(r: &mut Request, status: HTTPStatus, message: &str, rule: &str) -> Status {
    // Recorded first: the hint may name `$docker_api_rule`.
    record(r, false, rule);
    let message = with_hint(r, message);
    api_log!(NGX_LOG_ERR, r.log(), "{}", message);
    let body = format!("{{\"message\":{}}}\n", json_string(&message));
    let data = r.pool().alloc_unaligned(body.len()).cast::<u8>();
    if data.is_null() {
        return Status::NGX_ERROR;
    }
    // SAFETY: room for the body, from the request's pool.
    unsafe { ptr::copy_nonoverlapping(body.as_ptr(), data, body.len()) };
    // SAFETY: all-zero is a valid complex value (no lengths: its value is used as it is).
    let mut cv: ngx_http_complex_value_t = unsafe { core::mem::zeroed() };
    cv.value = ngx_str_t {
        len: body.len(),
        data,
    };
    let mut content_type = ngx_string!("application/json");
    // Discards the body (unread: a held 100 Continue stays unsent), sends head and body.
    // SAFETY: the live main request, with a status, a type and a body that outlive it.
    unsafe {
        let rc = ngx_http_send_response(r.into(), status.into(), &mut content_type, &mut cv);
        ngx_http_finalize_request(r.into(), rc);
    }
    Status::NGX_DONE
}

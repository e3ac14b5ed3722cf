//! `docker_api_allow` / `docker_api_deny` / `docker_api_rules`: the request's Docker API
//! operation (classified from its method and nginx's normalized path, as dockerd routes)
//! is checked against the location's rules, or those of the policy named for the
//! request; a refused request gets `403` with a JSON `{"message": ...}` that the docker
//! CLI shows as "Error response from daemon: ...", and never reaches the daemon.
//!
//! The check runs in the pre-content phase: after the access phase (`allow`/`deny`,
//! `auth_request` and the variables it sets), before `proxy_pass`, and before the module
//! releases a held `100 Continue` (so a refused request is not invited to send its body).

use nginx_sys::{
    ngx_array_push, ngx_conf_t, ngx_http_complex_value, ngx_http_complex_value_t,
    ngx_http_finalize_request, ngx_http_handler_pt, ngx_http_phases_NGX_HTTP_PRECONTENT_PHASE,
    ngx_http_request_t, ngx_http_send_response, ngx_int_t, ngx_pnalloc, ngx_str_t, ngx_uint_t,
    NGX_DECLINED, NGX_DONE, NGX_ERROR, NGX_HTTP_FORBIDDEN, NGX_HTTP_INTERNAL_SERVER_ERROR,
    NGX_LOG_ERR, NGX_OK,
};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule};

use crate::api_conf::Access;
use ngx::{ngx_log_error, ngx_string};

use docker_stream_logic::operation::classify;
use docker_stream_logic::rules::{decide, json_string, no_policy_message, refusal_message};

use crate::{guard, DockerStreamModule};

/// # Safety
/// `cf` is the configuration being parsed (postconfiguration), after `expect::register`:
/// handlers pushed later run earlier in a phase.
pub unsafe fn register(cf: *mut ngx_conf_t) -> ngx_int_t {
    let Some(cmcf) = NgxHttpCoreModule::main_conf_mut(&*cf) else {
        return NGX_ERROR as ngx_int_t;
    };
    let phase = ngx_http_phases_NGX_HTTP_PRECONTENT_PHASE as usize;
    let h = ngx_array_push(&mut cmcf.phases[phase].handlers).cast::<ngx_http_handler_pt>();
    if h.is_null() {
        return NGX_ERROR as ngx_int_t;
    }
    *h = Some(check);
    NGX_OK as ngx_int_t
}

unsafe extern "C" fn check(r: *mut ngx_http_request_t) -> ngx_int_t {
    let log = (*(*r).connection).log;
    guard::catch_status(log, || {
        // SAFETY: nginx passes a live request to phase handlers.
        unsafe {
            // Subrequests (auth_request) are not requests to the daemon.
            if r != (*r).main {
                return NGX_DECLINED as ngx_int_t;
            }
            let Some(conf) = DockerStreamModule::location_conf(&*r) else {
                return NGX_DECLINED as ngx_int_t;
            };
            let (rules, policy) = match &conf.access {
                None => return NGX_DECLINED as ngx_int_t,
                Some(Access::Rules(rules)) => (rules.as_slice(), None),
                Some(Access::Policy(cv)) => {
                    let mut name = ngx_str_t::default();
                    if ngx_http_complex_value(r, *cv, &mut name) != NGX_OK as ngx_int_t {
                        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
                    }
                    let found = DockerStreamModule::main_conf(&*r)
                        .and_then(|main| main.policy(name.as_bytes()));
                    match found {
                        Some(p) => (p.rules.as_slice(), Some(p.name.as_str())),
                        None => {
                            let message = no_policy_message(name.as_bytes());
                            ngx_log_error!(NGX_LOG_ERR, log, "docker_api: {}", message);
                            return refuse(r, &message);
                        }
                    }
                }
            };
            let op = classify((*r).method_name.as_bytes(), (*r).uri.as_bytes()).operation;
            let decision = decide(rules, op);
            if decision.allowed() {
                return NGX_DECLINED as ngx_int_t;
            }
            let message = refusal_message(decision, op, policy);
            ngx_log_error!(NGX_LOG_ERR, log, "docker_api: {}", message);
            refuse(r, &message)
        }
    })
}

/// Sends the 403 and finishes the request.
///
/// # Safety
/// `r` is the live main request, in a phase handler.
unsafe fn refuse(r: *mut ngx_http_request_t, message: &str) -> ngx_int_t {
    let body = format!("{{\"message\":{}}}\n", json_string(message));
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
    let rc = ngx_http_send_response(
        r,
        NGX_HTTP_FORBIDDEN as ngx_uint_t,
        &mut content_type,
        &mut cv,
    );
    ngx_http_finalize_request(r, rc);
    NGX_DONE as ngx_int_t
}

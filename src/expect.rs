//! `Expect: 100-continue`. nginx sends `100 Continue` as soon as anything reads or
//! discards the request body, and refusing a request discards it: a request that a
//! `return 403` (the image's allow-list), `auth_request` or `limit_conn` refuses got
//! `100 Continue` first, inviting the client to send a body only to throw it away. The
//! module holds the 100 back until the request reaches a location that hands it to a
//! content handler (`proxy_pass`): refusals in the phases before answer without it.

use nginx_sys::{
    ngx_conf_t, ngx_http_phases_NGX_HTTP_POST_READ_PHASE,
    ngx_http_phases_NGX_HTTP_PRECONTENT_PHASE, ngx_http_request_t, ngx_int_t, NGX_HTTP_VERSION_11,
};
use ngx::core::Status;
use ngx::http::{HttpModuleLocationConf, NgxHttpCoreModule, Request};

use crate::{guard, marks, phase, DockerStreamModule};

/// # Safety
/// `cf` is the configuration being parsed (postconfiguration).
pub unsafe fn register(cf: *mut ngx_conf_t) -> Status {
    if !phase::add(cf, ngx_http_phases_NGX_HTTP_POST_READ_PHASE, hold).is_ok() {
        return Status::NGX_ERROR;
    }
    phase::add(cf, ngx_http_phases_NGX_HTTP_PRECONTENT_PHASE, release)
}

/// Whether this module held the 100 back: a mark in the request pool (which outlives
/// internal redirects, unlike module contexts).
fn held(r: &Request) -> bool {
    // SAFETY: HELD_100 marks hold `()`; nothing is kept.
    unsafe { marks::find::<()>(r, marks::HELD_100) }.is_some()
}

/// Lets nginx send the held `100 Continue` when the body is read next (a guard reads it
/// before `proxy_pass` does). `r` is the main request.
pub fn release_for_body(r: &mut Request) {
    if held(r) {
        marks::clear(r, marks::HELD_100);
        r.as_mut().set_expect_tested(0);
    }
}

/// Post-read: an HTTP/1.1 request with `Expect` has its test marked done, so that a
/// refusal sends no 100.
unsafe extern "C" fn hold(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx passes a live request to phase handlers.
    let r = Request::from_ngx_http_request(r);
    guard::catch_status(r.log(), || {
        let h = r.as_ref();
        if !r.is_main()
            || h.http_version != NGX_HTTP_VERSION_11 as usize
            || h.headers_in.expect.is_null()
            || h.expect_tested() != 0
        {
            return Status::NGX_DECLINED;
        }
        // SAFETY: as in `held`.
        if unsafe { marks::set(r, marks::HELD_100, ()) }.is_none() {
            return Status::NGX_ERROR;
        }
        r.as_mut().set_expect_tested(1);
        Status::NGX_DECLINED
    })
    .into()
}

/// Pre-content: the request goes on to a content handler (or to a location where the
/// module is off): nginx's own 100 again, sent when the body is read.
unsafe extern "C" fn release(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx passes a live request to phase handlers.
    let r = Request::from_ngx_http_request(r);
    guard::catch_status(r.log(), || {
        if !r.is_main() || r.as_ref().headers_in.expect.is_null() || !held(r) {
            return Status::NGX_DECLINED;
        }
        let has_handler = NgxHttpCoreModule::location_conf(r).is_some_and(|c| c.handler.is_some());
        let module_on = DockerStreamModule::location_conf(r).is_some_and(|c| c.enabled());
        if has_handler || !module_on {
            marks::clear(r, marks::HELD_100);
            r.as_mut().set_expect_tested(0);
        }
        Status::NGX_DECLINED
    })
    .into()
}

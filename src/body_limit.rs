//! The size limit of a body a guard reads (`docker_api_guard_body_size`), enforced while
//! nginx reads it: a request body filter counts the bytes of the requests a guard marked
//! and ends the request with `413` once they pass the limit, as nginx does for
//! `client_max_body_size`. A body with a `Content-Length` over the limit is refused
//! before it is read (api_rules); this covers chunked bodies, whose size is known only
//! at their end.

use nginx_sys::{
    ngx_chain_t, ngx_http_request_body_filter_pt, ngx_http_request_t,
    ngx_http_top_request_body_filter, ngx_int_t, NGX_LOG_ERR,
};
use ngx::core::Status;
use ngx::http::{HTTPStatus, Request};

use crate::{api_rules, guard, marks};

static mut NEXT: ngx_http_request_body_filter_pt = None;

/// # Safety
/// Called once per configuration from postconfiguration.
pub unsafe fn install() -> Status {
    NEXT = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = Some(filter);
    Status::NGX_OK
}

/// How much of a marked request's body may still come.
#[derive(Clone, Copy)]
#[repr(C)]
struct Budget {
    limit: usize,
    seen: usize,
}

/// Marks the main request `r`, whose body is about to be read, with `limit`.
pub fn start(r: &Request, limit: usize) -> bool {
    // SAFETY: BUDGET marks hold a `Budget`, used within this request.
    unsafe { marks::set(r, marks::BUDGET, Budget { limit, seen: 0 }) }.is_some()
}

/// Counts the bytes of `chain` against the request's budget, if it has one.
fn count(r: &mut Request, chain: *mut ngx_chain_t) -> Status {
    // SAFETY: as in `start`.
    let Some(b) = (unsafe { marks::find::<Budget>(r, marks::BUDGET) }) else {
        return Status::NGX_OK;
    };
    let mut cl = chain;
    // SAFETY: nginx passes the chain of body bytes just read (buffers in memory, after
    // the length or chunked filter).
    unsafe {
        while let Some(link) = cl.as_ref() {
            if let Some(buf) = link.buf.as_ref().filter(|buf| buf.in_file() == 0) {
                b.seen += buf.last.offset_from(buf.pos) as usize;
            }
            cl = link.next;
        }
    }
    if b.seen > b.limit {
        api_log!(
            NGX_LOG_ERR,
            r.log(),
            "the body is larger than docker_api_guard_body_size ({} bytes), refused unchecked",
            b.limit
        );
        api_rules::record(r, false, "docker_api_guard_body_size");
        return HTTPStatus::REQUEST_ENTITY_TOO_LARGE.into();
    }
    Status::NGX_OK
}

unsafe extern "C" fn filter(r: *mut ngx_http_request_t, chain: *mut ngx_chain_t) -> ngx_int_t {
    {
        // SAFETY: nginx passes the live request to request body filters.
        let req = Request::from_ngx_http_request(r);
        let verdict = guard::catch_status(req.log(), || count(req, chain));
        if !verdict.is_ok() {
            return verdict.into();
        }
    }
    // SAFETY: NEXT was set by install() before any request.
    match unsafe { NEXT } {
        Some(next) => next(r, chain),
        None => Status::NGX_ERROR.into(),
    }
}

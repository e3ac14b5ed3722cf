//! The size limit of a body a guard reads (`docker_api_guard_body_size`), enforced while
//! nginx reads it: a request body filter counts the bytes of the requests a guard marked
//! and ends the request with `413` once they pass the limit, as nginx does for
//! `client_max_body_size`. A body with a `Content-Length` over the limit is refused
//! before it is read (api_rules); this covers chunked bodies, whose size is known only
//! at their end.

use nginx_sys::{
    ngx_chain_t, ngx_http_request_body_filter_pt, ngx_http_request_t,
    ngx_http_top_request_body_filter, ngx_int_t, NGX_ERROR, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
    NGX_LOG_ERR, NGX_OK,
};

use crate::{api_rules, guard, marks};

static mut NEXT: ngx_http_request_body_filter_pt = None;

/// # Safety
/// Called once per configuration from postconfiguration.
pub unsafe fn install() -> ngx_int_t {
    NEXT = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = Some(filter);
    NGX_OK as ngx_int_t
}

/// How much of a marked request's body may still come.
#[derive(Clone, Copy)]
#[repr(C)]
struct Budget {
    limit: usize,
    seen: usize,
}

/// Marks the main request `r`, whose body is about to be read, with `limit`.
///
/// # Safety
/// `r` is a live main request.
pub unsafe fn start(r: *mut ngx_http_request_t, limit: usize) -> bool {
    !marks::set(r, marks::BUDGET, Budget { limit, seen: 0 }).is_null()
}

unsafe extern "C" fn filter(r: *mut ngx_http_request_t, chain: *mut ngx_chain_t) -> ngx_int_t {
    let log = (*(*r).connection).log;
    let verdict = guard::catch_status(log, || {
        // SAFETY: nginx passes the live request and the chain of body bytes just read
        // (buffers in memory, after the length or chunked filter).
        unsafe {
            let b = marks::find::<Budget>(r, marks::BUDGET);
            if b.is_null() {
                return NGX_OK as ngx_int_t;
            }
            let mut cl = chain;
            while !cl.is_null() {
                let buf = (*cl).buf;
                if !buf.is_null() && (*buf).in_file() == 0 {
                    (*b).seen += (*buf).last.offset_from((*buf).pos) as usize;
                }
                cl = (*cl).next;
            }
            if (*b).seen > (*b).limit {
                api_log!(
                    NGX_LOG_ERR,
                    log,
                    "the body is larger than docker_api_guard_body_size ({} bytes), refused unchecked",
                    (*b).limit
                );
                api_rules::record(r, false, "docker_api_guard_body_size");
                return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE as ngx_int_t;
            }
            NGX_OK as ngx_int_t
        }
    });
    if verdict != NGX_OK as ngx_int_t {
        return verdict;
    }
    // SAFETY: NEXT was set by install() before any request.
    match unsafe { NEXT } {
        Some(next) => next(r, chain),
        None => NGX_ERROR as ngx_int_t,
    }
}

//! Header and body filters. Every path calls the next filter; the decisions are early
//! bail-outs so that ordinary responses pay a few comparisons.

use core::mem::size_of;
use core::ptr;

use docker_stream_logic::duration::MAX_MSEC;
use nginx_sys::{
    ngx_chain_t, ngx_http_output_body_filter_pt, ngx_http_output_header_filter_pt,
    ngx_http_request_t, ngx_http_top_body_filter, ngx_http_top_header_filter,
    ngx_http_upstream_conf_t, ngx_http_upstream_t, ngx_int_t, ngx_list_t, ngx_msec_t, ngx_palloc,
    ngx_table_elt_t, NGX_ERROR, NGX_HTTP_SWITCHING_PROTOCOLS, NGX_HTTP_VERSION_11,
    NGX_HTTP_VERSION_20, NGX_HTTP_VERSION_NOT_SUPPORTED, NGX_LOG_ERR, NGX_LOG_INFO, NGX_OK,
};
use ngx::http::{HttpModuleLocationConf, Request};

use crate::tunnel::{self, Mode};
use crate::{guard, reset, DockerStreamModule};
use docker_stream_logic::content_type::stream_type;

/// nginx's `NGX_HTTP_VERSION_30`, which only the headers of an nginx built with HTTP/3
/// define (Debian 12's nginx 1.22 has none).
const HTTP_VERSION_3: usize = 3000;

static mut NEXT_HEADER_FILTER: ngx_http_output_header_filter_pt = None;
static mut NEXT_BODY_FILTER: ngx_http_output_body_filter_pt = None;
static mut TOP_NEXT_HEADER_FILTER: ngx_http_output_header_filter_pt = None;

const OK: ngx_int_t = NGX_OK as ngx_int_t;

/// # Safety
/// Called once per configuration from postconfiguration.
pub unsafe fn install_core_filters() -> ngx_int_t {
    NEXT_HEADER_FILTER = ngx_http_top_header_filter;
    ngx_http_top_header_filter = Some(header_filter);
    NEXT_BODY_FILTER = ngx_http_top_body_filter;
    ngx_http_top_body_filter = Some(body_filter);
    OK
}

/// # Safety
/// Called once per configuration from postconfiguration.
pub unsafe fn install_top_filter() -> ngx_int_t {
    TOP_NEXT_HEADER_FILTER = ngx_http_top_header_filter;
    ngx_http_top_header_filter = Some(top_header_filter);
    OK
}

/// The main request's upstream, in a location where `docker_stream` is on.
unsafe fn docker_upstream(r: *mut ngx_http_request_t) -> Option<*mut ngx_http_upstream_t> {
    if r != (*r).main || (*r).upstream.is_null() {
        return None;
    }
    let conf = DockerStreamModule::location_conf(&*r)?;
    conf.enabled().then_some((*r).upstream)
}

unsafe fn is_stream_2xx(r: *mut ngx_http_request_t) -> bool {
    let status = (*r).headers_out.status;
    (200..300).contains(&status) && stream_type((*r).headers_out.content_type.as_bytes()).is_some()
}

/// Whether the daemon's response carries `Api-Version`, as every Docker (and Podman)
/// API response does.
unsafe fn has_api_version(list: &ngx_list_t) -> bool {
    let mut part = &list.part;
    loop {
        let elts = part.elts as *const ngx_table_elt_t;
        for i in 0..part.nelts {
            let h = &*elts.add(i);
            if h.hash != 0 && h.key.as_bytes().eq_ignore_ascii_case(b"api-version") {
                return true;
            }
        }
        if part.next.is_null() {
            return false;
        }
        part = &*part.next;
    }
}

/// A long-poll (wait, logs -f, events) may be silent for hours, as on the direct socket:
/// the rest of the response is read under `docker_stream_timeout` (default: no limit)
/// instead of `proxy_read_timeout`. The proxy reads `u->conf` only through the pointer, so
/// a per-request copy with another `read_timeout` changes nothing else.
unsafe fn extend_read_timeout(
    r: *mut ngx_http_request_t,
    u: *mut ngx_http_upstream_t,
) -> Result<(), ()> {
    let limit =
        DockerStreamModule::location_conf(&*r).map_or(MAX_MSEC as ngx_msec_t, |c| c.idle_timer());
    if (*(*u).conf).read_timeout == limit {
        return Ok(());
    }
    let copy = ngx_palloc((*r).pool, size_of::<ngx_http_upstream_conf_t>())
        .cast::<ngx_http_upstream_conf_t>();
    if copy.is_null() {
        return Err(());
    }
    ptr::copy_nonoverlapping((*u).conf, copy, 1);
    (*copy).read_timeout = limit;
    (*u).conf = copy;
    Ok(())
}

/// An ordinary response (no hijack) whose body ends when the daemon closes, read
/// without buffering.
unsafe fn ends_at_close(r: *mut ngx_http_request_t, u: *mut ngx_http_upstream_t) -> bool {
    (*u).buffering() == 0
        && (*u).headers_in.content_length_n < 0
        && (*u).headers_in.chunked() == 0
        && (*r).headers_out.status != NGX_HTTP_SWITCHING_PROTOCOLS as usize
        && !is_stream_2xx(r)
}

/// Top of the chain, for every protocol: stream the daemon's responses, and refuse a
/// hijack to HTTP/2 and HTTP/3 clients, which have no way to carry it.
unsafe extern "C" fn top_header_filter(r: *mut ngx_http_request_t) -> ngx_int_t {
    let log = (*(*r).connection).log;
    let rc = guard::catch_status(log, || {
        // SAFETY: nginx passes a live request to header filters.
        unsafe {
            let Some(u) = docker_upstream(r) else {
                return OK;
            };
            if has_api_version(&(*u).headers_in.headers) {
                if (*u).buffering() != 0 && (*u).cacheable() == 0 {
                    // wait, logs -f, events, stats: the head and each line must reach the
                    // client as the daemon produces them; non-buffered proxying flushes the
                    // head.
                    (*u).set_buffering(0);
                }
                if extend_read_timeout(r, u).is_err() {
                    return NGX_ERROR as ngx_int_t;
                }
                if ends_at_close(r, u) {
                    reset::end_at_reset(u);
                }
            }
            if (*r).http_version >= NGX_HTTP_VERSION_20 as usize && is_stream_2xx(r) {
                let major = if (*r).http_version >= HTTP_VERSION_3 {
                    3
                } else {
                    2
                };
                stream_log!(
                    NGX_LOG_ERR,
                    log,
                    "the daemon hijacked the connection, which HTTP/{major} cannot carry; \
                     the client must use HTTP/1.1"
                );
                return NGX_HTTP_VERSION_NOT_SUPPORTED as ngx_int_t;
            }
            OK
        }
    });
    if rc != OK {
        return rc;
    }
    match TOP_NEXT_HEADER_FILTER {
        Some(next) => next(r),
        None => NGX_ERROR as ngx_int_t,
    }
}

/// Right below the chunked filter: switches a raw-stream 2xx to a tunnel.
unsafe extern "C" fn header_filter(r: *mut ngx_http_request_t) -> ngx_int_t {
    let log = (*(*r).connection).log;
    let rc = guard::catch_status(log, || {
        // SAFETY: nginx passes a live request to header filters.
        unsafe { switch_to_tunnel(r) }
    });
    if rc != OK {
        return rc;
    }
    match NEXT_HEADER_FILTER {
        Some(next) => next(r),
        None => NGX_ERROR as ngx_int_t,
    }
}

unsafe fn switch_to_tunnel(r: *mut ngx_http_request_t) -> ngx_int_t {
    let Some(u) = docker_upstream(r) else {
        return OK;
    };

    if (*r).headers_out.status == NGX_HTTP_SWITCHING_PROTOCOLS as usize {
        // The daemon answered 101 itself (Upgrade forwarded): nginx upgrades, we relay.
        return if (*u).upgrade() != 0 {
            tunnel::attach(r, Mode::Native)
        } else {
            OK
        };
    }
    if !is_stream_2xx(r) || (*r).http_version >= NGX_HTTP_VERSION_20 as usize {
        return OK;
    }
    if (*u).headers_in.content_length_n >= 0 || (*u).headers_in.chunked() != 0 {
        // A framed body ends by itself: it is an ordinary response, not a hijack.
        stream_log!(
            NGX_LOG_INFO,
            (*(*r).connection).log,
            "raw-stream response with a framed body is passed as is"
        );
        return OK;
    }

    // The chunked filter above has already chosen chunking for a 2xx without length.
    (*r).set_chunked(0);
    if (*r).http_version >= NGX_HTTP_VERSION_11 as usize && !(*r).headers_in.upgrade.is_null() {
        // Clients since docker 25 require a 101; the header filter adds "Connection: upgrade".
        (*r).headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS as usize;
        (*r).headers_out.status_line = ngx::ngx_string!("101 UPGRADED");
        if Request::from_ngx_http_request(r)
            .add_header_out("Upgrade", "tcp")
            .is_none()
        {
            return NGX_ERROR as ngx_int_t;
        }
    } else {
        // Older clients read until close.
        (*r).set_keepalive(0);
    }
    (*u).set_upgrade(1);
    (*u).set_keepalive(0);
    tunnel::attach(r, Mode::Switched)
}

/// Takes over the relay when `ngx_http_upstream_upgrade()` flushes the head.
unsafe extern "C" fn body_filter(r: *mut ngx_http_request_t, chain: *mut ngx_chain_t) -> ngx_int_t {
    let Some(next) = NEXT_BODY_FILTER else {
        return NGX_ERROR as ngx_int_t;
    };
    if r != (*r).main || (*r).upstream.is_null() {
        return next(r, chain);
    }
    let Some(t) = tunnel::get(r) else {
        return next(r, chain);
    };
    if !tunnel::wants_install(t, &*(*r).upstream) {
        return next(r, chain);
    }
    let rc = next(r, chain);
    if rc == NGX_ERROR as ngx_int_t {
        return rc;
    }
    let log = (*(*r).connection).log;
    guard::catch_status(log, || {
        // SAFETY: nginx is upgrading this main request; its upstream is connected.
        unsafe { tunnel::install(r, t) };
        rc
    })
}

//! Header and body filters. Every path calls the next filter; the decisions are early
//! bail-outs so that ordinary responses pay a few comparisons.

use core::mem::size_of;
use core::ptr::{self, NonNull};

use docker_stream_logic::duration::MAX_MSEC;
use nginx_sys::{
    ngx_chain_t, ngx_http_output_body_filter_pt, ngx_http_output_header_filter_pt,
    ngx_http_request_t, ngx_http_top_body_filter, ngx_http_top_header_filter,
    ngx_http_upstream_conf_t, ngx_http_upstream_t, ngx_int_t, ngx_list_t, ngx_msec_t,
    ngx_table_elt_t, NGX_HTTP_SWITCHING_PROTOCOLS, NGX_HTTP_VERSION_11, NGX_HTTP_VERSION_20,
    NGX_LOG_ERR, NGX_LOG_INFO,
};
use ngx::core::Status;
use ngx::http::{HTTPStatus, HttpModuleLocationConf, Request};

use crate::tunnel::{self, Mode};
use crate::{guard, reset, DockerStreamModule};
use docker_stream_logic::content_type::stream_type;

/// nginx's `NGX_HTTP_VERSION_30`, which only the headers of an nginx built with HTTP/3
/// define (Debian 12's nginx 1.22 has none).
const HTTP_VERSION_3: usize = 3000;

static mut NEXT_HEADER_FILTER: ngx_http_output_header_filter_pt = None;
static mut NEXT_BODY_FILTER: ngx_http_output_body_filter_pt = None;
static mut TOP_NEXT_HEADER_FILTER: ngx_http_output_header_filter_pt = None;

/// # Safety
/// Called once per configuration from postconfiguration.
pub unsafe fn install_core_filters() -> Status {
    NEXT_HEADER_FILTER = ngx_http_top_header_filter;
    ngx_http_top_header_filter = Some(header_filter);
    NEXT_BODY_FILTER = ngx_http_top_body_filter;
    ngx_http_top_body_filter = Some(body_filter);
    Status::NGX_OK
}

/// # Safety
/// Called once per configuration from postconfiguration.
pub unsafe fn install_top_filter() -> Status {
    TOP_NEXT_HEADER_FILTER = ngx_http_top_header_filter;
    ngx_http_top_header_filter = Some(top_header_filter);
    Status::NGX_OK
}

/// The main request's upstream, in a location where `docker_stream` is on.
fn docker_upstream(r: &Request) -> Option<NonNull<ngx_http_upstream_t>> {
    if !r.is_main() {
        return None;
    }
    let u = NonNull::new(r.upstream()?)?;
    let conf = DockerStreamModule::location_conf(r)?;
    conf.enabled().then_some(u)
}

fn is_stream_2xx(r: &Request) -> bool {
    let h = &r.as_ref().headers_out;
    (200..300).contains(&h.status) && stream_type(h.content_type.as_bytes()).is_some()
}

/// Whether the daemon's response carries `Api-Version`, as every Docker (and Podman)
/// API response does.
fn has_api_version(list: &ngx_list_t) -> bool {
    let mut part = &list.part;
    loop {
        let elts = part.elts as *const ngx_table_elt_t;
        for i in 0..part.nelts {
            // SAFETY: a list part holds `nelts` elements.
            let h = unsafe { &*elts.add(i) };
            if h.hash != 0 && h.key.as_bytes().eq_ignore_ascii_case(b"api-version") {
                return true;
            }
        }
        // SAFETY: `next` is null or the list's next part.
        match unsafe { part.next.as_ref() } {
            Some(next) => part = next,
            None => return false,
        }
    }
}

/// A long-poll (wait, logs -f, events) may be silent for hours, as on the direct socket:
/// the rest of the response is read under `docker_stream_timeout` (default: no limit)
/// instead of `proxy_read_timeout`. The proxy reads `u->conf` only through the pointer, so
/// a per-request copy with another `read_timeout` changes nothing else.
fn extend_read_timeout(r: &Request, u: &mut ngx_http_upstream_t) -> Result<(), ()> {
    let limit =
        DockerStreamModule::location_conf(r).map_or(MAX_MSEC as ngx_msec_t, |c| c.idle_timer());
    // SAFETY: the proxy's configuration of this request's upstream.
    if unsafe { (*u.conf).read_timeout } == limit {
        return Ok(());
    }
    let copy = r.pool().alloc(size_of::<ngx_http_upstream_conf_t>());
    let copy = copy.cast::<ngx_http_upstream_conf_t>();
    if copy.is_null() {
        return Err(());
    }
    // SAFETY: a plain C structure copied into room of its size.
    unsafe {
        ptr::copy_nonoverlapping(u.conf, copy, 1);
        (*copy).read_timeout = limit;
    }
    u.conf = copy;
    Ok(())
}

/// An ordinary response (no hijack) whose body ends when the daemon closes, read
/// without buffering.
fn ends_at_close(r: &Request, u: &ngx_http_upstream_t) -> bool {
    u.buffering() == 0
        && u.headers_in.content_length_n < 0
        && u.headers_in.chunked() == 0
        && r.as_ref().headers_out.status != NGX_HTTP_SWITCHING_PROTOCOLS as usize
        && !is_stream_2xx(r)
}

/// Top of the chain, for every protocol: stream the daemon's responses, and refuse a
/// hijack to HTTP/2 and HTTP/3 clients, which have no way to carry it.
unsafe extern "C" fn top_header_filter(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx passes a live request to header filters.
    let req = Request::from_ngx_http_request(r);
    let rc = guard::catch_status(req.log(), || stream_responses(req));
    if !rc.is_ok() {
        return rc.into();
    }
    match TOP_NEXT_HEADER_FILTER {
        Some(next) => next(r),
        None => Status::NGX_ERROR.into(),
    }
}

fn stream_responses(r: &mut Request) -> Status {
    let Some(mut u) = docker_upstream(r) else {
        return Status::NGX_OK;
    };
    // SAFETY: the main request's upstream, which nothing else refers to in this filter.
    let u = unsafe { u.as_mut() };
    if has_api_version(&u.headers_in.headers) {
        if u.buffering() != 0 && u.cacheable() == 0 {
            // wait, logs -f, events, stats: the head and each line must reach the client
            // as the daemon produces them; non-buffered proxying flushes the head.
            u.set_buffering(0);
        }
        if extend_read_timeout(r, u).is_err() {
            return Status::NGX_ERROR;
        }
        if ends_at_close(r, u) {
            reset::end_at_reset(u);
        }
    }
    let version = r.as_ref().http_version;
    if version >= NGX_HTTP_VERSION_20 as usize && is_stream_2xx(r) {
        let major = if version >= HTTP_VERSION_3 { 3 } else { 2 };
        stream_log!(
            NGX_LOG_ERR,
            r.log(),
            "the daemon hijacked the connection, which HTTP/{major} cannot carry; \
             the client must use HTTP/1.1"
        );
        return HTTPStatus::VERSION_NOT_SUPPORTED.into();
    }
    Status::NGX_OK
}

/// Right below the chunked filter: switches a raw-stream 2xx to a tunnel.
unsafe extern "C" fn header_filter(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx passes a live request to header filters.
    let req = Request::from_ngx_http_request(r);
    let rc = guard::catch_status(req.log(), || switch_to_tunnel(req));
    if !rc.is_ok() {
        return rc.into();
    }
    match NEXT_HEADER_FILTER {
        Some(next) => next(r),
        None => Status::NGX_ERROR.into(),
    }
}

fn switch_to_tunnel(r: &mut Request) -> Status {
    let Some(mut u) = docker_upstream(r) else {
        return Status::NGX_OK;
    };
    // SAFETY: as in `stream_responses`.
    let u = unsafe { u.as_mut() };

    if r.as_ref().headers_out.status == NGX_HTTP_SWITCHING_PROTOCOLS as usize {
        // The daemon answered 101 itself (Upgrade forwarded): nginx upgrades, we relay.
        return if u.upgrade() != 0 {
            tunnel::attach(r, Mode::Native)
        } else {
            Status::NGX_OK
        };
    }
    if !is_stream_2xx(r) || r.as_ref().http_version >= NGX_HTTP_VERSION_20 as usize {
        return Status::NGX_OK;
    }
    if u.headers_in.content_length_n >= 0 || u.headers_in.chunked() != 0 {
        // A framed body ends by itself: it is an ordinary response, not a hijack.
        stream_log!(
            NGX_LOG_INFO,
            r.log(),
            "raw-stream response with a framed body is passed as is"
        );
        return Status::NGX_OK;
    }

    // The chunked filter above has already chosen chunking for a 2xx without length.
    r.as_mut().set_chunked(0);
    let upgrade = !r.as_ref().headers_in.upgrade.is_null();
    if r.as_ref().http_version >= NGX_HTTP_VERSION_11 as usize && upgrade {
        // Clients since docker 25 require a 101; the header filter adds "Connection: upgrade".
        let h = &mut r.as_mut().headers_out;
        h.status = NGX_HTTP_SWITCHING_PROTOCOLS as usize;
        h.status_line = ngx::ngx_string!("101 UPGRADED");
        if r.add_header_out("Upgrade", "tcp").is_none() {
            return Status::NGX_ERROR;
        }
    } else {
        // Older clients read until close.
        r.as_mut().set_keepalive(0);
    }
    u.set_upgrade(1);
    u.set_keepalive(0);
    tunnel::attach(r, Mode::Switched)
}

/// Takes over the relay when `ngx_http_upstream_upgrade()` flushes the head.
unsafe extern "C" fn body_filter(r: *mut ngx_http_request_t, chain: *mut ngx_chain_t) -> ngx_int_t {
    let Some(next) = NEXT_BODY_FILTER else {
        return Status::NGX_ERROR.into();
    };
    let t = {
        // SAFETY: nginx passes a live request to body filters.
        let req = Request::from_ngx_http_request(r);
        if !req.is_main() {
            return next(r, chain);
        }
        tunnel::get(req).filter(|t| tunnel::wants_install(t))
    };
    let Some(t) = t else {
        return next(r, chain);
    };
    let rc = next(r, chain);
    if Status(rc) == Status::NGX_ERROR {
        return rc;
    }
    // SAFETY: as above; the handle is made after the call that used `r`.
    let req = Request::from_ngx_http_request(r);
    guard::catch_status(req.log(), || {
        tunnel::install(req, t);
        Status(rc)
    })
    .into()
}

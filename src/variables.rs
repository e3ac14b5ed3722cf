//! `$docker_stream`: "upgrade" when the module switched the response to a tunnel, "101"
//! when the daemon answered 101 itself, empty otherwise.
//!
//! `$docker_uri`: the request's normalized path, escaped as `proxy_pass` with a URI part
//! sends it to the daemon, and its query: what a daemon behind this location receives,
//! safe to put in a header (nginx's `$uri` is decoded: a `%0d%0a` in it would split the
//! header line). In a subrequest (`auth_request`), the main request's.
//!
//! `$docker_client_sha256`: the SHA-256 fingerprint of the client's certificate (64
//! lowercase hex digits, as `openssl x509 -noout -fingerprint -sha256` prints it without
//! colons), only once nginx verified it; empty otherwise. nginx's own
//! `$ssl_client_fingerprint` is SHA-1 and set for unverified certificates too
//! (`ssl_verify_client optional_no_ca`), so it is no key to route tenants by.

use core::ptr;

use nginx_sys::{
    ngx_conf_t, ngx_escape_uri, ngx_http_add_variable, ngx_http_request_t,
    ngx_http_variable_value_t, ngx_int_t, ngx_pnalloc, ngx_str_t, NGX_ERROR, NGX_ESCAPE_URI,
    NGX_HTTP_VAR_NOCACHEABLE, NGX_OK,
};
use ngx::ngx_string;

use crate::tunnel::{self, Mode};
use crate::{guard, tls};

/// # Safety
/// `cf` must be the configuration being parsed (preconfiguration).
pub unsafe fn register(cf: *mut ngx_conf_t) -> ngx_int_t {
    let vars: [(ngx_str_t, GetHandler); 3] = [
        (ngx_string!("docker_stream"), get_docker_stream),
        (ngx_string!("docker_uri"), get_docker_uri),
        (ngx_string!("docker_client_sha256"), get_client_sha256),
    ];
    for (mut name, handler) in vars {
        let v = ngx_http_add_variable(cf, &mut name, NGX_HTTP_VAR_NOCACHEABLE as _);
        if v.is_null() {
            return NGX_ERROR as ngx_int_t;
        }
        (*v).get_handler = Some(handler);
    }
    NGX_OK as ngx_int_t
}

type GetHandler = unsafe extern "C" fn(
    *mut ngx_http_request_t,
    *mut ngx_http_variable_value_t,
    usize,
) -> ngx_int_t;

/// A variable's value: bytes that live as long as the request; `Err` if they could not
/// be allocated.
type Value = Result<(*const u8, usize), ()>;

/// The body of every get handler: computes the value with panics contained and stores
/// it in `v`.
unsafe fn get(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    value: impl FnOnce(*mut ngx_http_request_t) -> Value,
) -> ngx_int_t {
    let log = (*(*r).connection).log;
    guard::catch_status(log, || {
        let Ok((data, len)) = value(r) else {
            return NGX_ERROR as ngx_int_t;
        };
        // SAFETY: nginx passes a value slot to fill.
        unsafe {
            (*v).set_len(len as u32);
            (*v).set_valid(1);
            (*v).set_no_cacheable(0);
            (*v).set_not_found(0);
            (*v).data = data.cast_mut();
        }
        NGX_OK as ngx_int_t
    })
}

/// `len` bytes from the request's pool, freed with it.
///
/// # Safety
/// `r` is a live request.
unsafe fn pool_bytes(r: *mut ngx_http_request_t, len: usize) -> Result<*mut u8, ()> {
    let p = ngx_pnalloc((*r).pool, len).cast::<u8>();
    if p.is_null() {
        Err(())
    } else {
        Ok(p)
    }
}

unsafe extern "C" fn get_docker_stream(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    get(r, v, |r| {
        // SAFETY: nginx passes a live request.
        let text: &'static [u8] = match unsafe { tunnel::get((*r).main) } {
            Some(t) if t.mode == Mode::Switched => b"upgrade",
            Some(_) => b"101",
            None => b"",
        };
        Ok((text.as_ptr(), text.len()))
    })
}

unsafe extern "C" fn get_client_sha256(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    get(r, v, |r| {
        // SAFETY: nginx passes a live request; the hex digits live in its pool.
        unsafe {
            let Some(digest) = tls::verified_client_sha256((*r).connection) else {
                return Ok((ptr::null(), 0));
            };
            let hex = pool_bytes(r, digest.len() * 2)?;
            let out = core::slice::from_raw_parts_mut(hex, digest.len() * 2);
            docker_stream_logic::hex::encode_lower(&digest, out);
            Ok((hex.cast_const(), out.len()))
        }
    })
}

unsafe extern "C" fn get_docker_uri(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    get(r, v, |r| {
        // SAFETY: nginx passes a live request; the value lives in its pool.
        unsafe {
            // The main request's: in an auth_request subrequest, the request it checks.
            let m = (*r).main;
            let (uri, args) = (&(*m).uri, &(*m).args);
            let escapes = ngx_escape_uri(ptr::null_mut(), uri.data, uri.len, NGX_ESCAPE_URI as _);
            let query = if args.len > 0 { 1 + args.len } else { 0 };
            let len = uri.len + 2 * escapes + query;
            let out = pool_bytes(r, len)?;
            if escapes == 0 {
                ptr::copy_nonoverlapping(uri.data, out, uri.len);
            } else {
                ngx_escape_uri(out, uri.data, uri.len, NGX_ESCAPE_URI as _);
            }
            if query > 0 {
                let at = out.add(uri.len + 2 * escapes);
                *at = b'?';
                ptr::copy_nonoverlapping(args.data, at.add(1), args.len);
            }
            Ok((out.cast_const(), len))
        }
    })
}

//! `$docker_stream`: "upgrade" when the module switched the response to a tunnel, "101"
//! when the daemon answered 101 itself, empty otherwise.
//!
//! `$docker_uri`: the request's normalized path, escaped as `proxy_pass` with a URI part
//! sends it to the daemon, and its query: what a daemon behind this location receives,
//! safe to put in a header (nginx's `$uri` is decoded: a `%0d%0a` in it would split the
//! header line). In a subrequest (`auth_request`), the main request's.
//!
//! `$docker_api_operation`, `$docker_api_group`: the request's Docker API operation (the
//! swagger operationId, e.g. `ContainerCreate`) and its group (`containers.create`), as
//! `docker_api_allow` sees them; empty for a path dockerd has no route for.
//! `$docker_api_object`: the container, image, exec, network... the path names, escaped
//! as in a URI (safe in a header or a log line); `$docker_api_version`: the API version
//! of a `/vX.Y` prefix. Of the main request, from its method and normalized path.
//!
//! `$docker_api_decision`, `$docker_api_rule`: `allow` or `deny` and the rule that
//! decided (`docker_api_allow read`, `deny containers.exec in docker_api_policy ci`,
//! `docker_api_guard privileged`), once `docker_api_allow`/`_deny`/`_rules`/`_guard`
//! checked the request; empty where nothing did.
//!
//! `$docker_client_sha256`: the SHA-256 fingerprint of the client's certificate (64
//! lowercase hex digits, as `openssl x509 -noout -fingerprint -sha256` prints it without
//! colons), only once nginx verified it; empty otherwise. nginx's own
//! `$ssl_client_fingerprint` is SHA-1 and set for unverified certificates too
//! (`ssl_verify_client optional_no_ca`), so it is no key to route tenants by.

use core::ptr;

use nginx_sys::{
    ngx_conf_t, ngx_escape_uri, ngx_http_add_variable, ngx_http_request_t,
    ngx_http_variable_value_t, ngx_int_t, ngx_str_t, NGX_ESCAPE_URI, NGX_HTTP_VAR_NOCACHEABLE,
};
use ngx::core::Status;
use ngx::http::Request;
use ngx::ngx_string;

use docker_stream_logic::operation::classify;

use crate::conn::Connection;
use crate::tunnel::{self, Mode};
use crate::{api_rules, guard, tls};

/// # Safety
/// `cf` must be the configuration being parsed (preconfiguration).
pub unsafe fn register(cf: *mut ngx_conf_t) -> Status {
    let vars: [(ngx_str_t, GetHandler, usize); 9] = [
        (ngx_string!("docker_stream"), get_docker_stream, 0),
        (ngx_string!("docker_uri"), get_docker_uri, 0),
        (ngx_string!("docker_client_sha256"), get_client_sha256, 0),
        (
            ngx_string!("docker_api_operation"),
            get_docker_api,
            API_OPERATION,
        ),
        (ngx_string!("docker_api_group"), get_docker_api, API_GROUP),
        (ngx_string!("docker_api_object"), get_docker_api, API_OBJECT),
        (
            ngx_string!("docker_api_version"),
            get_docker_api,
            API_VERSION,
        ),
        (
            ngx_string!("docker_api_decision"),
            get_verdict,
            VERDICT_DECISION,
        ),
        (ngx_string!("docker_api_rule"), get_verdict, VERDICT_RULE),
    ];
    for (mut name, handler, data) in vars {
        let Some(v) = ngx_http_add_variable(cf, &mut name, NGX_HTTP_VAR_NOCACHEABLE as _).as_mut()
        else {
            return Status::NGX_ERROR;
        };
        v.get_handler = Some(handler);
        v.data = data;
    }
    Status::NGX_OK
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
///
/// # Safety
/// `r` and `v` are what nginx passes to a variable's get handler.
unsafe fn get(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    value: impl FnOnce(&mut Request) -> Value,
) -> ngx_int_t {
    // SAFETY: the caller's contract.
    let (r, v) = (Request::from_ngx_http_request(r), &mut *v);
    guard::catch_status(r.log(), || {
        let Ok((data, len)) = value(r) else {
            return Status::NGX_ERROR;
        };
        v.set_len(len as u32);
        v.set_valid(1);
        v.set_no_cacheable(0);
        v.set_not_found(0);
        v.data = data.cast_mut();
        Status::NGX_OK
    })
    .into()
}

/// `len` bytes from the request's pool, freed with it.
fn pool_bytes(r: &Request, len: usize) -> Result<*mut u8, ()> {
    let p = r.pool().alloc_unaligned(len).cast::<u8>();
    if p.is_null() {
        Err(())
    } else {
        Ok(p)
    }
}

/// The main request of `r`, live while `r` is.
fn main_of(r: &Request) -> &Request {
    // SAFETY: every request's `main` is a live request that outlives it.
    unsafe { Request::from_ngx_http_request(r.as_ref().main) }
}

unsafe extern "C" fn get_docker_stream(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    get(r, v, |r| {
        let text: &'static [u8] = match tunnel::get(main_of(r)) {
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
        // SAFETY: a live request's client connection.
        let c = unsafe { Connection::from_ptr(r.connection()) };
        let Some(digest) = c.and_then(tls::verified_client_sha256) else {
            return Ok((ptr::null(), 0));
        };
        let hex = pool_bytes(r, digest.len() * 2)?;
        // SAFETY: the room just allocated, written whole by encode_lower.
        let out = unsafe { core::slice::from_raw_parts_mut(hex, digest.len() * 2) };
        docker_stream_logic::hex::encode_lower(&digest, out);
        Ok((hex.cast_const(), out.len()))
    })
}

const API_OPERATION: usize = 0;
const API_GROUP: usize = 1;
const API_OBJECT: usize = 2;
const API_VERSION: usize = 3;

unsafe extern "C" fn get_docker_api(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    data: usize,
) -> ngx_int_t {
    get(r, v, |r| {
        let m = main_of(r).as_ref();
        let c = classify(m.method_name.as_bytes(), m.uri.as_bytes());
        let text: &[u8] = match data {
            API_OPERATION => c.operation.map_or(b"", |op| op.name.as_bytes()),
            API_GROUP => c.operation.map_or(b"", |op| op.group.as_bytes()),
            API_VERSION => c.version.map_or(b"", str::as_bytes),
            _ => return escaped(r, c.object.unwrap_or(b""), &[]),
        };
        // Static names, or a slice of the main request's uri, which outlives r.
        Ok((text.as_ptr(), text.len()))
    })
}

const VERDICT_DECISION: usize = 0;
const VERDICT_RULE: usize = 1;

unsafe extern "C" fn get_verdict(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    data: usize,
) -> ngx_int_t {
    get(r, v, |r| {
        // The rule text is in the main request's pool, which outlives r.
        let (ptr, len) = match api_rules::recorded(r) {
            None => (b"".as_ptr(), 0),
            Some((true, _)) if data == VERDICT_DECISION => (b"allow".as_ptr(), 5),
            Some((false, _)) if data == VERDICT_DECISION => (b"deny".as_ptr(), 4),
            Some((_, rule)) => (rule.data.cast_const(), rule.len),
        };
        Ok((ptr, len))
    })
}

/// `path` escaped as `proxy_pass` escapes a URI, then `?query` when there is one, in the
/// request's pool.
fn escaped(r: &Request, path: &[u8], query: &[u8]) -> Value {
    // SAFETY: with no destination, ngx_escape_uri only counts what needs escaping.
    let escapes = unsafe {
        ngx_escape_uri(
            ptr::null_mut(),
            path.as_ptr().cast_mut(),
            path.len(),
            NGX_ESCAPE_URI as _,
        )
    };
    let extra = if query.is_empty() { 0 } else { 1 + query.len() };
    let len = path.len() + 2 * escapes + extra;
    let out = pool_bytes(r, len.max(1))?;
    // SAFETY: `out` has room for the escaped path and the query.
    unsafe {
        write_escaped(out, path, escapes, query);
    }
    Ok((out.cast_const(), len))
}

/// # Safety
/// `out` has room for `path` with `escapes` characters escaped, then `?` and `query`.
unsafe fn write_escaped(out: *mut u8, path: &[u8], escapes: usize, query: &[u8]) {
    if escapes == 0 {
        ptr::copy_nonoverlapping(path.as_ptr(), out, path.len());
    } else {
        ngx_escape_uri(
            out,
            path.as_ptr().cast_mut(),
            path.len(),
            NGX_ESCAPE_URI as _,
        );
    }
    if !query.is_empty() {
        let at = out.add(path.len() + 2 * escapes);
        *at = b'?';
        ptr::copy_nonoverlapping(query.as_ptr(), at.add(1), query.len());
    }
}

unsafe extern "C" fn get_docker_uri(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    get(r, v, |r| {
        // The main request's: in an auth_request subrequest, the request it checks.
        let m = main_of(r).as_ref();
        escaped(r, m.uri.as_bytes(), m.args.as_bytes())
    })
}

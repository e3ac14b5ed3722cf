//! An empty `Host:` on a unix socket. Go clients built on the moby client before Docker
//! 23 (docker CLI 20.10 and the tools that vendor it) send `Host: ` with nothing after
//! it on their hijack requests (attach, exec start, `run -i`) over a unix socket, where
//! every other request says `Host: docker`. nginx refuses an empty Host with `400`
//! while it reads the headers, before any module phase, so those clients could attach
//! through an nginx on TCP but not on `listen unix:`. On connections to a unix socket,
//! this module gives such a request the name newer clients send there
//! (`api.moby.localhost`); everything else, and every other connection, keeps nginx's
//! own handling.
//!
//! nginx looks request headers up in a hash of its configuration cycle; this replaces
//! the `Host` entry of that hash (not nginx's static header table) with one whose handler
//! wraps nginx's, so a reload that drops the module leaves nothing of it behind.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use nginx_sys::{
    ngx_conf_t, ngx_hash_elt_t, ngx_hash_key, ngx_http_header_t, ngx_http_request_t, ngx_int_t,
    ngx_palloc, ngx_table_elt_t, ngx_uint_t,
};
use ngx::core::Status;
use ngx::http::{HttpModuleMainConf, NgxHttpCoreModule, Request};

use crate::conn::Connection;

/// nginx's own `Host` handler (`ngx_http_process_host`), the same in every cycle.
static NGINX_HOST_HANDLER: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

const NAME: &[u8] = b"api.moby.localhost";

/// # Safety
/// `cf` is the configuration being parsed (postconfiguration: the headers hash is built).
pub unsafe fn install(cf: *mut ngx_conf_t) -> Status {
    let Some(cmcf) = NgxHttpCoreModule::main_conf_mut(&*cf) else {
        return Status::NGX_ERROR;
    };
    let hash = &cmcf.headers_in_hash;
    if hash.size == 0 || hash.buckets.is_null() {
        return Status::NGX_OK;
    }
    let mut key = *b"host";
    let k = ngx_hash_key(key.as_mut_ptr(), key.len());
    // As ngx_hash_find walks a bucket: elements until a null value, each padded to
    // pointer alignment after its name.
    let mut elt = *hash.buckets.add(k % hash.size);
    if elt.is_null() {
        return Status::NGX_OK;
    }
    while !(*elt).value.is_null() {
        let len = usize::from((*elt).len);
        let name = core::slice::from_raw_parts(ptr::addr_of!((*elt).name).cast::<u8>(), len);
        if name == b"host" {
            let ours = replace(cf, (*elt).value.cast());
            if ours.is_null() {
                return Status::NGX_ERROR;
            }
            (*elt).value = ours.cast();
            return Status::NGX_OK;
        }
        let next = ptr::addr_of!((*elt).name).cast::<u8>().add(len) as usize;
        let align = core::mem::size_of::<*mut c_void>();
        elt = ((next + align - 1) & !(align - 1)) as *mut ngx_hash_elt_t;
    }
    Status::NGX_OK
}

/// A copy of nginx's `Host` entry with our handler, in the configuration's pool.
unsafe fn replace(cf: *mut ngx_conf_t, theirs: *mut ngx_http_header_t) -> *mut ngx_http_header_t {
    let Some(handler) = (*theirs).handler else {
        return theirs;
    };
    if handler as usize == process_host as *const () as usize {
        return theirs;
    }
    NGINX_HOST_HANDLER.store(handler as *mut c_void, Ordering::Relaxed);
    let ours = ngx_palloc((*cf).pool, core::mem::size_of::<ngx_http_header_t>())
        .cast::<ngx_http_header_t>();
    if ours.is_null() {
        return ours;
    }
    ours.write(ngx_http_header_t {
        name: (*theirs).name,
        offset: (*theirs).offset,
        handler: Some(process_host),
    });
    ours
}

unsafe extern "C" fn process_host(
    r: *mut ngx_http_request_t,
    h: *mut ngx_table_elt_t,
    offset: ngx_uint_t,
) -> ngx_int_t {
    // Nothing here can panic: plain reads of what nginx passed (the live request and the
    // header line it parsed).
    {
        // The handle ends before nginx's handler gets `r`.
        let req = Request::from_ngx_http_request(r);
        if Connection::from_ptr(req.connection()).is_some_and(Connection::is_unix)
            && (*h).value.len == 0
        {
            let data = req.pool().alloc_unaligned(NAME.len()).cast::<u8>();
            if data.is_null() {
                return Status::NGX_ERROR.into();
            }
            ptr::copy_nonoverlapping(NAME.as_ptr(), data, NAME.len());
            (*h).value.len = NAME.len();
            (*h).value.data = data;
        }
    }
    let handler = NGINX_HOST_HANDLER.load(Ordering::Relaxed);
    if handler.is_null() {
        return Status::NGX_ERROR.into();
    }
    // SAFETY: stored from the hash entry's handler, of this type, by replace().
    let handler: unsafe extern "C" fn(
        *mut ngx_http_request_t,
        *mut ngx_table_elt_t,
        ngx_uint_t,
    ) -> ngx_int_t = core::mem::transmute(handler);
    handler(r, h, offset)
}

//! Whether a level set `client_max_body_size` itself, for the body-size lift (see
//! `conf::merge_loc_conf`): only nginx's default 1 MiB is lifted, never a value the
//! configuration wrote, `client_max_body_size 1m` included. nginx's merge leaves no trace
//! of that, so while the http block is parsed the core module's directive goes through
//! [`set_noting`], which calls nginx's own handler and notes the level in this module's
//! configuration of the same level.
//!
//! The core module's command table is nginx's static data: it is patched in
//! preconfiguration and restored in postconfiguration, and by a cleanup of the cycle's
//! pool when the configuration fails in between, so no pointer into this module outlives
//! the parse of the configuration that loads it.

use core::ffi::{c_char, c_void};
use core::ptr;

use nginx_sys::{ngx_command_t, ngx_conf_t, ngx_http_core_module, ngx_pool_cleanup_add};
use ngx::core::{Status, NGX_CONF_OK};
use ngx::http::HttpModuleLocationConf;

use crate::DockerStreamModule;

type SetFn = unsafe extern "C" fn(*mut ngx_conf_t, *mut ngx_command_t, *mut c_void) -> *mut c_char;

/// nginx's own handler while ours is in the table. Only the master process, parsing
/// the configuration on one thread, reads or writes it.
static mut NGINX_SET: Option<SetFn> = None;

/// The core module's `client_max_body_size` command.
///
/// # Safety
/// The core module's command table is nginx's, terminated by an empty name.
unsafe fn command() -> *mut ngx_command_t {
    let mut cmd = (*ptr::addr_of!(ngx_http_core_module)).commands;
    while !cmd.is_null() && (*cmd).name.len != 0 {
        if (*cmd).name.as_bytes() == b"client_max_body_size" {
            return cmd;
        }
        cmd = cmd.add(1);
    }
    ptr::null_mut()
}

/// Puts [`set_noting`] in the core module's table for the parse of this http block.
///
/// # Safety
/// `cf` is the configuration being parsed (preconfiguration of the http block).
pub unsafe fn wrap(cf: *mut ngx_conf_t) -> Status {
    let cmd = command();
    if cmd.is_null() || (*ptr::addr_of!(NGINX_SET)).is_some() {
        // No such directive (nothing to note), or already wrapped.
        return Status::NGX_OK;
    }
    let Some(cln) = ngx_pool_cleanup_add((*cf).pool, 0).as_mut() else {
        return Status::NGX_ERROR;
    };
    cln.handler = Some(restore_on_cleanup);
    NGINX_SET = (*cmd).set;
    (*cmd).set = Some(set_noting);
    Status::NGX_OK
}

/// Gives the core module its own handler back.
///
/// # Safety
/// Called while no directive is being handled (postconfiguration, a pool cleanup).
pub unsafe fn restore() {
    let Some(set) = (*ptr::addr_of_mut!(NGINX_SET)).take() else {
        return;
    };
    let cmd = command();
    if !cmd.is_null() {
        (*cmd).set = Some(set);
    }
}

unsafe extern "C" fn restore_on_cleanup(_data: *mut c_void) {
    // SAFETY: the cycle's pool goes after its configuration was parsed.
    restore();
}

/// Whether this module is one of the modules of the cycle `cf` configures (its
/// configuration slot then exists at every level).
///
/// # Safety
/// `cf` is a configuration being parsed.
unsafe fn loaded_in(cf: *mut ngx_conf_t) -> bool {
    let cycle = (*cf).cycle;
    let ours = ptr::addr_of!(crate::ngx_http_docker_stream_module).cast_mut();
    let mut m = (*cycle).modules;
    for _ in 0..(*cycle).modules_n {
        if *m == ours {
            return true;
        }
        m = m.add(1);
    }
    false
}

/// nginx's handler, then a note in this module's configuration of the level being
/// parsed that it set the value.
unsafe extern "C" fn set_noting(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    crate::guard::catch_conf(cf, || {
        // SAFETY: installed by wrap only with nginx's handler saved; nginx calls it as
        // that handler, for an http-level directive: cf->ctx is the level's http
        // context, whose loc_conf array holds every http module's configuration of it.
        unsafe {
            let Some(set) = *ptr::addr_of!(NGINX_SET) else {
                return NGX_CONF_OK;
            };
            let rv = set(cf, cmd, conf);
            if rv == NGX_CONF_OK && loaded_in(cf) {
                if let Some(ours) = DockerStreamModule::location_conf_mut(&*cf) {
                    ours.body_size_set = true;
                }
            }
            rv
        }
    })
}

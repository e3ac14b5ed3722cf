//! Keeps Rust panics from unwinding into nginx: every `extern "C"` entry point runs its body
//! through one of these, which log the panic and return an error value instead.

use core::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use nginx_sys::{ngx_conf_t, ngx_log_t, NGX_LOG_ALERT, NGX_LOG_EMERG};
use ngx::core::{Status, NGX_CONF_ERROR};
use ngx::ngx_conf_log_error;

fn message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic")
}

/// For directive handlers: a panic fails the configuration.
pub fn catch_conf(cf: *mut ngx_conf_t, f: impl FnOnce() -> *mut c_char) -> *mut c_char {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(p) => {
            ngx_conf_log_error!(
                NGX_LOG_EMERG,
                cf,
                "docker_stream: internal error: {}",
                message(&*p)
            );
            NGX_CONF_ERROR
        }
    }
}

/// For handlers returning a status: a panic becomes NGX_ERROR.
pub fn catch_status(log: *mut ngx_log_t, f: impl FnOnce() -> Status) -> Status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(p) => {
            stream_log!(NGX_LOG_ALERT, log, "internal error: {}", message(&*p));
            Status::NGX_ERROR
        }
    }
}

/// For event handlers: a panic is logged and `on_panic` runs (it must not panic itself).
pub fn catch_event(log: *mut ngx_log_t, f: impl FnOnce(), on_panic: impl FnOnce()) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        stream_log!(NGX_LOG_ALERT, log, "internal error: {}", message(&*p));
        on_panic();
    }
}

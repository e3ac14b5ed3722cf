//! Directives: `docker_stream on|off`, `docker_stream_timeout <time>|off`,
//! `docker_stream_splice auto|on|off`; the table of every directive, those of the Docker
//! API rules included (their handlers are in `api_conf`).

use core::ffi::{c_char, c_void};
use core::ptr;

use nginx_sys::{
    ngx_command_t, ngx_conf_set_flag_slot, ngx_conf_t, ngx_flag_t, ngx_http_complex_value_t,
    ngx_http_set_complex_value_slot, ngx_msec_t, ngx_str_t, ngx_uint_t, off_t, NGX_CONF_1MORE,
    NGX_CONF_BLOCK, NGX_CONF_FLAG, NGX_CONF_NOARGS, NGX_CONF_TAKE1, NGX_HTTP_LOC_CONF,
    NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET, NGX_HTTP_SRV_CONF,
    NGX_LOG_EMERG,
};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::http::{HttpModuleLocationConf, Merge, MergeConfigError, NgxHttpCoreModule};
use ngx::{ngx_conf_log_error, ngx_string};

use docker_stream_logic::duration::{parse_timeout, MAX_MSEC};
use docker_stream_logic::splice_mode::SpliceMode;

use docker_stream_logic::guards::Guards;

use crate::api_conf::{self, Access};

const UNSET_FLAG: ngx_flag_t = -1;
const UNSET_MSEC: ngx_msec_t = ngx_msec_t::MAX;
/// Stored for `docker_stream_timeout off`.
pub const TIMEOUT_OFF: ngx_msec_t = 0;

#[derive(Debug)]
#[repr(C)]
pub struct LocConf {
    /// `docker_stream`; an `ngx_flag_t` so that nginx's own flag slot parses it.
    pub enable: ngx_flag_t,
    /// Idle limit of a tunnel or long-poll in ms; `TIMEOUT_OFF` for none.
    pub timeout: ngx_msec_t,
    /// `docker_stream_splice`; `None` while unset.
    pub splice: Option<SpliceMode>,
    /// `docker_api_allow` / `docker_api_deny` lines or `docker_api_rules`; `None` when
    /// the level has none (it then inherits the enclosing level's, as nginx's
    /// `allow`/`deny` do).
    pub access: Option<Access>,
    /// `docker_api_guard*`; `guards_set` says which of its three parts this level set.
    pub guards: Guards,
    pub guards_set: [bool; 3],
    /// `docker_api_guard_body_size`; `None` while unset.
    pub body_limit: Option<usize>,
    /// `docker_api_refusal_hint`, compiled by nginx's complex value slot; null while unset.
    pub refusal_hint: *mut ngx_http_complex_value_t,
    /// `client_max_body_size` is set at this level or an enclosing one (`body_size`).
    pub body_size_set: bool,
    /// The location proxies: it has a content handler, or it is an `if` or
    /// `limit_except` block of one that does (known after the merge).
    pub proxies: bool,
}

impl Default for LocConf {
    fn default() -> Self {
        Self {
            enable: UNSET_FLAG,
            timeout: UNSET_MSEC,
            splice: None,
            access: None,
            guards: Guards::default(),
            guards_set: [false; 3],
            body_limit: None,
            refusal_hint: ptr::null_mut(),
            body_size_set: false,
            proxies: false,
        }
    }
}

impl LocConf {
    pub fn enabled(&self) -> bool {
        self.enable == 1
    }

    pub fn splice_mode(&self) -> SpliceMode {
        self.splice.unwrap_or(SpliceMode::Auto)
    }

    pub fn idle_timeout(&self) -> Option<ngx_msec_t> {
        (self.timeout != TIMEOUT_OFF).then_some(self.timeout)
    }

    /// The timer of a tunnel or a long-poll: the idle limit, or without one the longest
    /// timer nginx takes (about 24 days, re-armed on traffic), so that a worker shutting
    /// down gracefully still waits for the stream.
    pub fn idle_timer(&self) -> ngx_msec_t {
        self.idle_timeout().unwrap_or(MAX_MSEC as ngx_msec_t)
    }
}

impl Merge for LocConf {
    fn merge(&mut self, prev: &Self) -> Result<(), MergeConfigError> {
        if self.enable == UNSET_FLAG {
            self.enable = if prev.enable == UNSET_FLAG {
                1
            } else {
                prev.enable
            };
        }
        if self.splice.is_none() {
            self.splice = Some(prev.splice_mode());
        }
        if self.access.is_none() {
            self.access.clone_from(&prev.access);
        }
        self.guards.inherit(&prev.guards, self.guards_set);
        if self.body_limit.is_none() {
            self.body_limit = Some(prev.body_limit.unwrap_or(DEFAULT_GUARD_BODY_LIMIT));
        }
        if self.refusal_hint.is_null() {
            self.refusal_hint = prev.refusal_hint;
        }
        self.body_size_set |= prev.body_size_set;
        if self.timeout == UNSET_MSEC {
            self.timeout = if prev.timeout == UNSET_MSEC {
                TIMEOUT_OFF
            } else {
                prev.timeout
            };
        }
        Ok(())
    }
}

/// `docker_api_guard_body_size` by default.
pub const DEFAULT_GUARD_BODY_LIMIT: usize = 1024 * 1024;

/// nginx's default `client_max_body_size`.
const NGINX_DEFAULT_BODY_LIMIT: off_t = 1024 * 1024;

/// Merges as usual, then lifts nginx's default 1 MiB request body limit in locations
/// that proxy (have a content handler, `proxy_pass`, or are an `if` or `limit_except`
/// block of one) with `docker_stream` on: `docker
/// cp`, `build` and `load` send archives of any size, and the daemon sets no limit. A
/// `client_max_body_size` the configuration sets, here or at an enclosing level, is kept
/// (`body_size`), and so is the default in locations that serve files.
///
/// # Safety
/// Called by nginx with the parent's and this location's `LocConf`, while `cf->ctx`
/// holds the location being merged (`ngx_http_merge_locations`).
pub unsafe fn merge_loc_conf(
    cf: *mut ngx_conf_t,
    prev: *mut c_void,
    conf: *mut c_void,
) -> *mut c_char {
    crate::guard::catch_conf(cf, || {
        // SAFETY: see the function's contract; the core module merged before us.
        unsafe {
            let prev = &*prev.cast::<LocConf>();
            let conf = &mut *conf.cast::<LocConf>();
            if conf.merge(prev).is_err() {
                return NGX_CONF_ERROR;
            }
            let Some(clcf) = NgxHttpCoreModule::location_conf_mut(&*cf) else {
                return NGX_CONF_OK;
            };
            conf.proxies = clcf.handler.is_some() || (clcf.noname() != 0 && prev.proxies);
            if conf.enabled()
                && conf.proxies
                && !conf.body_size_set
                && clcf.client_max_body_size == NGINX_DEFAULT_BODY_LIMIT
            {
                clcf.client_max_body_size = 0;
            }
            NGX_CONF_OK
        }
    })
}

/// What nginx's own directive handlers return for a directive given twice; nginx prints
/// `"<name>" directive is duplicate`.
pub const IS_DUPLICATE: *mut c_char = c"is duplicate".as_ptr().cast_mut();

const CONTEXT: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF;

pub static mut NGX_HTTP_DOCKER_STREAM_COMMANDS: [ngx_command_t; 14] = [
    ngx_command_t {
        name: ngx_string!("docker_stream"),
        type_: (CONTEXT | NGX_CONF_FLAG) as ngx_uint_t,
        set: Some(ngx_conf_set_flag_slot),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: core::mem::offset_of!(LocConf, enable),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("docker_stream_timeout"),
        type_: (CONTEXT | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(set_timeout),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("docker_stream_splice"),
        type_: (CONTEXT | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(set_splice),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("docker_api_allow"),
        type_: (CONTEXT | NGX_CONF_1MORE) as ngx_uint_t,
        set: Some(api_conf::set_allow),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("docker_api_deny"),
        type_: (CONTEXT | NGX_CONF_1MORE) as ngx_uint_t,
        set: Some(api_conf::set_deny),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("docker_api_rules"),
        type_: (CONTEXT | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(api_conf::set_rules),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("docker_api_policy"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_CONF_BLOCK | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(api_conf::set_policy),
        conf: NGX_HTTP_MAIN_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("docker_api_guard"),
        type_: (CONTEXT | NGX_CONF_1MORE) as ngx_uint_t,
        set: Some(api_conf::set_guard),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("docker_api_guard_capabilities"),
        type_: (CONTEXT | NGX_CONF_1MORE) as ngx_uint_t,
        set: Some(api_conf::set_guard),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("docker_api_guard_bind_mounts"),
        type_: (CONTEXT | NGX_CONF_1MORE) as ngx_uint_t,
        set: Some(api_conf::set_guard),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("docker_api_guard_body_size"),
        type_: (CONTEXT | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(api_conf::set_body_size),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("docker_api_refusal_hint"),
        type_: (CONTEXT | NGX_CONF_TAKE1) as ngx_uint_t,
        set: Some(ngx_http_set_complex_value_slot),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: core::mem::offset_of!(LocConf, refusal_hint),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("docker_api_metrics"),
        type_: (NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS) as ngx_uint_t,
        set: Some(crate::metrics::set_metrics),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t::empty(),
];

/// A directive handler's `LocConf` and its one value.
///
/// # Safety
/// nginx calls a directive handler with its loc conf (created by create_loc_conf as a
/// `LocConf`) and, for a TAKE1 directive, cf->args holding the directive and one value.
unsafe fn conf_and_value<'a>(
    cf: *mut ngx_conf_t,
    conf: *mut c_void,
) -> (&'a mut LocConf, ngx_str_t) {
    let args = (*(*cf).args).as_slice::<ngx_str_t>();
    (&mut *conf.cast::<LocConf>(), args[1])
}

extern "C" fn set_timeout(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    crate::guard::catch_conf(cf, || {
        // SAFETY: called by nginx as a TAKE1 directive handler of this module.
        let (conf, value) = unsafe { conf_and_value(cf, conf) };
        if conf.timeout != UNSET_MSEC {
            return IS_DUPLICATE;
        }
        let text = String::from_utf8_lossy(value.as_bytes());
        match parse_timeout(&text) {
            Ok(None) => conf.timeout = TIMEOUT_OFF,
            // In other nginx timeouts 0 means "expire at once"; refuse the ambiguity.
            Ok(Some(0)) => {
                ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "\"docker_stream_timeout\" must be positive or \"off\""
                );
                return NGX_CONF_ERROR;
            }
            Ok(Some(ms)) => conf.timeout = ms as ngx_msec_t,
            Err(e) => {
                ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "\"docker_stream_timeout\": {e}, use a time like \"1h\" or \"off\""
                );
                return NGX_CONF_ERROR;
            }
        }
        NGX_CONF_OK
    })
}

extern "C" fn set_splice(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    crate::guard::catch_conf(cf, || {
        // SAFETY: called by nginx as a TAKE1 directive handler of this module.
        let (conf, value) = unsafe { conf_and_value(cf, conf) };
        if conf.splice.is_some() {
            return IS_DUPLICATE;
        }
        match SpliceMode::parse(value.as_bytes()) {
            Some(mode) => conf.splice = Some(mode),
            None => {
                ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "invalid value \"{}\" in \"docker_stream_splice\", use \"auto\", \"on\" or \"off\"",
                    String::from_utf8_lossy(value.as_bytes())
                );
                return NGX_CONF_ERROR;
            }
        }
        NGX_CONF_OK
    })
}

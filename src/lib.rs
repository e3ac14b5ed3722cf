//! ngx_http_docker_stream_module: makes `proxy_pass` carry the Docker Engine API's hijacked
//! connections (attach, exec, run), half-closes included, and streams its long-polls.
//!
//! This file holds registration only. The shared object exports two nginx modules:
//! - `ngx_http_docker_stream_module`: directives, `$docker_stream`, and the header/body
//!   filters that switch a response to a tunnel. It is ordered before the chunked filter
//!   so its header filter runs after it and can undo chunking.
//! - `ngx_http_docker_stream_top_filter_module`: a header filter at the top of the chain
//!   (above the HTTP/2 filter, which never calls lower header filters) for what must be
//!   decided for every protocol: streaming of the daemon's responses and refusing
//!   hijacks to HTTP/2 and HTTP/3 clients.

use core::ffi::{c_char, c_void};
use core::ptr;

use nginx_sys::{ngx_conf_t, ngx_int_t, ngx_module_t, ngx_uint_t, NGX_HTTP_MODULE};
use ngx::core::Status;
use ngx::http::{HttpModule, HttpModuleLocationConf, HttpModuleMainConf};

#[macro_use]
mod log;

mod api_conf;
mod api_rules;
mod body_limit;
mod body_size;
mod conf;
mod conn;
mod direction;
mod expect;
mod filter;
mod guard;
mod marks;
mod metrics;
mod phase;
mod reset;
mod splice;
mod tls;
mod tunnel;
mod unix_host;
mod variables;

use conf::{LocConf, NGX_HTTP_DOCKER_STREAM_COMMANDS};

pub struct DockerStreamModule;

impl HttpModule for DockerStreamModule {
    fn module() -> &'static ngx_module_t {
        // SAFETY: the static is only written by nginx while loading the configuration.
        unsafe { &*ptr::addr_of!(ngx_http_docker_stream_module) }
    }

    unsafe extern "C" fn preconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
        if !body_size::wrap(cf).is_ok() {
            return Status::NGX_ERROR.into();
        }
        variables::register(cf).into()
    }

    unsafe extern "C" fn postconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
        // The http block is parsed: client_max_body_size is nginx's alone again.
        body_size::restore();
        // The rules' check must run before expect's release of a held 100 Continue, and
        // handlers pushed later run earlier.
        let steps = [
            expect::register(cf),
            api_rules::register(cf),
            metrics::register(cf),
            body_limit::install(),
            unix_host::install(cf),
            filter::install_core_filters(),
        ];
        if steps.iter().all(Status::is_ok) {
            Status::NGX_OK.into()
        } else {
            Status::NGX_ERROR.into()
        }
    }

    unsafe extern "C" fn merge_loc_conf(
        cf: *mut ngx_conf_t,
        prev: *mut c_void,
        conf: *mut c_void,
    ) -> *mut c_char {
        conf::merge_loc_conf(cf, prev, conf)
    }
}

// SAFETY: MainConf is created by create_main_conf for this module's main_conf slot.
unsafe impl HttpModuleMainConf for DockerStreamModule {
    type MainConf = api_conf::MainConf;
}

// SAFETY: LocConf is created by create_loc_conf for this module's loc_conf slot.
unsafe impl HttpModuleLocationConf for DockerStreamModule {
    type LocationConf = LocConf;
}

struct TopFilterModule;

impl HttpModule for TopFilterModule {
    fn module() -> &'static ngx_module_t {
        // SAFETY: as above.
        unsafe { &*ptr::addr_of!(ngx_http_docker_stream_top_filter_module) }
    }

    unsafe extern "C" fn postconfiguration(_cf: *mut ngx_conf_t) -> ngx_int_t {
        filter::install_top_filter().into()
    }
}

static NGX_HTTP_DOCKER_STREAM_MODULE_CTX: nginx_sys::ngx_http_module_t =
    nginx_sys::ngx_http_module_t {
        preconfiguration: Some(DockerStreamModule::preconfiguration),
        postconfiguration: Some(DockerStreamModule::postconfiguration),
        create_main_conf: Some(DockerStreamModule::create_main_conf),
        init_main_conf: Some(api_conf::init_main_conf),
        create_srv_conf: None,
        merge_srv_conf: None,
        create_loc_conf: Some(DockerStreamModule::create_loc_conf),
        merge_loc_conf: Some(DockerStreamModule::merge_loc_conf),
    };

static NGX_HTTP_DOCKER_STREAM_TOP_FILTER_MODULE_CTX: nginx_sys::ngx_http_module_t =
    nginx_sys::ngx_http_module_t {
        preconfiguration: None,
        postconfiguration: Some(TopFilterModule::postconfiguration),
        create_main_conf: None,
        init_main_conf: None,
        create_srv_conf: None,
        merge_srv_conf: None,
        create_loc_conf: None,
        merge_loc_conf: None,
    };

#[used]
#[allow(non_upper_case_globals)]
#[cfg_attr(not(feature = "export-modules"), no_mangle)]
pub static mut ngx_http_docker_stream_module: ngx_module_t = ngx_module_t {
    ctx: ptr::addr_of!(NGX_HTTP_DOCKER_STREAM_MODULE_CTX)
        .cast_mut()
        .cast(),
    // SAFETY: the command table lives for the program's lifetime.
    commands: unsafe { ptr::addr_of_mut!(NGX_HTTP_DOCKER_STREAM_COMMANDS[0]) },
    type_: NGX_HTTP_MODULE as ngx_uint_t,
    init_process: Some(metrics::init_process),
    ..ngx_module_t::default()
};

#[used]
#[allow(non_upper_case_globals)]
#[cfg_attr(not(feature = "export-modules"), no_mangle)]
pub static mut ngx_http_docker_stream_top_filter_module: ngx_module_t = ngx_module_t {
    ctx: ptr::addr_of!(NGX_HTTP_DOCKER_STREAM_TOP_FILTER_MODULE_CTX)
        .cast_mut()
        .cast(),
    commands: ptr::null_mut(),
    type_: NGX_HTTP_MODULE as ngx_uint_t,
    ..ngx_module_t::default()
};

/// The tables `load_module` reads. Written by hand rather than with `ngx::ngx_modules!`
/// because that macro exports an empty `ngx_module_order`, and the core module must be
/// placed before the chunked filter (see the module docs above).
#[cfg(feature = "export-modules")]
mod exports {
    use super::*;

    #[no_mangle]
    #[allow(non_upper_case_globals)]
    pub static mut ngx_modules: [*const ngx_module_t; 3] = [
        ptr::addr_of!(ngx_http_docker_stream_module),
        ptr::addr_of!(ngx_http_docker_stream_top_filter_module),
        ptr::null(),
    ];

    #[no_mangle]
    #[allow(non_upper_case_globals)]
    pub static mut ngx_module_names: [*const c_char; 3] = [
        c"ngx_http_docker_stream_module".as_ptr(),
        c"ngx_http_docker_stream_top_filter_module".as_ptr(),
        ptr::null(),
    ];

    /// `ngx_add_module()` puts the first name before the modules named after it; the top
    /// filter module is not listed, so it is appended last, i.e. at the top of the chain.
    #[no_mangle]
    #[allow(non_upper_case_globals)]
    pub static mut ngx_module_order: [*const c_char; 3] = [
        c"ngx_http_docker_stream_module".as_ptr(),
        c"ngx_http_chunked_filter_module".as_ptr(),
        ptr::null(),
    ];
}

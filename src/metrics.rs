//! `docker_api_metrics`: counters in a shared memory zone, kept by every worker and
//! shown in Prometheus' text format by a location's handler, in the spirit of
//! `stub_status`. The zone exists once some location has `docker_api_metrics`; then
//! every request of the `http {}` block is counted (in the log phase, by operation and
//! decision), and every tunnel (opened, open, bytes, how it ended). Counters survive a
//! reload (nginx keeps a zone of the same name and size), not a restart.

use core::ffi::{c_char, c_void};
use core::fmt::Write as _;
use core::ptr;
use core::sync::atomic::{AtomicI64, AtomicPtr, AtomicU64, Ordering};

use nginx_sys::{
    ngx_chain_t, ngx_command_t, ngx_conf_t, ngx_cycle_t, ngx_http_phases_NGX_HTTP_LOG_PHASE,
    ngx_http_request_t, ngx_int_t, ngx_shared_memory_add, ngx_shm_zone_t, ngx_slab_calloc,
    ngx_slab_pool_t, ngx_str_t, NGX_HTTP_GET, NGX_HTTP_HEAD, NGX_LOG_EMERG,
};
use ngx::core::{Buffer, Status, NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::http::{
    HTTPStatus, HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule, Request,
};
use ngx::{ngx_conf_log_error, ngx_string};

use docker_stream_logic::operation::{classify, Operation, OPERATIONS};

use crate::{api_rules, guard, phase, DockerStreamModule};

/// Row of `requests` for a path with no operation.
const UNKNOWN: usize = OPERATIONS.len();
/// Columns of `requests`: nothing checked the request, allowed, denied.
const DECISIONS: [&str; 3] = ["none", "allow", "deny"];
/// Tunnel ends, as `tunnel::End` names them.
pub const ENDS: [&str; 5] = ["done", "idle", "client_failed", "error", "internal"];

/// The zone's contents. Atomics, so that workers update them without a lock.
#[repr(C)]
struct Counters {
    requests: [[AtomicU64; 3]; UNKNOWN + 1],
    tunnels_open: AtomicI64,
    tunnels_total: AtomicU64,
    tunnel_bytes_to_client: AtomicU64,
    tunnel_bytes_to_daemon: AtomicU64,
    tunnel_ends: [AtomicU64; ENDS.len()],
}

const ZONE_SIZE: usize = 64 * 1024;

/// The counters of this worker's cycle; null until the zone is initialized (and when no
/// location shows them).
static COUNTERS: AtomicPtr<Counters> = AtomicPtr::new(ptr::null_mut());

fn counters() -> Option<&'static Counters> {
    // SAFETY: set by init_zone to memory of the shared zone, which lives as long as the
    // cycle that uses it; reset when a configuration without the zone is loaded.
    unsafe { COUNTERS.load(Ordering::Relaxed).as_ref() }
}

/// `docker_api_metrics`: this location answers with the counters.
pub extern "C" fn set_metrics(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guard::catch_conf(cf, || {
        // SAFETY: called by nginx for this module's location-level directive; cf is the
        // configuration being parsed.
        unsafe {
            let Some(clcf) = NgxHttpCoreModule::location_conf_mut(&*cf) else {
                return NGX_CONF_ERROR;
            };
            if clcf.handler.is_some() {
                ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "\"docker_api_metrics\": this location has a content handler already"
                );
                return NGX_CONF_ERROR;
            }
            clcf.handler = Some(handler);
            let Some(main) = DockerStreamModule::main_conf_mut(&*cf) else {
                return NGX_CONF_ERROR;
            };
            if main.metrics_zone.is_null() {
                let mut name = ngx_string!("docker_api_metrics");
                let zone = ngx_shared_memory_add(
                    cf,
                    &mut name,
                    ZONE_SIZE,
                    ptr::addr_of_mut!(crate::ngx_http_docker_stream_module).cast(),
                );
                if zone.is_null() {
                    return NGX_CONF_ERROR;
                }
                (*zone).init = Some(init_zone);
                main.metrics_zone = zone;
            }
            NGX_CONF_OK
        }
    })
}

/// Called by nginx for each new cycle with the zone's previous data, if a zone of the
/// same name and size existed: the counters carry over.
unsafe extern "C" fn init_zone(zone: *mut ngx_shm_zone_t, data: *mut c_void) -> ngx_int_t {
    let counters = if data.is_null() {
        let pool = (*zone).shm.addr.cast::<ngx_slab_pool_t>();
        let c = ngx_slab_calloc(pool, core::mem::size_of::<Counters>());
        if c.is_null() {
            return Status::NGX_ERROR.into();
        }
        c
    } else {
        data
    };
    (*zone).data = counters;
    Status::NGX_OK.into()
}

/// Each worker counts into the zone of its own cycle, or not at all: set when it starts
/// (a worker started after a reload to a configuration without the zone must not write
/// into the old cycle's, which nginx has unmapped).
///
/// # Safety
/// Called by nginx in a new worker process with its cycle.
pub unsafe extern "C" fn init_process(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    let zone = DockerStreamModule::main_conf(&*cycle).map_or(ptr::null_mut(), |m| m.metrics_zone);
    let counters = if zone.is_null() {
        ptr::null_mut()
    } else {
        (*zone).data.cast()
    };
    COUNTERS.store(counters, Ordering::Relaxed);
    Status::NGX_OK.into()
}

/// # Safety
/// `cf` is the configuration being parsed (postconfiguration).
pub unsafe fn register(cf: *mut ngx_conf_t) -> Status {
    phase::add(cf, ngx_http_phases_NGX_HTTP_LOG_PHASE, count_request)
}

/// Log phase: one request, by its operation and what the rules and guards decided.
unsafe extern "C" fn count_request(r: *mut ngx_http_request_t) -> ngx_int_t {
    let Some(c) = counters() else {
        return Status::NGX_DECLINED.into();
    };
    // SAFETY: nginx passes a live request to phase handlers.
    let r = Request::from_ngx_http_request(r);
    guard::catch_status(r.log(), || {
        // The metrics location's own requests are not Docker API requests.
        if !r.is_main() || is_metrics_location(r) {
            return Status::NGX_DECLINED;
        }
        let h = r.as_ref();
        let op = classify(h.method_name.as_bytes(), h.uri.as_bytes()).operation;
        let row = op.and_then(row_of).unwrap_or(UNKNOWN);
        let col = match api_rules::recorded(r) {
            None => 0,
            Some((true, _)) => 1,
            Some((false, _)) => 2,
        };
        c.requests[row][col].fetch_add(1, Ordering::Relaxed);
        Status::NGX_DECLINED
    })
    .into()
}

/// Whether `r` is in a location with `docker_api_metrics`.
pub fn is_metrics_location(r: &Request) -> bool {
    NgxHttpCoreModule::location_conf(r)
        .and_then(|clcf| clcf.handler)
        .is_some_and(|h| h as usize == handler as *const () as usize)
}

/// The row of `op` in [`OPERATIONS`], without a search: `classify` returns references
/// into that table (checked, in case one day it does not).
fn row_of(op: &Operation) -> Option<usize> {
    let at = (op as *const Operation as usize).wrapping_sub(OPERATIONS.as_ptr() as usize)
        / core::mem::size_of::<Operation>();
    OPERATIONS
        .get(at)
        .filter(|o| ptr::eq(*o, op))
        .map(|_| at)
        .or_else(|| OPERATIONS.iter().position(|o| ptr::eq(o, op)))
}

/// A tunnel started relaying; if counted (true), it is open until [`tunnel_closed`] (its
/// drop with the request's pool), however it ends.
pub fn tunnel_opened() -> bool {
    let Some(c) = counters() else {
        return false;
    };
    c.tunnels_open.fetch_add(1, Ordering::Relaxed);
    c.tunnels_total.fetch_add(1, Ordering::Relaxed);
    true
}

pub fn tunnel_closed() {
    if let Some(c) = counters() {
        c.tunnels_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A tunnel ended (`end` indexes [`ENDS`]) after these bytes on its two connections.
pub fn tunnel_ended(end: usize, to_client: u64, to_daemon: u64) {
    if let Some(c) = counters() {
        c.tunnel_bytes_to_client
            .fetch_add(to_client, Ordering::Relaxed);
        c.tunnel_bytes_to_daemon
            .fetch_add(to_daemon, Ordering::Relaxed);
        c.tunnel_ends[end.min(ENDS.len() - 1)].fetch_add(1, Ordering::Relaxed);
    }
}

/// The counters in Prometheus' text format. Request series appear once counted.
fn render(c: &Counters) -> String {
    let mut s = String::with_capacity(4096);
    let l = Ordering::Relaxed;
    s.push_str(
        "# HELP docker_api_requests_total Requests by Docker API operation and by what the rules and guards decided.\n\
         # TYPE docker_api_requests_total counter\n",
    );
    for (row, counts) in c.requests.iter().enumerate() {
        let op = OPERATIONS.get(row).map_or("", |o| o.name);
        for (col, n) in counts.iter().enumerate() {
            let n = n.load(l);
            if n > 0 {
                let _ = writeln!(
                    s,
                    "docker_api_requests_total{{operation=\"{op}\",decision=\"{}\"}} {n}",
                    DECISIONS[col]
                );
            }
        }
    }
    let _ = write!(
        s,
        "# HELP docker_stream_tunnels_open Tunnels (attach, exec, run) open now.\n\
         # TYPE docker_stream_tunnels_open gauge\n\
         docker_stream_tunnels_open {}\n\
         # HELP docker_stream_tunnels_total Tunnels opened.\n\
         # TYPE docker_stream_tunnels_total counter\n\
         docker_stream_tunnels_total {}\n\
         # HELP docker_stream_tunnel_bytes_total Bytes sent on the connections of ended tunnels.\n\
         # TYPE docker_stream_tunnel_bytes_total counter\n\
         docker_stream_tunnel_bytes_total{{direction=\"to_client\"}} {}\n\
         docker_stream_tunnel_bytes_total{{direction=\"to_daemon\"}} {}\n\
         # HELP docker_stream_tunnel_ends_total Tunnels ended, by how.\n\
         # TYPE docker_stream_tunnel_ends_total counter\n",
        c.tunnels_open.load(l),
        c.tunnels_total.load(l),
        c.tunnel_bytes_to_client.load(l),
        c.tunnel_bytes_to_daemon.load(l),
    );
    for (i, end) in ENDS.iter().enumerate() {
        let _ = writeln!(
            s,
            "docker_stream_tunnel_ends_total{{reason=\"{end}\"}} {}",
            c.tunnel_ends[i].load(l)
        );
    }
    s
}

unsafe extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx passes the live request to a location's content handler.
    let r = Request::from_ngx_http_request(r);
    guard::catch_status(r.log(), || respond(r)).into()
}

fn respond(r: &mut Request) -> Status {
    let method = r.as_ref().method as u32;
    if method & (NGX_HTTP_GET | NGX_HTTP_HEAD) == 0 {
        return HTTPStatus::NOT_ALLOWED.into();
    }
    let rc = r.discard_request_body();
    if !rc.is_ok() {
        return rc;
    }
    let Some(c) = counters() else {
        return HTTPStatus::INTERNAL_SERVER_ERROR.into();
    };
    let text = render(c);
    r.set_status(HTTPStatus::OK);
    r.set_content_length_n(text.len());
    let h = &mut r.as_mut().headers_out;
    let ct = "text/plain; version=0.0.4; charset=utf-8";
    h.content_type = ngx_str_t {
        len: ct.len(),
        data: ct.as_ptr().cast_mut(),
    };
    h.content_type_len = "text/plain".len();
    let rc = r.send_header();
    if rc == Status::NGX_ERROR || rc > Status::NGX_OK || r.header_only() {
        return rc;
    }
    let Some(mut buf) = r.pool().create_buffer_from_str(&text) else {
        return Status::NGX_ERROR;
    };
    buf.set_last_buf(true);
    buf.set_last_in_chain(true);
    let mut out = ngx_chain_t {
        buf: buf.as_ngx_buf_mut(),
        next: ptr::null_mut(),
    };
    r.output_filter(&mut out)
}

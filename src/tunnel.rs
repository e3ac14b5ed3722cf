//! The tunnel: a half-close-aware relay between the client and the daemon.
//!
//! nginx's own relay (`ngx_http_upstream_process_upgraded`) ends the request as soon as
//! either side reaches EOF. The docker CLI shuts down its write side when stdin ends, and
//! at once without `-i`, so everything the container prints afterwards would be lost. This
//! relay turns the client's EOF into `shutdown(SHUT_WR)` towards the daemon and keeps
//! forwarding the daemon's output until the daemon closes.
//!
//! How it takes over: `ngx_http_upstream_upgrade()` installs nginx's four relay handlers,
//! flushes the response head through the body filter chain, and then runs its relay once,
//! directly. Our body filter sees that flush ([`install`]) and replaces the handlers. To keep
//! that one direct run from reading either socket (and finalizing on a client EOF it would
//! discover), the read events' `ready` and the client's `eof` flags are parked in the
//! context and the client read event is posted; our first run restores them.
//!
//! Ending: `ngx_http_upstream_finalize_request()` is static, so the relay ends the request
//! through nginx's saved upstream read handler, with the upstream marked at EOF and the
//! to-client buffer empty: nginx then finalizes with its usual status and log line.

use core::ptr;

use nginx_sys::{
    ngx_event_t, ngx_handle_read_event, ngx_handle_write_event, ngx_http_request_t,
    ngx_http_upstream_handler_pt, ngx_http_upstream_t, ngx_http_write_filter, ngx_int_t,
    ngx_msec_t, ngx_post_event, ngx_posted_events, NGX_ERROR, NGX_LOG_INFO, NGX_OK,
};
use ngx::core::Pool;
use ngx::http::HttpModuleLocationConf;

use docker_stream_logic::duration::MAX_MSEC;
use docker_stream_logic::splice_mode::SpliceMode;

use crate::direction::{self, is_empty, Direction, Ends, Pumped};
use crate::{guard, DockerStreamModule};

/// How the request became a tunnel; `$docker_stream` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A raw-stream 2xx that this module switched (`upgrade`).
    Switched,
    /// A 101 from the daemon itself (`101`).
    Native,
}

/// Per-request state, allocated from the request pool (plain data, never dropped).
pub struct Tunnel {
    pub mode: Mode,
    state: State,
    nginx_read_upstream: ngx_http_upstream_handler_pt,
    /// `docker_stream_timeout`; `None`: no idle limit.
    idle: Option<ngx_msec_t>,
    /// The relay's timer: the idle limit, or the longest one (see `LocConf::idle_timer`).
    timer: ngx_msec_t,
    /// Which directions may start splice(2) lanes (`docker_stream_splice`).
    splice: SpliceMode,
    /// daemon → client, through `u->buffer`.
    down: Direction,
    /// client → daemon, through `u->from_client`.
    up: Direction,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Made by the header filter; nginx has not upgraded the request yet.
    Attached,
    /// Our handlers are in place; the flags nginx's one direct relay run must not see
    /// wait here for our first run.
    Installed(Parked),
    Running,
    Finished,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Parked {
    client_ready: bool,
    client_eof: bool,
    upstream_ready: bool,
}

fn module_ctx_index() -> usize {
    // SAFETY: ctx_index is set once by nginx while loading the configuration.
    unsafe { (*ptr::addr_of!(crate::ngx_http_docker_stream_module)).ctx_index }
}

/// The request's tunnel, if the header filter made one.
///
/// # Safety
/// `r` must be a valid request.
pub unsafe fn get(r: *mut ngx_http_request_t) -> Option<&'static mut Tunnel> {
    let ctx = *(*r).ctx.add(module_ctx_index());
    ctx.cast::<Tunnel>().as_mut()
}

/// Marks the request as a tunnel; the relay takes over when nginx upgrades it.
///
/// # Safety
/// `r` must be a valid main request with an upstream.
pub unsafe fn attach(r: *mut ngx_http_request_t, mode: Mode) -> ngx_int_t {
    let u = (*r).upstream;
    let conf = DockerStreamModule::location_conf(&*r);
    // Dropped with the request's pool: the splice lanes close their pipes. (ngx 0.5.1's
    // allocate writes before it checks the allocation: out of memory in a request pool
    // is fatal here as in the crate's other users.)
    let t = Pool::from_ngx_pool((*r).pool).allocate(Tunnel {
        mode,
        state: State::Attached,
        nginx_read_upstream: None,
        idle: conf.and_then(|c| c.idle_timeout()),
        timer: conf.map_or(MAX_MSEC as ngx_msec_t, |c| c.idle_timer()),
        splice: conf.map_or(SpliceMode::Off, |c| c.splice_mode()),
        down: Direction::new("daemon->client", ptr::addr_of_mut!((*u).buffer)),
        up: Direction::new("client->daemon", ptr::addr_of_mut!((*u).from_client)),
    });
    if t.is_null() {
        return NGX_ERROR as ngx_int_t;
    }
    *(*r).ctx.add(module_ctx_index()) = t.cast();
    NGX_OK as ngx_int_t
}

/// Whether the body filter should call [`install`] now: the tunnel exists, nginx has
/// switched the request to upgraded mode, and our handlers are not yet in place.
pub fn wants_install(t: &Tunnel, u: &ngx_http_upstream_t) -> bool {
    t.state == State::Attached && u.upgrade() != 0 && u.header_sent() != 0
}

/// Replaces nginx's upgraded-connection handlers with ours. Called from the body filter
/// while `ngx_http_upstream_upgrade()` flushes the head.
///
/// # Safety
/// `r` must be the main request being upgraded, with a connected upstream.
pub unsafe fn install(r: *mut ngx_http_request_t, t: &mut Tunnel) {
    let u = (*r).upstream;
    let c = (*r).connection;
    let pc = (*u).peer.connection;

    crate::metrics::tunnel_opened(r);
    t.nginx_read_upstream = (*u).read_event_handler;
    (*u).read_event_handler = Some(upstream_event);
    (*u).write_event_handler = Some(upstream_event);
    (*r).read_event_handler = Some(client_event);
    (*r).write_event_handler = Some(client_event);

    let (rev, prev) = ((*c).read, (*pc).read);
    t.state = State::Installed(Parked {
        client_ready: (*rev).ready() != 0,
        client_eof: (*rev).eof() != 0,
        upstream_ready: (*prev).ready() != 0,
    });
    (*rev).set_ready(0);
    (*rev).set_eof(0);
    (*prev).set_ready(0);
    ngx_post_event(rev, ptr::addr_of_mut!(ngx_posted_events));
}

unsafe extern "C" fn client_event(r: *mut ngx_http_request_t) {
    run(r);
}

unsafe extern "C" fn upstream_event(r: *mut ngx_http_request_t, _u: *mut ngx_http_upstream_t) {
    run(r);
}

unsafe fn run(r: *mut ngx_http_request_t) {
    let log = (*(*r).connection).log;
    guard::catch_event(
        log,
        || {
            // SAFETY: nginx calls the handlers with a live request whose upstream we own.
            unsafe {
                if let Some(t) = get(r) {
                    if let Err(end) = relay(r, t) {
                        finish(r, t, end);
                    }
                }
            }
        },
        || {
            // SAFETY: as above; ends the request the way a failed relay would.
            unsafe {
                if let Some(t) = get(r) {
                    finish(r, t, End::Internal)
                }
            }
        },
    );
}

/// How a tunnel ends; each end writes one `info` line (see [`finish`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// The daemon closed and everything it sent was delivered.
    Done,
    /// `docker_stream_timeout` passed with no data in either direction.
    Idle,
    /// The client's connection failed (reset, or gone while we wrote); undelivered data
    /// is dropped.
    ClientFailed,
    /// Something else failed (named); undelivered data is dropped.
    Error(&'static str),
    /// A panic was caught; the guard has logged it.
    Internal,
}

/// The line a tunnel's end writes (see [`finish`]).
struct EndLine {
    how: End,
    idle_ms: ngx_msec_t,
    undelivered: usize,
    to_client: nginx_sys::off_t,
    to_daemon: nginx_sys::off_t,
    client_eof: bool,
    client_unclean: bool,
    daemon_unclean: bool,
}

impl core::fmt::Display for EndLine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let input = match (self.client_eof, self.client_unclean) {
            (false, _) => "",
            (true, false) => " after the client's end of input",
            (true, true) => " after the client's connection ended without a TLS close_notify",
        };
        let unclean = if self.daemon_unclean {
            " without a TLS close_notify"
        } else {
            ""
        };
        match self.how {
            End::Done => write!(f, "stream closed by the daemon{unclean}{input}")?,
            End::Idle => write!(
                f,
                "no data for {} ms (docker_stream_timeout), stream closed",
                self.idle_ms
            )?,
            End::ClientFailed => write!(
                f,
                "client connection failed, {} bytes from the daemon not delivered",
                self.undelivered
            )?,
            End::Error(what) => write!(f, "{what}, stream closed")?,
            End::Internal => {}
        }
        write!(
            f,
            "; {} bytes sent to the client, {} to the daemon",
            self.to_client, self.to_daemon
        )
    }
}

/// Whether `sa` is a unix socket's address (null: not known, taken as not).
///
/// # Safety
/// `sa` must be null or a valid socket address.
unsafe fn is_unix(sa: *const nginx_sys::sockaddr) -> bool {
    !sa.is_null() && i32::from((*sa).sa_family) == libc::AF_UNIX
}

/// How long a tunnel keeps its bulk buffers and pipes after the last byte moved.
const QUIET_MSEC: ngx_msec_t = 1000;

unsafe fn del_timer(ev: *mut ngx_event_t) {
    if (*ev).timer_set() != 0 {
        nginx_sys::ngx_del_timer(ev);
    }
}

/// Our first run: gives back what [`install`] parked, drops the timers nginx's direct
/// relay run armed, and chooses which directions may splice.
unsafe fn start(r: *mut ngx_http_request_t, t: &mut Tunnel, parked: Parked) {
    let u = (*r).upstream;
    let c = (*r).connection;
    let pc = (*u).peer.connection;
    if parked.client_ready {
        (*(*c).read).set_ready(1);
    }
    if parked.client_eof {
        (*(*c).read).set_eof(1);
        t.up.source_ended(c);
    }
    if parked.upstream_ready {
        (*(*pc).read).set_ready(1);
    }
    for ev in [(*c).read, (*c).write, (*pc).read, (*pc).write] {
        del_timer(ev);
    }
    // TLS bytes must pass through OpenSSL. An upstream connection's own sockaddr is
    // unset; the peer's address is in u->peer.
    let plain = (*c).ssl.is_null() && (*pc).ssl.is_null();
    t.down.splice = plain && t.splice.splices_into(is_unix((*c).sockaddr));
    t.up.splice = plain && t.splice.splices_into(is_unix((*u).peer.sockaddr));
    t.state = State::Running;
}

/// One run of the relay: both directions, then the half-close, the end, and the events
/// and timers for the next run. `Err` says how the tunnel ends.
unsafe fn relay(r: *mut ngx_http_request_t, t: &mut Tunnel) -> Result<(), End> {
    match t.state {
        State::Running => {}
        State::Installed(parked) => start(r, t, parked),
        State::Attached | State::Finished => return Ok(()),
    }
    let u = (*r).upstream;
    let c = (*r).connection;
    let pc = (*u).peer.connection;
    let log = (*c).log;

    // Nothing moved for QUIET_MSEC: bulk buffers and pipes go back at the end of this run.
    let quiet = (*(*pc).write).timedout() != 0;
    (*(*pc).write).set_timedout(0);
    if (*(*pc).read).timedout() != 0 {
        (*(*pc).read).set_timedout(0);
        // Without an idle limit it is the keep-alive timer (see below): not idle.
        if t.idle.is_some() {
            return Err(End::Idle);
        }
    }

    // The response head may still be queued if the client was not writable.
    if !(*r).out.is_null()
        && (*(*c).write).ready() != 0
        && ngx_http_write_filter(r, ptr::null_mut()) == NGX_ERROR as ngx_int_t
    {
        return Err(End::ClientFailed);
    }
    let head_sent = (*r).out.is_null();
    let (pool, buffer_size) = ((*r).pool, (*(*u).conf).buffer_size);

    // daemon → client
    let state = (*u).state;
    let received = state.as_mut().map(|s| &mut s.bytes_received);
    let to_client = Ends {
        src: pc,
        dst: c,
        pool,
        buffer_size,
    };
    let down = t
        .down
        .pass(to_client, head_sent, received)
        .map_err(End::Error)?;
    if down.dst_error {
        return Err(End::ClientFailed);
    }
    // A reset from the daemon ends its output like a close.
    if down.src_eof || down.src_error {
        t.down.source_ended(pc);
    }

    // client → daemon; bytes the client sent right behind the request head go first, as
    // stream bytes.
    let hin = (*r).header_in;
    let mut up = Pumped::default();
    if !hin.is_null() && !is_empty(&*hin) {
        up = direction::pump(c, pc, &mut *hin, false, !t.up.write_failed, None);
        if t.up.write_failed {
            (*hin).pos = (*hin).last;
        }
    }
    let prefix_sent = hin.is_null() || is_empty(&*hin);
    if prefix_sent {
        let to_daemon = Ends {
            src: c,
            dst: pc,
            pool,
            buffer_size,
        };
        up.merge(t.up.pass(to_daemon, true, None).map_err(End::Error)?);
    }
    if up.src_error {
        return Err(End::ClientFailed);
    }
    if up.src_eof {
        t.up.source_ended(c);
    }
    if up.dst_error && !t.up.write_failed {
        t.up.write_failed = true;
        stream_log!(
            NGX_LOG_INFO,
            log,
            "the daemon stopped reading, discarding the client's further input"
        );
    }

    let quiet_now = quiet && !down.moved && !up.moved;
    t.down.trim(pc, pool, quiet_now);
    t.up.trim(c, pool, quiet_now);

    t.up.pass_eof(pc, prefix_sent && t.up.pending() == 0);

    if t.down.eof && t.down.pending() == 0 && (*r).out.is_null() {
        return Err(End::Done);
    }

    if ngx_handle_write_event((*pc).write, 0) != NGX_OK as ngx_int_t
        || ngx_handle_read_event((*pc).read, 0) != NGX_OK as ngx_int_t
        || ngx_handle_write_event((*c).write, 0) != NGX_OK as ngx_int_t
        || ngx_handle_read_event((*c).read, 0) != NGX_OK as ngx_int_t
    {
        return Err(End::Error("cannot watch the connections' events"));
    }

    // Always a timer, even without an idle limit: a worker shutting down gracefully
    // (reload, binary upgrade) stays while timers that are not cancelable remain, and would
    // otherwise exit at once and cut every open tunnel.
    let limit = t.timer;
    if down.moved || up.moved || (*(*pc).read).timer_set() == 0 {
        nginx_sys::ngx_add_timer((*pc).read, limit);
    }
    // The quiet timer (on the upstream write event, which the relay never times otherwise).
    let holds = t.down.holds_bulk() || t.up.holds_bulk();
    if holds && (down.moved || up.moved || (*(*pc).write).timer_set() == 0) {
        nginx_sys::ngx_add_timer((*pc).write, QUIET_MSEC);
    }
    Ok(())
}

/// Ends the request through nginx's upstream code (see the module docs), with one `info`
/// line that says how (nginx's own lines about the request stay away: a failed client is
/// marked as nginx marks one, so no lingering close follows, and an idle end is not
/// passed to nginx as an upstream timeout).
unsafe fn finish(r: *mut ngx_http_request_t, t: &mut Tunnel, how: End) {
    if t.state == State::Finished {
        return;
    }
    t.state = State::Finished;
    let u = (*r).upstream;
    let c = (*r).connection;
    let pc = (*u).peer.connection;

    let line = EndLine {
        how,
        idle_ms: t.idle.unwrap_or(0),
        undelivered: t.down.pending(),
        to_client: (*c).sent,
        to_daemon: (*pc).sent,
        client_eof: t.up.eof,
        client_unclean: t.up.unclean_eof,
        daemon_unclean: t.down.unclean_eof,
    };
    if how != End::Internal {
        // Formatted by the macro, only when info lines are logged.
        stream_log!(NGX_LOG_INFO, (*c).log, "{line}");
    }
    let end = match how {
        End::Done => 0,
        End::Idle => 1,
        End::ClientFailed => 2,
        End::Error(_) => 3,
        End::Internal => 4,
    };
    crate::metrics::tunnel_ended(end, (*c).sent as u64, (*pc).sent as u64);

    if how != End::Done {
        (*u).buffer.pos = (*u).buffer.last;
    }
    if how == End::ClientFailed {
        (*c).set_error(1);
    }
    (*(*c).write).set_timedout(0);
    (*(*pc).write).set_timedout(0);
    (*(*pc).read).set_timedout(0);
    (*(*pc).read).set_eof(1);
    (*(*pc).read).set_ready(0);

    // Always set by install(), which runs before any of our handlers can.
    if let Some(h) = t.nginx_read_upstream {
        h(r, u);
    }
}

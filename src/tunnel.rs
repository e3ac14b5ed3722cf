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

use core::ptr::{self, NonNull};

use nginx_sys::{
    ngx_http_request_t, ngx_http_upstream_handler_pt, ngx_http_upstream_t, ngx_http_write_filter,
    ngx_msec_t, NGX_LOG_INFO,
};
use ngx::core::Status;
use ngx::http::{HttpModule, HttpModuleLocationConf, Request};

use docker_stream_logic::duration::MAX_MSEC;
use docker_stream_logic::splice_mode::SpliceMode;

use crate::conn::{self, Connection};
use crate::direction::{self, is_empty, Direction, Ends, Pumped, Way};
use crate::{guard, metrics, DockerStreamModule};

/// How the request became a tunnel; `$docker_stream` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A raw-stream 2xx that this module switched (`upgrade`).
    Switched,
    /// A 101 from the daemon itself (`101`).
    Native,
}

/// Per-request state, allocated from the request's pool and dropped with it.
pub struct Tunnel {
    pub mode: Mode,
    state: State,
    client: Connection,
    daemon: Connection,
    upstream: NonNull<ngx_http_upstream_t>,
    nginx_read_upstream: ngx_http_upstream_handler_pt,
    /// Counted among the open tunnels (`docker_api_metrics`) until dropped.
    counted: bool,
    /// `docker_stream_timeout` is set: `timer` is the idle limit.
    idle: bool,
    /// The relay's timer: the idle limit, or the longest one (see `LocConf::idle_timer`).
    timer: ngx_msec_t,
    /// Which directions may start splice(2) lanes (`docker_stream_splice`).
    splice: SpliceMode,
    /// daemon → client, through `u->buffer`.
    down: Direction,
    /// client → daemon, through `u->from_client`.
    up: Direction,
}

// Every idle tunnel pays for this struct in its request's pool, whose blocks are 4 KiB: at
// 184 bytes the tunnels the benchmark holds took a page more each (9.9 to 14.0 KiB).
const _: () = assert!(core::mem::size_of::<Tunnel>() <= 128);

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

impl Drop for Tunnel {
    fn drop(&mut self) {
        if self.counted {
            metrics::tunnel_closed();
        }
    }
}

/// The request's tunnel, if the header filter made one. It lives as long as the request's
/// pool.
pub fn get(r: &Request) -> Option<&'static mut Tunnel> {
    let index = DockerStreamModule::module().ctx_index;
    // SAFETY: `ctx` has a slot for every HTTP module; ours is null or the tunnel attach()
    // allocated in the request's pool.
    unsafe { (*r.as_ref().ctx.add(index)).cast::<Tunnel>().as_mut() }
}

/// Marks the request as a tunnel; the relay takes over when nginx upgrades it. `r` is a
/// main request whose upstream has received the response head.
pub fn attach(r: &mut Request, mode: Mode) -> Status {
    let Some(u) = r.upstream().and_then(NonNull::new) else {
        return Status::NGX_ERROR;
    };
    // SAFETY: the request's upstream is live; nginx reads the head from its peer
    // connection, which stays open until the request ends.
    let ends = unsafe {
        (
            Connection::from_ptr(r.connection()),
            Connection::from_ptr(u.as_ref().peer.connection),
        )
    };
    let (Some(client), Some(daemon)) = ends else {
        return Status::NGX_ERROR;
    };
    // SAFETY: nginx's two relay buffers, inside the upstream, which outlives the tunnel.
    let (down, up) = unsafe {
        let u = u.as_ptr();
        (
            Direction::new(Way::Down, ptr::addr_of_mut!((*u).buffer)),
            Direction::new(Way::Up, ptr::addr_of_mut!((*u).from_client)),
        )
    };
    let conf = DockerStreamModule::location_conf(r);
    // Dropped with the request's pool: the splice lanes close their pipes. (ngx 0.5.1's
    // allocate writes before it checks the allocation: out of memory in a request pool
    // is fatal here as in the crate's other users.)
    let t = r.pool().allocate(Tunnel {
        mode,
        state: State::Attached,
        client,
        daemon,
        upstream: u,
        nginx_read_upstream: None,
        counted: false,
        idle: conf.and_then(|c| c.idle_timeout()).is_some(),
        timer: conf.map_or(MAX_MSEC as ngx_msec_t, |c| c.idle_timer()),
        splice: conf.map_or(SpliceMode::Off, |c| c.splice_mode()),
        down,
        up,
    });
    if t.is_null() {
        return Status::NGX_ERROR;
    }
    r.set_module_ctx(t.cast(), DockerStreamModule::module());
    Status::NGX_OK
}

/// Whether the body filter should call [`install`] now: nginx has switched the request
/// to upgraded mode, and our handlers are not yet in place.
pub fn wants_install(t: &Tunnel) -> bool {
    // SAFETY: the request's upstream, live while the tunnel is.
    let u = unsafe { t.upstream.as_ref() };
    t.state == State::Attached && u.upgrade() != 0 && u.header_sent() != 0
}

/// Replaces nginx's upgraded-connection handlers with ours. Called from the body filter
/// while `ngx_http_upstream_upgrade()` flushes the head.
pub fn install(r: &mut Request, t: &mut Tunnel) {
    t.counted = metrics::tunnel_opened();
    // SAFETY: the request's upstream; nothing else refers to it during this call.
    let u = unsafe { t.upstream.as_mut() };
    t.nginx_read_upstream = u.read_event_handler;
    u.read_event_handler = Some(upstream_event);
    u.write_event_handler = Some(upstream_event);
    r.as_mut().read_event_handler = Some(client_event);
    r.as_mut().write_event_handler = Some(client_event);

    let (rev, prev) = (t.client.read(), t.daemon.read());
    t.state = State::Installed(Parked {
        client_ready: rev.ready(),
        client_eof: rev.eof(),
        upstream_ready: prev.ready(),
    });
    rev.set_ready(false);
    rev.set_eof(false);
    prev.set_ready(false);
    rev.post();
}

unsafe extern "C" fn client_event(r: *mut ngx_http_request_t) {
    run(r);
}

unsafe extern "C" fn upstream_event(r: *mut ngx_http_request_t, _u: *mut ngx_http_upstream_t) {
    run(r);
}

/// # Safety
/// `r` is the live request whose handlers install() replaced.
unsafe fn run(r: *mut ngx_http_request_t) {
    // SAFETY: the caller's contract.
    let log = Request::from_ngx_http_request(r).log();
    guard::catch_event(
        log,
        || {
            // SAFETY: as above.
            let req = unsafe { Request::from_ngx_http_request(r) };
            if let Some(t) = get(req) {
                if let Err(end) = relay(req, t) {
                    finish(req, t, end);
                }
            }
        },
        || {
            // SAFETY: as above; ends the request the way a failed relay would.
            let req = unsafe { Request::from_ngx_http_request(r) };
            if let Some(t) = get(req) {
                finish(req, t, End::Internal)
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

/// How long a tunnel keeps its bulk buffers and pipes after the last byte moved.
const QUIET_MSEC: ngx_msec_t = 1000;

/// Our first run: gives back what [`install`] parked, drops the timers nginx's direct
/// relay run armed, and chooses which directions may splice.
fn start(t: &mut Tunnel, parked: Parked) {
    let (c, pc) = (t.client, t.daemon);
    if parked.client_ready {
        c.read().set_ready(true);
    }
    if parked.client_eof {
        c.read().set_eof(true);
        t.up.source_ended(c);
    }
    if parked.upstream_ready {
        pc.read().set_ready(true);
    }
    for ev in [c.read(), c.write(), pc.read(), pc.write()] {
        ev.del_timer();
    }
    // TLS bytes must pass through OpenSSL. An upstream connection's own sockaddr is
    // unset; the peer's address is in u->peer.
    // SAFETY: the request's upstream, live while the tunnel is; its peer's address is
    // null or valid.
    let daemon_unix = unsafe { conn::is_unix_addr(t.upstream.as_ref().peer.sockaddr) };
    let plain = !c.is_tls() && !pc.is_tls();
    let client_unix = c.is_unix();
    t.down.splice = plain && t.splice.splices(daemon_unix, client_unix);
    t.up.splice = plain && t.splice.splices(client_unix, daemon_unix);
    t.state = State::Running;
}

/// One run of the relay: both directions, then the half-close, the end, and the events
/// and timers for the next run. `Err` says how the tunnel ends.
fn relay(r: &mut Request, t: &mut Tunnel) -> Result<(), End> {
    match t.state {
        State::Running => {}
        State::Installed(parked) => start(t, parked),
        State::Attached | State::Finished => return Ok(()),
    }
    let (c, pc) = (t.client, t.daemon);

    // Nothing moved for QUIET_MSEC: bulk buffers and pipes go back at the end of this run.
    let quiet = pc.write().timedout();
    pc.write().set_timedout(false);
    if pc.read().timedout() {
        pc.read().set_timedout(false);
        // Without an idle limit it is the keep-alive timer (see below): not idle.
        if t.idle {
            return Err(End::Idle);
        }
    }

    // The response head may still be queued if the client was not writable.
    // SAFETY: the live request; a null chain sends what is queued.
    if !r.as_ref().out.is_null()
        && c.write().ready()
        && Status(unsafe { ngx_http_write_filter(r.into(), ptr::null_mut()) }) == Status::NGX_ERROR
    {
        return Err(End::ClientFailed);
    }
    let head_sent = r.as_ref().out.is_null();
    let pool = r.pool();
    // SAFETY: the proxy's configuration of the request's upstream.
    let buffer_size = unsafe { (*t.upstream.as_ref().conf).buffer_size };

    // daemon → client
    // SAFETY: the upstream's state of this connection, null or live while the request is.
    let received = unsafe { t.upstream.as_ref().state.as_mut() }.map(|s| &mut s.bytes_received);
    let to_client = Ends {
        src: pc,
        dst: c,
        pool: pool.clone(),
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
    // SAFETY: the request's header buffer, null or live while the request is.
    let hin = unsafe { r.as_ref().header_in.as_mut() };
    let mut up = Pumped::default();
    let prefix_sent = match hin {
        Some(hin) if !is_empty(hin) => {
            // SAFETY: nginx's buffer describes one allocation.
            up = unsafe { direction::pump(c, pc, hin, false, !t.up.write_failed, None) };
            if t.up.write_failed {
                hin.pos = hin.last;
            }
            is_empty(hin)
        }
        _ => true,
    };
    if prefix_sent {
        let to_daemon = Ends {
            src: c,
            dst: pc,
            pool: pool.clone(),
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
            c.log(),
            "the daemon stopped reading, discarding the client's further input"
        );
    }

    let quiet_now = quiet && !down.moved && !up.moved;
    t.down.trim(pc, &pool, quiet_now);
    t.up.trim(c, &pool, quiet_now);

    t.up.pass_eof(pc, prefix_sent && t.up.pending() == 0);

    if t.down.eof && t.down.pending() == 0 && r.as_ref().out.is_null() {
        return Err(End::Done);
    }

    if !pc.write().watch_write().is_ok()
        || !pc.read().watch_read().is_ok()
        || !c.write().watch_write().is_ok()
        || !c.read().watch_read().is_ok()
    {
        return Err(End::Error("cannot watch the connections' events"));
    }

    // Always a timer, even without an idle limit: a worker shutting down gracefully
    // (reload, binary upgrade) stays while timers that are not cancelable remain, and would
    // otherwise exit at once and cut every open tunnel.
    if down.moved || up.moved || !pc.read().timer_set() {
        pc.read().add_timer(t.timer);
    }
    // The quiet timer (on the upstream write event, which the relay never times otherwise).
    let holds = t.down.holds_bulk() || t.up.holds_bulk();
    if holds && (down.moved || up.moved || !pc.write().timer_set()) {
        pc.write().add_timer(QUIET_MSEC);
    }
    Ok(())
}

/// Ends the request through nginx's upstream code (see the module docs), with one `info`
/// line that says how (nginx's own lines about the request stay away: a failed client is
/// marked as nginx marks one, so no lingering close follows, and an idle end is not
/// passed to nginx as an upstream timeout).
fn finish(r: &mut Request, t: &mut Tunnel, how: End) {
    if t.state == State::Finished {
        return;
    }
    t.state = State::Finished;
    let (c, pc) = (t.client, t.daemon);

    let line = EndLine {
        how,
        idle_ms: if t.idle { t.timer } else { 0 },
        undelivered: t.down.pending(),
        to_client: c.sent(),
        to_daemon: pc.sent(),
        client_eof: t.up.eof,
        client_unclean: t.up.unclean_eof,
        daemon_unclean: t.down.unclean_eof,
    };
    if how != End::Internal {
        // Formatted by the macro, only when info lines are logged.
        stream_log!(NGX_LOG_INFO, c.log(), "{line}");
    }
    let end = match how {
        End::Done => 0,
        End::Idle => 1,
        End::ClientFailed => 2,
        End::Error(_) => 3,
        End::Internal => 4,
    };
    metrics::tunnel_ended(end, c.sent() as u64, pc.sent() as u64);

    if how != End::Done {
        // SAFETY: the request's upstream; no reference to its buffer is live here.
        let u = unsafe { t.upstream.as_mut() };
        u.buffer.pos = u.buffer.last;
    }
    if how == End::ClientFailed {
        c.set_error();
    }
    c.write().set_timedout(false);
    pc.write().set_timedout(false);
    pc.read().set_timedout(false);
    pc.read().set_eof(true);
    pc.read().set_ready(false);

    // Always set by install(), which runs before any of our handlers can.
    if let Some(h) = t.nginx_read_upstream {
        // SAFETY: nginx's own handler, called as nginx would: the live request and its
        // upstream.
        unsafe { h(r.into(), t.upstream.as_ptr()) };
    }
}

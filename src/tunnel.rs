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
    ngx_buf_t, ngx_connection_t, ngx_event_t, ngx_handle_read_event, ngx_handle_write_event,
    ngx_http_request_t, ngx_http_upstream_handler_pt, ngx_http_upstream_t, ngx_http_write_filter,
    ngx_int_t, ngx_msec_t, ngx_palloc, ngx_pcalloc, ngx_pfree, ngx_pool_t, ngx_post_event,
    ngx_posted_events, off_t, NGX_AGAIN, NGX_ERROR, NGX_LOG_INFO, NGX_OK,
};
use ngx::http::{HttpModuleLocationConf, Request};
use ngx::ngx_log_error;

use docker_stream_logic::duration::MAX_MSEC;
use docker_stream_logic::splice_mode::SpliceMode;

use crate::splice::{self, Lane};
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
    installed: bool,
    started: bool,
    finished: bool,
    parked_client_ready: bool,
    parked_client_eof: bool,
    parked_upstream_ready: bool,
    nginx_read_upstream: ngx_http_upstream_handler_pt,
    client_eof: bool,
    upstream_eof: bool,
    upstream_shut: bool,
    upstream_write_failed: bool,
    timeout: ngx_msec_t,
    /// Which directions may start splice(2) lanes (`docker_stream_splice`; plain sockets
    /// on both sides only).
    splice: SpliceMode,
    /// daemon → client and client → daemon.
    down: Lane,
    up: Lane,
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
    let t = ngx_pcalloc((*r).pool, core::mem::size_of::<Tunnel>()).cast::<Tunnel>();
    if t.is_null() {
        return NGX_ERROR as ngx_int_t;
    }
    let conf = DockerStreamModule::location_conf(&*r);
    let timeout = conf.and_then(|c| c.idle_timeout()).unwrap_or(0);
    let splice = conf.map_or(SpliceMode::Off, |c| c.splice_mode());
    t.write(Tunnel {
        mode,
        installed: false,
        started: false,
        finished: false,
        parked_client_ready: false,
        parked_client_eof: false,
        parked_upstream_ready: false,
        nginx_read_upstream: None,
        client_eof: false,
        upstream_eof: false,
        upstream_shut: false,
        upstream_write_failed: false,
        timeout,
        splice,
        down: Lane::new(),
        up: Lane::new(),
    });
    *(*r).ctx.add(module_ctx_index()) = t.cast();
    NGX_OK as ngx_int_t
}

/// Whether the body filter should call [`install`] now: the tunnel exists, nginx has
/// switched the request to upgraded mode, and our handlers are not yet in place.
pub fn wants_install(t: &Tunnel, u: &ngx_http_upstream_t) -> bool {
    !t.installed && u.upgrade() != 0 && u.header_sent() != 0
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

    t.installed = true;
    t.nginx_read_upstream = (*u).read_event_handler;
    (*u).read_event_handler = Some(upstream_event);
    (*u).write_event_handler = Some(upstream_event);
    (*r).read_event_handler = Some(client_event);
    (*r).write_event_handler = Some(client_event);

    let (rev, prev) = ((*c).read, (*pc).read);
    t.parked_client_ready = (*rev).ready() != 0;
    t.parked_client_eof = (*rev).eof() != 0;
    t.parked_upstream_ready = (*prev).ready() != 0;
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
            unsafe { relay(r) }
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

#[derive(Default)]
struct Pumped {
    moved: bool,
    /// A read filled the buffer: bulk traffic, worth a splice lane.
    filled: bool,
    src_eof: bool,
    src_error: bool,
    dst_error: bool,
}

impl Pumped {
    fn merge(&mut self, o: Pumped) {
        self.moved |= o.moved;
        self.filled |= o.filled;
        self.src_eof |= o.src_eof;
        self.src_error |= o.src_error;
        self.dst_error |= o.dst_error;
    }
}

impl From<splice::Spliced> for Pumped {
    fn from(s: splice::Spliced) -> Self {
        Pumped {
            moved: s.moved,
            filled: false,
            src_eof: s.src_eof,
            src_error: s.src_error,
            dst_error: s.dst_error,
        }
    }
}

/// Moves bytes from `src` through `b` to `dst` until neither side can make progress.
unsafe fn pump(
    src: *mut ngx_connection_t,
    dst: *mut ngx_connection_t,
    b: *mut ngx_buf_t,
    mut can_recv: bool,
    can_send: bool,
    mut received: Option<&mut off_t>,
) -> Pumped {
    let mut out = Pumped::default();
    loop {
        let mut progress = false;
        let pending = (*b).last.offset_from((*b).pos) as usize;
        if can_send && pending > 0 && (*(*dst).write).ready() != 0 {
            let send = (*dst).send.expect("connection send handler");
            let n = send(dst, (*b).pos, pending);
            if n == NGX_ERROR as isize {
                out.dst_error = true;
                return out;
            }
            if n > 0 {
                (*b).pos = (*b).pos.add(n as usize);
                if (*b).pos == (*b).last {
                    (*b).pos = (*b).start;
                    (*b).last = (*b).start;
                }
                progress = true;
            }
        }
        let space = (*b).end.offset_from((*b).last) as usize;
        if can_recv && space > 0 && (*(*src).read).ready() != 0 {
            let recv = (*src).recv.expect("connection recv handler");
            let n = recv(src, (*b).last, space);
            if n > 0 {
                (*b).last = (*b).last.add(n as usize);
                if let Some(count) = received.as_deref_mut() {
                    *count += n as off_t;
                }
                out.filled |= n as usize == space;
                progress = true;
            } else if n == 0 {
                out.src_eof = true;
                can_recv = false;
            } else if n != NGX_AGAIN as isize {
                out.src_error = true;
                can_recv = false;
            }
        }
        if !progress {
            return out;
        }
        out.moved = true;
    }
}

/// Whether `sa` is a unix socket's address (null: not known, taken as not).
///
/// # Safety
/// `sa` must be null or a valid socket address.
unsafe fn is_unix(sa: *const nginx_sys::sockaddr) -> bool {
    !sa.is_null() && i32::from((*sa).sa_family) == libc::AF_UNIX
}

fn is_empty(b: &ngx_buf_t) -> bool {
    b.pos == b.last
}

/// Size of a buffer once a direction has shown bulk traffic.
const BULK_BUF: usize = 256 * 1024;

/// How long a tunnel keeps its bulk buffers and pipes after the last byte moved.
const QUIET_MSEC: ngx_msec_t = 1000;

fn is_bulk(b: &ngx_buf_t) -> bool {
    !b.start.is_null() && (b.end as usize - b.start as usize) >= BULK_BUF
}

/// Replaces an empty buffer with a `BULK_BUF` one (once); false if it stays as it is.
unsafe fn grow_buf(pool: *mut ngx_pool_t, b: &mut ngx_buf_t) -> bool {
    if !is_empty(b) || (b.end as usize - b.start as usize) >= BULK_BUF {
        return false;
    }
    release_buf(pool, b);
    if !b.start.is_null() {
        // A small buffer inside the pool's blocks cannot be freed; keep using it.
        return false;
    }
    alloc_buf(pool, b, BULK_BUF)
}

unsafe fn alloc_buf(pool: *mut ngx_pool_t, b: &mut ngx_buf_t, size: usize) -> bool {
    let start = ngx_palloc(pool, size).cast::<u8>();
    if start.is_null() {
        return false;
    }
    b.start = start;
    b.pos = start;
    b.last = start;
    b.end = start.add(size);
    b.set_temporary(1);
    true
}

/// Frees an empty buffer if the pool allocated it on its own (a "large" allocation);
/// small ones live in the pool's blocks until the request ends.
unsafe fn release_buf(pool: *mut ngx_pool_t, b: &mut ngx_buf_t) {
    if b.start.is_null() || !is_empty(b) {
        return;
    }
    if ngx_pfree(pool, b.start.cast()) == NGX_OK as ngx_int_t {
        b.start = ptr::null_mut();
        b.pos = ptr::null_mut();
        b.last = ptr::null_mut();
        b.end = ptr::null_mut();
    }
}

unsafe fn del_timer(ev: *mut ngx_event_t) {
    if (*ev).timer_set() != 0 {
        nginx_sys::ngx_del_timer(ev);
    }
}

unsafe fn relay(r: *mut ngx_http_request_t) {
    let Some(t) = get(r) else { return };
    if t.finished {
        return;
    }
    let u = (*r).upstream;
    let c = (*r).connection;
    let pc = (*u).peer.connection;
    let log = (*c).log;

    if !t.started {
        t.started = true;
        if t.parked_client_ready {
            (*(*c).read).set_ready(1);
        }
        if t.parked_client_eof {
            (*(*c).read).set_eof(1);
            t.client_eof = true;
        }
        if t.parked_upstream_ready {
            (*(*pc).read).set_ready(1);
        }
        // nginx's one direct relay run armed proxy_read_timeout and send_timeout timers.
        for ev in [(*c).read, (*c).write, (*pc).read, (*pc).write] {
            del_timer(ev);
        }
    }

    // Nothing moved for QUIET_MSEC: bulk buffers and pipes go back at the end of this run.
    let quiet = (*(*pc).write).timedout() != 0;
    (*(*pc).write).set_timedout(0);

    if (*(*pc).read).timedout() != 0 && t.timeout == 0 {
        // The keep-alive timer of a tunnel without an idle limit (see below): not idle.
        (*(*pc).read).set_timedout(0);
    }
    if (*(*pc).read).timedout() != 0 {
        (*(*pc).read).set_timedout(0);
        return finish(r, t, End::Idle);
    }

    // The response head may still be queued if the client was not writable.
    if !(*r).out.is_null()
        && (*(*c).write).ready() != 0
        && ngx_http_write_filter(r, ptr::null_mut()) == NGX_ERROR as ngx_int_t
    {
        return finish(r, t, End::ClientFailed);
    }
    let head_sent = (*r).out.is_null();

    let plain = (*c).ssl.is_null() && (*pc).ssl.is_null();
    // An upstream connection's own sockaddr is unset; the peer's address is in u->peer.
    let (splice_down, splice_up) = (
        plain && t.splice.splices_into(is_unix((*c).sockaddr)),
        plain && t.splice.splices_into(is_unix((*u).peer.sockaddr)),
    );
    let pool = (*r).pool;

    // daemon → client
    if (*u).buffer.start.is_null() && (*(*pc).read).ready() != 0 && !t.down.active() {
        let size = (*(*u).conf).buffer_size;
        if !alloc_buf(pool, &mut (*u).buffer, size) {
            return finish(r, t, End::Error("out of memory"));
        }
    }
    let state = (*u).state;
    let received = || state.as_mut().map(|s| &mut s.bytes_received);
    let mut down = if t.down.active() {
        splice::pump(pc, c, &mut t.down, !t.upstream_eof, head_sent, received()).into()
    } else {
        pump(
            pc,
            c,
            &mut (*u).buffer,
            !t.upstream_eof,
            head_sent,
            received(),
        )
    };
    if down.filled && !t.down.active() && head_sent && is_empty(&(*u).buffer) {
        // Bulk traffic: a splice lane where `docker_stream_splice` wants one (see
        // SpliceMode), otherwise a larger buffer.
        if splice_down && t.down.start(pool) {
            ngx::ngx_log_debug_http!(
                Request::from_ngx_http_request(r),
                "docker_stream: splice lane daemon->client"
            );
            down.merge(
                splice::pump(
                    pc,
                    c,
                    &mut t.down,
                    !t.upstream_eof && !down.src_eof,
                    true,
                    received(),
                )
                .into(),
            );
        } else if grow_buf(pool, &mut (*u).buffer) {
            ngx::ngx_log_debug_http!(
                Request::from_ngx_http_request(r),
                "docker_stream: bulk buffer daemon->client"
            );
            let more = pump(
                pc,
                c,
                &mut (*u).buffer,
                !t.upstream_eof && !down.src_eof,
                true,
                received(),
            );
            down.merge(more);
        }
    }

    // client → daemon
    let mut up = Pumped::default();
    let hin = (*r).header_in;
    if !hin.is_null() && !is_empty(&*hin) {
        // Bytes the client sent right behind the request head go first, as stream bytes.
        up = pump(c, pc, hin, false, !t.upstream_write_failed, None);
    }
    if t.up.active() {
        up.merge(
            splice::pump(
                c,
                pc,
                &mut t.up,
                !t.client_eof,
                !t.upstream_write_failed,
                None,
            )
            .into(),
        );
        if t.upstream_write_failed {
            // Nothing more can reach the daemon; drain the client into the void.
            t.up.queued = 0;
        }
    } else if (hin.is_null() || is_empty(&*hin))
        // The buffer is allocated when the client first sends: idle tunnels do without.
        && (!(*u).from_client.start.is_null() || (*(*c).read).ready() != 0)
    {
        let b = ptr::addr_of_mut!((*u).from_client);
        if (*b).start.is_null() && !alloc_buf(pool, &mut *b, (*(*u).conf).buffer_size) {
            return finish(r, t, End::Error("out of memory"));
        }
        let more = pump(c, pc, b, !t.client_eof, !t.upstream_write_failed, None);
        let bulk = more.filled;
        up.merge(more);
        if t.upstream_write_failed {
            (*b).pos = (*b).start;
            (*b).last = (*b).start;
        }
        if bulk && is_empty(&*b) && !t.upstream_write_failed && !up.src_eof {
            if splice_up && t.up.start(pool) {
                ngx::ngx_log_debug_http!(
                    Request::from_ngx_http_request(r),
                    "docker_stream: splice lane client->daemon"
                );
                up.merge(splice::pump(c, pc, &mut t.up, !t.client_eof, true, None).into());
            } else if grow_buf(pool, &mut *b) {
                ngx::ngx_log_debug_http!(
                    Request::from_ngx_http_request(r),
                    "docker_stream: bulk buffer client->daemon"
                );
                up.merge(pump(c, pc, b, !t.client_eof, true, None));
            }
        }
    }

    if down.dst_error || up.src_error {
        return finish(r, t, End::ClientFailed);
    }
    if up.src_eof {
        t.client_eof = true;
    }
    if down.src_eof || down.src_error {
        t.upstream_eof = true;
    }
    if up.dst_error && !t.upstream_write_failed {
        t.upstream_write_failed = true;
        ngx_log_error!(
            NGX_LOG_INFO,
            log,
            "docker_stream: the daemon stopped reading, discarding the client's further input"
        );
    }

    // A drained side gives its small buffer back at once (it returns with the next byte),
    // so idle tunnels hold none. Bulk buffers and pipes stay while traffic flows: freeing
    // them whenever a read side is momentarily drained, which is after nearly every event,
    // cost a 256 KiB malloc and free per event and kept the buffer at its small size.
    if (*(*pc).read).ready() == 0 && !is_bulk(&(*u).buffer) {
        release_buf(pool, &mut (*u).buffer);
    }
    if (*(*c).read).ready() == 0 && !is_bulk(&(*u).from_client) {
        release_buf(pool, &mut (*u).from_client);
    }
    if quiet {
        release_buf(pool, &mut (*u).buffer);
        release_buf(pool, &mut (*u).from_client);
        t.down.stop();
        t.up.stop();
    }

    let client_drained =
        (hin.is_null() || is_empty(&*hin)) && is_empty(&(*u).from_client) && t.up.queued == 0;
    if t.client_eof && !t.upstream_shut && (client_drained || t.upstream_write_failed) {
        t.upstream_shut = true;
        half_close(pc);
    }

    if t.upstream_eof && is_empty(&(*u).buffer) && t.down.queued == 0 && (*r).out.is_null() {
        return finish(r, t, End::Done);
    }

    if ngx_handle_write_event((*pc).write, 0) != NGX_OK as ngx_int_t
        || ngx_handle_read_event((*pc).read, 0) != NGX_OK as ngx_int_t
        || ngx_handle_write_event((*c).write, 0) != NGX_OK as ngx_int_t
        || ngx_handle_read_event((*c).read, 0) != NGX_OK as ngx_int_t
    {
        return finish(r, t, End::Error("cannot watch the connections' events"));
    }

    // Always a timer, even without an idle limit: a worker shutting down gracefully
    // (reload, binary upgrade) stays while timers that are not cancelable remain, and would
    // otherwise exit at once and cut every open tunnel.
    let limit = if t.timeout != 0 {
        t.timeout
    } else {
        MAX_MSEC as ngx_msec_t
    };
    if down.moved || up.moved || (*(*pc).read).timer_set() == 0 {
        nginx_sys::ngx_add_timer((*pc).read, limit);
    }
    // The quiet timer (on the upstream write event, which the relay never times otherwise).
    let holds =
        is_bulk(&(*u).buffer) || is_bulk(&(*u).from_client) || t.down.active() || t.up.active();
    if holds && (down.moved || up.moved || (*(*pc).write).timer_set() == 0) {
        nginx_sys::ngx_add_timer((*pc).write, QUIET_MSEC);
    }
}

/// Passes the client's EOF on to the daemon: it sees stdin end and keeps its output going.
unsafe fn half_close(pc: *mut ngx_connection_t) {
    if !(*pc).ssl.is_null() {
        // A TLS upstream would need close_notify without closing; not supported yet, so
        // the daemon keeps waiting for stdin until it exits on its own.
        ngx_log_error!(
            NGX_LOG_INFO,
            (*pc).log,
            "docker_stream: client closed its input; not forwarded to a TLS upstream"
        );
        return;
    }
    // SAFETY: fd is the upstream's open socket; shutting its write side is what a direct
    // client does when stdin ends.
    if libc::shutdown((*pc).fd, libc::SHUT_WR) == -1 {
        let err = std::io::Error::last_os_error();
        // ENOTCONN: the daemon already closed; the relay will see its EOF.
        if err.raw_os_error() != Some(libc::ENOTCONN) {
            ngx_log_error!(
                NGX_LOG_INFO,
                (*pc).log,
                "docker_stream: shutdown() failed: {err}"
            );
        }
    }
}

/// Ends the request through nginx's upstream code (see the module docs), with one `info`
/// line that says how (nginx's own lines about the request stay away: a failed client is
/// marked as nginx marks one, so no lingering close follows, and an idle end is not
/// passed to nginx as an upstream timeout).
unsafe fn finish(r: *mut ngx_http_request_t, t: &mut Tunnel, how: End) {
    if t.finished {
        return;
    }
    t.finished = true;
    let u = (*r).upstream;
    let c = (*r).connection;
    let pc = (*u).peer.connection;

    let undelivered = (*u).buffer.last.offset_from((*u).buffer.pos) as usize + t.down.queued;
    let totals = format!(
        "{} bytes sent to the client, {} to the daemon",
        (*c).sent,
        (*pc).sent
    );
    let input = if t.client_eof {
        " after the client's end of input"
    } else {
        ""
    };
    let line = match how {
        End::Done => Some(format!("stream closed by the daemon{input}; {totals}")),
        End::Idle => Some(format!(
            "no data for {} ms (docker_stream_timeout), stream closed; {totals}",
            t.timeout
        )),
        End::ClientFailed => Some(format!(
            "client connection failed, {undelivered} bytes from the daemon not delivered; {totals}"
        )),
        End::Error(what) => Some(format!("{what}, stream closed; {totals}")),
        End::Internal => None,
    };
    if let Some(line) = line {
        ngx_log_error!(NGX_LOG_INFO, (*c).log, "docker_stream: {line}");
    }

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

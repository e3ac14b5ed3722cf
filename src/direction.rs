//! One direction of a tunnel (daemon → client, or client → daemon): its buffer or splice
//! lane, whether its source ended, whether that end was passed on to its destination, and
//! whether the destination stopped taking bytes. Both directions run through
//! [`Direction::pass`], over plain sockets and TLS alike, as tokio's
//! `copy_bidirectional` and nginx's `ngx_stream_proxy` do.

use core::mem::MaybeUninit;
use core::{ptr, slice};

use nginx_sys::{ngx_buf_t, ngx_pfree, off_t, NGX_AGAIN, NGX_ERROR, NGX_LOG_INFO};
use ngx::core::{Pool, Status};

use crate::conn::Connection;
use crate::splice::{self, Lane};

/// Size of a buffer once a direction has shown bulk traffic.
const BULK_BUF: usize = 256 * 1024;

/// Reads a direction that only discards (its destination failed) makes in one event
/// before it waits for the next.
const DISCARD_ROUNDS: usize = 16;

/// Whether the end of a direction's input has been passed on to its destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shut {
    Open,
    /// A TLS close_notify could not be written yet; retried when the destination is
    /// writable.
    Pending,
    Done,
}

/// Which way a direction carries bytes. (A tunnel lives in the request's pool, whose
/// blocks are 4 KiB: a few bytes more per tunnel can cost every idle tunnel a page.)
#[derive(Clone, Copy)]
pub enum Way {
    /// daemon → client
    Down,
    /// client → daemon
    Up,
}

impl Way {
    /// For the debug log.
    fn name(self) -> &'static str {
        match self {
            Way::Down => "daemon->client",
            Way::Up => "client->daemon",
        }
    }
}

pub struct Direction {
    way: Way,
    /// The copying buffer: nginx's own `u->buffer` (daemon → client) or `u->from_client`,
    /// so that what is left in it is what nginx sees when it finalizes.
    buf: *mut ngx_buf_t,
    lane: Lane,
    /// splice(2) lanes allowed (`docker_stream_splice`, plain sockets on both ends).
    pub splice: bool,
    /// The source reached EOF or failed.
    pub eof: bool,
    /// The source's EOF came without a TLS close_notify (TLS sources only).
    pub unclean_eof: bool,
    pub shut: Shut,
    /// The destination stopped taking bytes; what the source sends is discarded.
    pub write_failed: bool,
}

/// What one pass did.
#[derive(Default)]
pub struct Pumped {
    pub moved: bool,
    /// A read filled the buffer: bulk traffic, worth a splice lane or a bulk buffer.
    filled: bool,
    pub src_eof: bool,
    pub src_error: bool,
    pub dst_error: bool,
}

impl Pumped {
    pub fn merge(&mut self, o: Pumped) {
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

/// The connections and pool a pass works with.
#[derive(Clone)]
pub struct Ends {
    pub src: Connection,
    pub dst: Connection,
    pub pool: Pool,
    /// Size of a first, small buffer (`proxy_buffer_size`).
    pub buffer_size: usize,
}

impl Direction {
    /// # Safety
    /// `buf` must stay valid, empty or describing one allocation of the request's pool,
    /// as long as the direction is used.
    pub unsafe fn new(way: Way, buf: *mut ngx_buf_t) -> Self {
        Direction {
            way,
            buf,
            lane: Lane::new(),
            splice: false,
            eof: false,
            unclean_eof: false,
            shut: Shut::Open,
            write_failed: false,
        }
    }

    /// Bytes read from the source and not yet written to the destination.
    pub fn pending(&self) -> usize {
        // SAFETY: the buffer's contract (`Direction::new`).
        let b = unsafe { &*self.buf };
        len(b) + self.lane.queued
    }

    /// Holds a bulk buffer or a pipe (given back after a quiet second).
    pub fn holds_bulk(&self) -> bool {
        // SAFETY: as in `pending`.
        is_bulk(unsafe { &*self.buf }) || self.lane.active()
    }

    /// Moves what the source has towards the destination until neither can make progress.
    /// `can_send` is false while the destination must not be written yet (the response
    /// head is still queued). A read that fills the small buffer switches the direction
    /// to a splice lane (where allowed) or a bulk buffer.
    ///
    /// `e` holds the tunnel's connections in this direction's order.
    pub fn pass(
        &mut self,
        e: Ends,
        can_send: bool,
        mut received: Option<&mut off_t>,
    ) -> Result<Pumped, &'static str> {
        if self.write_failed {
            return Ok(self.discard(e));
        }
        if self.lane.active() {
            let p = splice::pump(e.src, e.dst, &mut self.lane, !self.eof, can_send, received);
            return Ok(p.into());
        }
        // SAFETY: the buffer's contract (`Direction::new`); no other reference to it is
        // live during a pass.
        let b = unsafe { &mut *self.buf };
        if b.start.is_null() {
            // The buffer is allocated when the source first has bytes: idle tunnels
            // hold none.
            if !e.src.read().ready() {
                return Ok(Pumped::default());
            }
            if !alloc_buf(&e.pool, b, e.buffer_size) {
                return Err("out of memory");
            }
        }
        let (src, dst) = (e.src, e.dst);
        // SAFETY: the buffer's contract (`Direction::new`); the pool's allocations keep it.
        let mut p = unsafe { pump(src, dst, b, !self.eof, can_send, received.as_deref_mut()) };
        if p.filled && can_send && is_empty(b) && !p.src_eof && !p.dst_error {
            let can_recv = !self.eof && !p.src_eof && !p.src_error;
            if self.splice && self.lane.start() {
                stream_debug!(e.src.log(), "splice lane {}", self.way.name());
                let more = splice::pump(e.src, e.dst, &mut self.lane, can_recv, true, received);
                p.merge(more.into());
            } else if grow_buf(&e.pool, b) {
                stream_debug!(e.src.log(), "bulk buffer {}", self.way.name());
                // SAFETY: as above.
                p.merge(unsafe { pump(src, dst, b, can_recv, true, received) });
            }
        }
        Ok(p)
    }

    /// Reads and drops what the source sends (its destination is gone), so that the
    /// source is not stalled by a full buffer.
    fn discard(&mut self, e: Ends) -> Pumped {
        self.lane.discard();
        // SAFETY: as in `pass`.
        let b = unsafe { &mut *self.buf };
        b.pos = b.start;
        b.last = b.start;
        let mut out = Pumped::default();
        if b.start.is_null() {
            return out;
        }
        for _ in 0..DISCARD_ROUNDS {
            // SAFETY: as in `pass`.
            let p = unsafe { pump(e.src, e.dst, b, !self.eof, false, None) };
            b.pos = b.start;
            b.last = b.start;
            let moved = p.moved;
            out.merge(p);
            if !moved {
                break;
            }
        }
        out
    }

    /// Records that the source ended (EOF or a failure).
    pub fn source_ended(&mut self, src: Connection) {
        if !self.eof {
            self.eof = true;
            self.unclean_eof = !crate::tls::ended_cleanly(src);
        }
    }

    /// Gives the buffer back if it is small and drained and the source has nothing ready
    /// (it returns with the next byte); with `quiet`, bulk buffers and pipes too. Bulk
    /// buffers stay while traffic flows: freeing them whenever the source is momentarily
    /// drained, which is after nearly every event, would cost a 256 KiB malloc and free
    /// per event and keep the buffer at its small size.
    pub fn trim(&mut self, src: Connection, pool: &Pool, quiet: bool) {
        // SAFETY: as in `pass`.
        let b = unsafe { &mut *self.buf };
        if quiet || (!src.read().ready() && !is_bulk(b)) {
            release_buf(pool, b);
        }
        if quiet {
            self.lane.stop();
        }
    }

    /// Passes the source's end on to the destination once everything before it was
    /// written (or can never be): `shutdown(SHUT_WR)` on a plain socket, a TLS
    /// close_notify that keeps the connection open for reading on a TLS one. Both are what
    /// the peer (Go's net and crypto/tls in dockerd) reads as the end of stdin.
    pub fn pass_eof(&mut self, dst: Connection, drained: bool) {
        if !self.eof || self.shut == Shut::Done || !(drained || self.write_failed) {
            return;
        }
        if self.shut == Shut::Pending && !dst.write().ready() {
            return;
        }
        self.shut = shut_write(dst);
    }
}

fn len(b: &ngx_buf_t) -> usize {
    b.last as usize - b.pos as usize
}

pub fn is_empty(b: &ngx_buf_t) -> bool {
    b.pos == b.last
}

fn is_bulk(b: &ngx_buf_t) -> bool {
    !b.start.is_null() && (b.end as usize - b.start as usize) >= BULK_BUF
}

/// Moves bytes from `src` through `b` to `dst` until neither side can make progress.
///
/// # Safety
/// `b` must be empty (null pointers) or describe one live allocation:
/// `start <= pos <= last <= end`.
pub unsafe fn pump(
    src: Connection,
    dst: Connection,
    b: &mut ngx_buf_t,
    mut can_recv: bool,
    can_send: bool,
    mut received: Option<&mut off_t>,
) -> Pumped {
    let mut out = Pumped::default();
    loop {
        let mut progress = false;
        let pending = len(b);
        if can_send && pending > 0 && dst.write().ready() {
            // SAFETY: pos..last are the buffer's bytes read and not yet written.
            let n = dst.send(unsafe { slice::from_raw_parts(b.pos, pending) });
            if n == NGX_ERROR as isize {
                out.dst_error = true;
                return out;
            }
            if n > 0 {
                // SAFETY: send wrote at most `pending` bytes.
                b.pos = unsafe { b.pos.add(n as usize) };
                if b.pos == b.last {
                    b.pos = b.start;
                    b.last = b.start;
                }
                progress = true;
            }
        }
        let space = b.end as usize - b.last as usize;
        if can_recv && space > 0 && src.read().ready() {
            // SAFETY: last..end is the buffer's free room.
            let room =
                unsafe { slice::from_raw_parts_mut(b.last.cast::<MaybeUninit<u8>>(), space) };
            let n = src.recv(room);
            if n > 0 {
                // SAFETY: recv read at most `space` bytes.
                b.last = unsafe { b.last.add(n as usize) };
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

/// Replaces an empty small buffer with a `BULK_BUF` one; false if it stays as it is.
fn grow_buf(pool: &Pool, b: &mut ngx_buf_t) -> bool {
    if !is_empty(b) || is_bulk(b) {
        return false;
    }
    release_buf(pool, b);
    if !b.start.is_null() {
        // A small buffer inside the pool's blocks cannot be freed; keep using it.
        return false;
    }
    alloc_buf(pool, b, BULK_BUF)
}

fn alloc_buf(pool: &Pool, b: &mut ngx_buf_t, size: usize) -> bool {
    let start = pool.alloc(size).cast::<u8>();
    if start.is_null() {
        return false;
    }
    b.start = start;
    b.pos = start;
    b.last = start;
    // SAFETY: one past the end of the allocation.
    b.end = unsafe { start.add(size) };
    b.set_temporary(1);
    true
}

/// Frees an empty buffer if the pool allocated it on its own (a "large" allocation);
/// small ones live in the pool's blocks until the request ends.
fn release_buf(pool: &Pool, b: &mut ngx_buf_t) {
    if b.start.is_null() || !is_empty(b) {
        return;
    }
    // SAFETY: `start` came from this pool; ngx_pfree only frees large allocations.
    if Status(unsafe { ngx_pfree(pool.as_ptr(), b.start.cast()) }).is_ok() {
        b.start = ptr::null_mut();
        b.pos = ptr::null_mut();
        b.last = ptr::null_mut();
        b.end = ptr::null_mut();
    }
}

/// Shuts the write side of `c` and keeps its read side open.
fn shut_write(c: Connection) -> Shut {
    if c.is_tls() {
        return tls_close_notify(c);
    }
    // SAFETY: fd is the connection's open socket; shutting its write side is what a
    // direct client does when stdin ends.
    if unsafe { libc::shutdown(c.fd(), libc::SHUT_WR) } == -1 {
        let err = std::io::Error::last_os_error();
        // ENOTCONN: the peer already closed; the relay will see its EOF.
        if err.raw_os_error() != Some(libc::ENOTCONN) {
            stream_log!(NGX_LOG_INFO, c.log(), "shutdown() failed: {err}");
        }
    }
    Shut::Done
}

/// Sends a TLS close_notify without waiting for the peer's: OpenSSL goes on decrypting
/// what the peer sends (`SSL_read` after a one-way `SSL_shutdown`), and nginx's later
/// `ngx_ssl_shutdown()` finds the alert already sent.
#[cfg(ngx_feature = "ssl")]
fn tls_close_notify(c: Connection) -> Shut {
    use nginx_sys::{
        ERR_clear_error, SSL_get_error, SSL_shutdown, SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE,
    };
    let Some(ssl) = c.ssl() else {
        return Shut::Done;
    };
    // SAFETY: the connection's live OpenSSL state; the error queue is this thread's.
    let (n, e) = unsafe {
        ERR_clear_error();
        let n = SSL_shutdown(ssl);
        (
            n,
            if n < 0 {
                SSL_get_error(ssl, n) as u32
            } else {
                0
            },
        )
    };
    if n >= 0 {
        return Shut::Done;
    }
    match e {
        SSL_ERROR_WANT_WRITE => {
            c.write().set_ready(false);
            Shut::Pending
        }
        // The alert is sent; OpenSSL would read the peer's next.
        SSL_ERROR_WANT_READ => Shut::Done,
        e => {
            // SAFETY: as above.
            unsafe { ERR_clear_error() };
            stream_log!(
                NGX_LOG_INFO,
                c.log(),
                "SSL_shutdown() failed (SSL error {e}); the end of the \
                 client's input was not passed on"
            );
            Shut::Done
        }
    }
}

#[cfg(not(ngx_feature = "ssl"))]
fn tls_close_notify(_c: Connection) -> Shut {
    Shut::Done
}

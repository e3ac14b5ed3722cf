//! Zero-copy lanes for bulk transfer: splice(2) through a pipe between two plain sockets.
//!
//! A lane starts only when a direction has shown bulk traffic (a read filled the whole
//! userspace buffer) and its buffer is empty, so interactive and idle tunnels keep no
//! pipe. TLS connections never get a lane (their bytes must pass through OpenSSL).

use core::ffi::c_void;

use nginx_sys::{ngx_connection_t, ngx_pool_cleanup_add, ngx_pool_t, off_t};

/// Bytes a pipe may hold; larger pipes mean fewer syscalls per MiB.
const PIPE_SIZE: i32 = 256 * 1024;

/// One direction's pipe. `fds` are -1 until the lane starts.
pub struct Lane {
    fds: [i32; 2],
    /// Bytes in the pipe, not yet written to the destination.
    pub queued: usize,
    /// The pool cleanup that closes the pipe is registered (once per tunnel).
    cleanup: bool,
}

impl Lane {
    pub const fn new() -> Self {
        Lane {
            fds: [-1, -1],
            queued: 0,
            cleanup: false,
        }
    }

    pub fn active(&self) -> bool {
        self.fds[0] >= 0
    }

    /// Opens the pipe; its descriptors are closed with `pool`.
    ///
    /// # Safety
    /// `pool` must be the request's pool, and `self` must live as long as it.
    pub unsafe fn start(&mut self, pool: *mut ngx_pool_t) -> bool {
        if !self.cleanup {
            let cln = ngx_pool_cleanup_add(pool, 0);
            if cln.is_null() {
                return false;
            }
            (*cln).handler = Some(close_lane);
            (*cln).data = (self as *mut Lane).cast();
            self.cleanup = true;
        }
        let mut fds = [-1i32; 2];
        if libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) != 0 {
            return false;
        }
        // A smaller pipe only costs more syscalls.
        libc::fcntl(fds[1], libc::F_SETPIPE_SZ, PIPE_SIZE);
        self.fds = fds;
        true
    }

    /// Closes an empty pipe (a quiet tunnel); the next bulk read starts a new one.
    pub fn stop(&mut self) {
        if self.queued == 0 {
            self.close();
        }
    }

    /// Drops what the pipe holds (its destination failed) and closes it.
    pub fn discard(&mut self) {
        self.queued = 0;
        self.close();
    }

    fn close(&mut self) {
        for fd in &mut self.fds {
            if *fd >= 0 {
                // SAFETY: the descriptor is this lane's own open pipe end.
                unsafe { libc::close(*fd) };
                *fd = -1;
            }
        }
    }
}

unsafe extern "C" fn close_lane(data: *mut c_void) {
    // SAFETY: registered by Lane::start with a Lane that lives in the same pool.
    let lane = &mut *data.cast::<Lane>();
    lane.close();
}

/// The outcome of [`pump`], as for the copying pump.
#[derive(Default)]
pub struct Spliced {
    pub moved: bool,
    pub src_eof: bool,
    pub src_error: bool,
    pub dst_error: bool,
}

fn would_block() -> bool {
    let e = std::io::Error::last_os_error().raw_os_error();
    e == Some(libc::EAGAIN) || e == Some(libc::EWOULDBLOCK)
}

/// Moves bytes `src` → pipe → `dst` until neither side can make progress, keeping nginx's
/// `ready` flags and byte counters as its own recv/send would.
///
/// # Safety
/// `src` and `dst` must be live plain-socket connections and `lane` started.
pub unsafe fn pump(
    src: *mut ngx_connection_t,
    dst: *mut ngx_connection_t,
    lane: &mut Lane,
    mut can_recv: bool,
    can_send: bool,
    mut received: Option<&mut off_t>,
) -> Spliced {
    let flags = libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE;
    let mut out = Spliced::default();
    loop {
        let mut progress = false;
        if can_send && lane.queued > 0 && (*(*dst).write).ready() != 0 {
            let n = libc::splice(
                lane.fds[0],
                core::ptr::null_mut(),
                (*dst).fd,
                core::ptr::null_mut(),
                lane.queued,
                flags,
            );
            if n > 0 {
                lane.queued -= n as usize;
                (*dst).sent += n as off_t;
                progress = true;
            } else if n < 0 && would_block() {
                (*(*dst).write).set_ready(0);
            } else {
                out.dst_error = true;
                return out;
            }
        }
        if can_recv && (*(*src).read).ready() != 0 {
            let room = PIPE_SIZE as usize - lane.queued.min(PIPE_SIZE as usize);
            if room > 0 {
                let n = libc::splice(
                    (*src).fd,
                    core::ptr::null_mut(),
                    lane.fds[1],
                    core::ptr::null_mut(),
                    room,
                    flags,
                );
                if n > 0 {
                    lane.queued += n as usize;
                    if let Some(count) = received.as_deref_mut() {
                        *count += n as off_t;
                    }
                    progress = true;
                } else if n == 0 {
                    (*(*src).read).set_ready(0);
                    (*(*src).read).set_eof(1);
                    out.src_eof = true;
                    can_recv = false;
                } else if would_block() {
                    // EAGAIN comes from the socket only when the pipe is empty; with bytes
                    // queued it may mean a full pipe, and clearing `ready` would lose the
                    // edge-triggered wakeup.
                    if lane.queued == 0 {
                        (*(*src).read).set_ready(0);
                    }
                } else {
                    (*(*src).read).set_ready(0);
                    (*(*src).read).set_error(1);
                    out.src_error = true;
                    can_recv = false;
                }
            }
        }
        if !progress {
            return out;
        }
        out.moved = true;
    }
}

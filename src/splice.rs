//! Zero-copy lanes for bulk transfer: splice(2) through a pipe between two plain sockets.
//!
//! A lane starts only when a direction has shown bulk traffic (a read filled the whole
//! userspace buffer) and its buffer is empty, so interactive and idle tunnels keep no
//! pipe. TLS connections never get a lane (their bytes must pass through OpenSSL).

use core::ptr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nginx_sys::off_t;

use crate::conn::Connection;

/// Bytes a lane's pipe asks to hold: larger pipes mean fewer wake-ups and syscalls per
/// GiB (measured: 1 MiB, the default `pipe-max-size`, against 256 KiB costs a fifth less
/// CPU from TCP into TCP). The pipe's pages are only those queued in it.
const PIPE_SIZE: i32 = 1024 * 1024;

/// One direction's pipe, `(read end, write end)` while the lane runs; dropping the lane
/// (with the tunnel, when the request's pool goes) closes it.
pub struct Lane {
    fds: Option<(OwnedFd, OwnedFd)>,
    /// Bytes in the pipe, not yet written to the destination.
    pub queued: usize,
}

impl Lane {
    pub const fn new() -> Self {
        Lane {
            fds: None,
            queued: 0,
        }
    }

    pub fn active(&self) -> bool {
        self.fds.is_some()
    }

    /// Opens the pipe.
    pub fn start(&mut self) -> bool {
        let mut fds = [-1i32; 2];
        // SAFETY: pipe2 writes two descriptors into the array it is given.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return false;
        }
        // SAFETY: pipe2 succeeded: both are open descriptors that nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // A pipe that cannot grow (`pipe-max-size`, the user's `pipe-user-pages-soft`)
        // keeps its own size: splicing into it stops when it is full, and it only costs
        // more syscalls.
        // SAFETY: fcntl on an open descriptor.
        unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
        self.fds = Some((read, write));
        true
    }

    /// Closes an empty pipe (a quiet tunnel); the next bulk read starts a new one.
    pub fn stop(&mut self) {
        if self.queued == 0 {
            self.fds = None;
        }
    }

    /// Drops what the pipe holds (its destination failed) and closes it.
    pub fn discard(&mut self) {
        self.queued = 0;
        self.fds = None;
    }

    /// The pipe's `(read end, write end)`; -1 while the lane does not run.
    fn raw(&self) -> (i32, i32) {
        self.fds
            .as_ref()
            .map_or((-1, -1), |(r, w)| (r.as_raw_fd(), w.as_raw_fd()))
    }
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
/// The caller has checked that both are plain sockets and started the lane.
pub fn pump(
    src: Connection,
    dst: Connection,
    lane: &mut Lane,
    mut can_recv: bool,
    can_send: bool,
    mut received: Option<&mut off_t>,
) -> Spliced {
    let flags = libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE;
    let (pipe_out, pipe_in) = lane.raw();
    let mut out = Spliced::default();
    loop {
        let mut progress = false;
        if can_send && lane.queued > 0 && dst.write().ready() {
            // SAFETY: splice between the lane's pipe and the connection's open socket; no
            // offsets.
            let n = unsafe {
                libc::splice(
                    pipe_out,
                    ptr::null_mut(),
                    dst.fd(),
                    ptr::null_mut(),
                    lane.queued,
                    flags,
                )
            };
            if n > 0 {
                lane.queued -= n as usize;
                dst.add_sent(n as off_t);
                progress = true;
            } else if n < 0 && would_block() {
                dst.write().set_ready(false);
            } else {
                out.dst_error = true;
                return out;
            }
        }
        if can_recv && src.read().ready() {
            let room = (PIPE_SIZE as usize).saturating_sub(lane.queued);
            if room > 0 {
                // SAFETY: as above, from the socket into the pipe.
                let n = unsafe {
                    libc::splice(
                        src.fd(),
                        ptr::null_mut(),
                        pipe_in,
                        ptr::null_mut(),
                        room,
                        flags,
                    )
                };
                let rev = src.read();
                if n > 0 {
                    lane.queued += n as usize;
                    if let Some(count) = received.as_deref_mut() {
                        *count += n as off_t;
                    }
                    progress = true;
                } else if n == 0 {
                    rev.set_ready(false);
                    rev.set_eof(true);
                    out.src_eof = true;
                    can_recv = false;
                } else if would_block() {
                    // EAGAIN comes from the socket only when the pipe is empty; with bytes
                    // queued it may mean a full pipe, and clearing `ready` would lose the
                    // edge-triggered wakeup.
                    if lane.queued == 0 {
                        rev.set_ready(false);
                    }
                } else {
                    rev.set_ready(false);
                    rev.set_error();
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

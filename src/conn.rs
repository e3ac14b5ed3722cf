//! Handles on nginx's connections and their events, made once where a raw pointer enters
//! (the request's client connection, its upstream's peer connection), so that the relay
//! reads `pc.read().ready()` where it would read `(*(*pc).read).ready() != 0`.
//!
//! A handle is a copy of the pointer, not a Rust reference: during the calls the relay
//! makes, nginx changes the same structures through its own pointers (a write filter
//! clears `ready`, a send adds to `sent`), which a reference held across those calls
//! would forbid. Each accessor touches the field at the moment it is called.

use core::mem::MaybeUninit;
use core::ptr::{self, NonNull};

use nginx_sys::{
    ngx_connection_t, ngx_event_t, ngx_handle_read_event, ngx_handle_write_event, ngx_log_t,
    ngx_msec_t, ngx_post_event, ngx_posted_events, off_t,
};
use ngx::core::Status;

/// A live nginx connection.
#[derive(Clone, Copy)]
pub struct Connection(NonNull<ngx_connection_t>);

impl Connection {
    /// # Safety
    /// `c` must be null or a connection that stays open while the handle is used.
    pub unsafe fn from_ptr(c: *mut ngx_connection_t) -> Option<Self> {
        NonNull::new(c).map(Connection)
    }

    pub fn as_ptr(self) -> *mut ngx_connection_t {
        self.0.as_ptr()
    }

    fn get(&self) -> &ngx_connection_t {
        // SAFETY: the handle's contract (`from_ptr`): the connection is open. The reference
        // ends with the accessor that asked for it.
        unsafe { self.0.as_ref() }
    }

    fn get_mut(&mut self) -> &mut ngx_connection_t {
        // SAFETY: as in `get`.
        unsafe { self.0.as_mut() }
    }

    pub fn read(self) -> Event {
        Event(NonNull::new(self.get().read).expect("connection read event"))
    }

    pub fn write(self) -> Event {
        Event(NonNull::new(self.get().write).expect("connection write event"))
    }

    pub fn log(self) -> *mut ngx_log_t {
        self.get().log
    }

    pub fn fd(self) -> i32 {
        self.get().fd
    }

    pub fn is_tls(self) -> bool {
        !self.get().ssl.is_null()
    }

    /// OpenSSL's connection, if this one is TLS.
    #[cfg(ngx_feature = "ssl")]
    pub fn ssl(self) -> Option<*mut nginx_sys::SSL> {
        // SAFETY: a non-null `ssl` is nginx's live TLS state of this connection.
        unsafe { self.get().ssl.as_ref() }.map(|s| s.connection)
    }

    /// Whether the connection's own address is a unix socket's (`false` if not known: an
    /// upstream connection leaves it unset).
    pub fn is_unix(self) -> bool {
        // SAFETY: `sockaddr` is null or the connection's address.
        unsafe { is_unix_addr(self.get().sockaddr) }
    }

    /// Bytes nginx has written to the connection.
    pub fn sent(self) -> off_t {
        self.get().sent
    }

    /// Counts bytes written past nginx's own send (splice(2)).
    pub fn add_sent(mut self, n: off_t) {
        self.get_mut().sent += n;
    }

    /// Marks the connection failed, as nginx does on a write error (no lingering close).
    pub fn set_error(mut self) {
        self.get_mut().set_error(1);
    }

    /// Reads through the connection's `recv` (plain or TLS): bytes read, 0 at the end,
    /// `NGX_AGAIN` or `NGX_ERROR`; clears `read().ready()` when nothing is left.
    pub fn recv(self, buf: &mut [MaybeUninit<u8>]) -> isize {
        let recv = self.get().recv.expect("connection recv handler");
        // SAFETY: an open connection's recv, given memory it may write `buf.len()` bytes to.
        unsafe { recv(self.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
    }

    /// Writes through the connection's `send`: bytes written, `NGX_AGAIN` or `NGX_ERROR`.
    pub fn send(self, buf: &[u8]) -> isize {
        let send = self.get().send.expect("connection send handler");
        // SAFETY: an open connection's send; it only reads `buf`.
        unsafe { send(self.as_ptr(), buf.as_ptr().cast_mut(), buf.len()) }
    }
}

/// A connection's read or write event.
#[derive(Clone, Copy)]
pub struct Event(NonNull<ngx_event_t>);

impl Event {
    fn get(&self) -> &ngx_event_t {
        // SAFETY: an event of an open connection (see `Connection`); the reference ends
        // with the accessor.
        unsafe { self.0.as_ref() }
    }

    fn get_mut(&mut self) -> &mut ngx_event_t {
        // SAFETY: as in `get`.
        unsafe { self.0.as_mut() }
    }

    pub fn as_ptr(self) -> *mut ngx_event_t {
        self.0.as_ptr()
    }

    pub fn ready(self) -> bool {
        self.get().ready() != 0
    }

    pub fn set_ready(mut self, on: bool) {
        self.get_mut().set_ready(on.into());
    }

    pub fn eof(self) -> bool {
        self.get().eof() != 0
    }

    pub fn set_eof(mut self, on: bool) {
        self.get_mut().set_eof(on.into());
    }

    pub fn set_error(mut self) {
        self.get_mut().set_error(1);
    }

    pub fn timedout(self) -> bool {
        self.get().timedout() != 0
    }

    pub fn set_timedout(mut self, on: bool) {
        self.get_mut().set_timedout(on.into());
    }

    pub fn timer_set(self) -> bool {
        self.get().timer_set() != 0
    }

    /// Arms (or moves) the event's timer.
    pub fn add_timer(self, msec: ngx_msec_t) {
        // SAFETY: a live event; nginx's timer tree is the worker's own.
        unsafe { nginx_sys::ngx_add_timer(self.as_ptr(), msec) }
    }

    pub fn del_timer(self) {
        if self.timer_set() {
            // SAFETY: the event's timer is in the tree.
            unsafe { nginx_sys::ngx_del_timer(self.as_ptr()) }
        }
    }

    /// Queues the event to run after the current one, in this cycle of the event loop.
    pub fn post(self) {
        // SAFETY: a live event, and nginx's posted queue of this worker.
        unsafe { ngx_post_event(self.as_ptr(), ptr::addr_of_mut!(ngx_posted_events)) }
    }

    /// Asks the event module for the next read event (`ngx_handle_read_event`).
    pub fn watch_read(self) -> Status {
        // SAFETY: the read event of an open connection.
        Status(unsafe { ngx_handle_read_event(self.as_ptr(), 0) })
    }

    /// Asks the event module for the next write event (`ngx_handle_write_event`).
    pub fn watch_write(self) -> Status {
        // SAFETY: the write event of an open connection.
        Status(unsafe { ngx_handle_write_event(self.as_ptr(), 0) })
    }
}

/// Whether `sa` is a unix socket's address (null: not known, taken as not).
///
/// # Safety
/// `sa` must be null or a valid socket address.
pub unsafe fn is_unix_addr(sa: *const nginx_sys::sockaddr) -> bool {
    sa.as_ref()
        .is_some_and(|sa| i32::from(sa.sa_family) == libc::AF_UNIX)
}

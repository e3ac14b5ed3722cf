//! A daemon that answers before reading the whole request body, over a connection that
//! ends the response (HTTP/1.0 to the daemon, nginx's default), closes with bytes unread:
//! its kernel then resets the connection instead of closing it. dockerd does so on every
//! `POST /build` whose context archive has padding after the end-of-archive blocks, as
//! docker-py's have. For a response whose end is the close, that reset is its end: nginx
//! would take it as a failed read and end the response to the client without its last
//! chunk (docker-py: `IncompleteRead(0 bytes read)`).

use nginx_sys::{
    ngx_connection_log_error_e_NGX_ERROR_IGNORE_ECONNRESET as IGNORE_ECONNRESET, ngx_connection_t,
    ngx_http_upstream_t, ngx_io, u_char, NGX_LOG_INFO,
};
use ngx::core::Status;

use crate::conn::Connection;

/// Takes a reset of the daemon's plain connection as the end of a response that ends at
/// the close. TLS connections keep nginx's handling: there a reset is no end (the end is
/// the daemon's close_notify). `u` has processed the response head.
pub fn end_at_reset(u: &mut ngx_http_upstream_t) {
    // SAFETY: the upstream's peer connection, null or open while the request is.
    let Some(pc) = (unsafe { u.peer.connection.as_mut() }) else {
        return;
    };
    if !pc.ssl.is_null() {
        return;
    }
    // SAFETY: nginx's I/O table, set once at start.
    match (pc.recv, unsafe { ngx_io.recv }) {
        // By address: the plain socket recv nginx gives every connection.
        (Some(a), Some(b)) if a as usize == b as usize => {}
        _ => return,
    }
    // ngx_unix_recv() then answers a reset with 0 and no log line; `recv` tells it from
    // the close it answers the same way.
    pc.set_log_error(IGNORE_ECONNRESET);
    pc.recv = Some(recv);
}

unsafe extern "C" fn recv(
    c: *mut ngx_connection_t,
    buf: *mut u_char,
    size: usize,
) -> libc::ssize_t {
    let Some(plain) = ngx_io.recv else {
        return Status::NGX_ERROR.0;
    };
    let n = plain(c, buf, size);
    // SAFETY: nginx calls recv with its live connection.
    let Some(c) = Connection::from_ptr(c) else {
        return n;
    };
    let rev = c.read();
    if n == 0 && !rev.eof() {
        rev.set_eof(true);
        stream_log!(
            NGX_LOG_INFO,
            c.log(),
            "the daemon reset the connection after its response, with request \
             bytes unread; the response ends there"
        );
    }
    n
}

//! What the module reads from nginx's TLS connections.

use crate::conn::Connection;

/// The SHA-256 digest of the client's certificate, if the connection is TLS, the client
/// sent one and nginx's verification (`ssl_verify_client`) accepted it.
#[cfg(ngx_feature = "ssl")]
pub fn verified_client_sha256(c: Connection) -> Option<[u8; 32]> {
    use nginx_sys::{
        EVP_sha256, SSL_get1_peer_certificate, SSL_get_verify_result, X509_digest, X509_free,
        X509_V_OK,
    };
    let ssl = c.ssl()?;
    // SAFETY: `ssl` is the connection's live OpenSSL state.
    if unsafe { SSL_get_verify_result(ssl) } != X509_V_OK as core::ffi::c_long {
        return None;
    }
    // SAFETY: as above; the certificate returned is a reference that is ours to free.
    let cert = unsafe { SSL_get1_peer_certificate(ssl) };
    if cert.is_null() {
        return None;
    }
    let mut md = [0u8; 32];
    let mut len: core::ffi::c_uint = 0;
    // SAFETY: a live certificate, and room for a SHA-256 digest; then our reference goes.
    let ok = unsafe {
        let ok = X509_digest(cert, EVP_sha256(), md.as_mut_ptr(), &mut len);
        X509_free(cert);
        ok
    };
    (ok == 1 && len as usize == md.len()).then_some(md)
}

#[cfg(not(ngx_feature = "ssl"))]
pub fn verified_client_sha256(_c: Connection) -> Option<[u8; 32]> {
    None
}

/// Whether the peer of `c` ended its side with a TLS close_notify. nginx reads a TLS
/// connection that ends without one (a reset, a FIN after half a record, a process
/// killed) as a plain EOF; this tells the two apart for the log. Plain connections: true.
#[cfg(ngx_feature = "ssl")]
pub fn ended_cleanly(c: Connection) -> bool {
    use nginx_sys::{SSL_get_shutdown, SSL_RECEIVED_SHUTDOWN};
    // SAFETY: the connection's live OpenSSL state.
    c.ssl().map_or(true, |ssl| {
        (unsafe { SSL_get_shutdown(ssl) } & SSL_RECEIVED_SHUTDOWN as i32) != 0
    })
}

#[cfg(not(ngx_feature = "ssl"))]
pub fn ended_cleanly(_c: Connection) -> bool {
    true
}

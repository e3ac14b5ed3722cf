//! What the module reads from nginx's TLS connections.

use nginx_sys::ngx_connection_t;

/// The SHA-256 digest of the client's certificate, if the connection is TLS, the client
/// sent one and nginx's verification (`ssl_verify_client`) accepted it.
///
/// # Safety
/// `c` must be a live connection.
#[cfg(ngx_feature = "ssl")]
pub unsafe fn verified_client_sha256(c: *mut ngx_connection_t) -> Option<[u8; 32]> {
    use nginx_sys::{
        EVP_sha256, SSL_get1_peer_certificate, SSL_get_verify_result, X509_digest, X509_free,
        X509_V_OK,
    };
    if (*c).ssl.is_null() {
        return None;
    }
    let ssl = (*(*c).ssl).connection;
    if SSL_get_verify_result(ssl) != X509_V_OK as core::ffi::c_long {
        return None;
    }
    let cert = SSL_get1_peer_certificate(ssl);
    if cert.is_null() {
        return None;
    }
    let mut md = [0u8; 32];
    let mut len: core::ffi::c_uint = 0;
    let ok = X509_digest(cert, EVP_sha256(), md.as_mut_ptr(), &mut len);
    // SAFETY: SSL_get1_peer_certificate returned a reference that is ours to free.
    X509_free(cert);
    (ok == 1 && len as usize == md.len()).then_some(md)
}

#[cfg(not(ngx_feature = "ssl"))]
pub unsafe fn verified_client_sha256(_c: *mut ngx_connection_t) -> Option<[u8; 32]> {
    None
}

/// Whether the peer of `c` ended its side with a TLS close_notify. nginx reads a TLS
/// connection that ends without one (a reset, a FIN after half a record, a process
/// killed) as a plain EOF; this tells the two apart for the log. Plain connections: true.
///
/// # Safety
/// `c` must be a live connection.
#[cfg(ngx_feature = "ssl")]
pub unsafe fn ended_cleanly(c: *mut ngx_connection_t) -> bool {
    use nginx_sys::{SSL_get_shutdown, SSL_RECEIVED_SHUTDOWN};
    (*c).ssl.is_null()
        || SSL_get_shutdown((*(*c).ssl).connection) & SSL_RECEIVED_SHUTDOWN as i32 != 0
}

#[cfg(not(ngx_feature = "ssl"))]
pub unsafe fn ended_cleanly(_c: *mut ngx_connection_t) -> bool {
    true
}

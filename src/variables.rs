//! `$docker_stream`: "upgrade" when the module switched the response to a tunnel, "101"
//! when the daemon answered 101 itself, empty otherwise.

use nginx_sys::{
    ngx_conf_t, ngx_http_add_variable, ngx_http_request_t, ngx_http_variable_value_t, ngx_int_t,
    ngx_str_t, NGX_ERROR, NGX_HTTP_VAR_NOCACHEABLE, NGX_OK,
};
use ngx::ngx_string;

use crate::guard;
use crate::tunnel::{self, Mode};

/// # Safety
/// `cf` must be the configuration being parsed (preconfiguration).
pub unsafe fn register(cf: *mut ngx_conf_t) -> ngx_int_t {
    let mut name: ngx_str_t = ngx_string!("docker_stream");
    let v = ngx_http_add_variable(cf, &mut name, NGX_HTTP_VAR_NOCACHEABLE as _);
    if v.is_null() {
        return NGX_ERROR as ngx_int_t;
    }
    (*v).get_handler = Some(get_docker_stream);
    NGX_OK as ngx_int_t
}

unsafe extern "C" fn get_docker_stream(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    let log = (*(*r).connection).log;
    guard::catch_status(log, || {
        // SAFETY: nginx passes a live request and a value slot to fill.
        unsafe {
            let text: &'static [u8] = match tunnel::get((*r).main) {
                Some(t) if t.mode == Mode::Switched => b"upgrade",
                Some(_) => b"101",
                None => b"",
            };
            (*v).set_len(text.len() as u32);
            (*v).set_valid(1);
            (*v).set_no_cacheable(0);
            (*v).set_not_found(0);
            (*v).data = text.as_ptr().cast_mut();
        }
        NGX_OK as ngx_int_t
    })
}

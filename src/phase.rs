//! Adding a handler to one of nginx's request phases (postconfiguration), as nginx's own
//! modules do with `ngx_array_push(&cmcf->phases[...].handlers)`.

use nginx_sys::{
    ngx_array_push, ngx_conf_t, ngx_http_handler_pt, ngx_http_phases, ngx_http_request_t, ngx_int_t,
};
use ngx::core::Status;
use ngx::http::{HttpModuleMainConf, NgxHttpCoreModule};

/// Appends `handler` to `phase`. Within a phase, handlers added later run earlier.
///
/// # Safety
/// `cf` is the configuration being parsed, in a module's postconfiguration.
pub unsafe fn add(
    cf: *mut ngx_conf_t,
    phase: ngx_http_phases,
    handler: unsafe extern "C" fn(*mut ngx_http_request_t) -> ngx_int_t,
) -> Status {
    let Some(cmcf) = NgxHttpCoreModule::main_conf_mut(&*cf) else {
        return Status::NGX_ERROR;
    };
    let h = ngx_array_push(&mut cmcf.phases[phase as usize].handlers).cast::<ngx_http_handler_pt>();
    let Some(h) = h.as_mut() else {
        return Status::NGX_ERROR;
    };
    *h = Some(handler);
    Status::NGX_OK
}

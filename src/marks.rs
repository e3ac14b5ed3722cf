//! Per-request state of the module's parts that must outlive internal redirects (which
//! clear module contexts) and the phases' second run after a guard read a body: kept in
//! the request pool's cleanup list, each entry tagged by a magic number of its kind.
//!
//! The entries share one handler, and the magic number, not the handler's address, tells
//! the kinds apart: the linker may fold identical functions into one address, so empty
//! handlers of different kinds could not be told apart by address.

use core::ffi::c_void;
use core::ptr;

use nginx_sys::{ngx_http_request_t, ngx_pool_cleanup_add};

/// The `100 Continue` held back (expect.rs).
pub const HELD_100: u64 = u64::from_be_bytes(*b"nds-held");
/// What the rules and guards decided (api_rules.rs).
pub const VERDICT: u64 = u64::from_be_bytes(*b"nds-verd");
/// The body-size budget of a guarded body (body_limit.rs).
pub const BUDGET: u64 = u64::from_be_bytes(*b"nds-budg");

#[repr(C)]
struct Marked<T> {
    magic: u64,
    value: T,
}

/// Does nothing: the pool frees the memory. Only here to mark our entries.
unsafe extern "C" fn mark(data: *mut c_void) {
    // Distinct from any other empty function in the module (see the module docs).
    ptr::write_volatile(data.cast::<u8>(), *data.cast::<u8>());
}

/// The value of kind `magic` recorded for `r`, or null.
///
/// # Safety
/// `r` is a live request; `T` is the type stored under `magic`.
pub unsafe fn find<T>(r: *mut ngx_http_request_t, magic: u64) -> *mut T {
    let mut c = (*(*r).pool).cleanup;
    while !c.is_null() {
        let ours = (*c)
            .handler
            .is_some_and(|h| h as usize == mark as *const () as usize);
        if ours && !(*c).data.is_null() {
            let m = (*c).data.cast::<Marked<T>>();
            if (*m).magic == magic {
                return ptr::addr_of_mut!((*m).value);
            }
        }
        c = (*c).next;
    }
    ptr::null_mut()
}

/// Records `value` as the kind `magic` for `r` (replacing an earlier one); null when the
/// pool is out of memory.
///
/// # Safety
/// `r` is a live request; `T` has no destructor to run (the pool frees the memory).
pub unsafe fn set<T: Copy>(r: *mut ngx_http_request_t, magic: u64, value: T) -> *mut T {
    let found = find::<T>(r, magic);
    if !found.is_null() {
        found.write(value);
        return found;
    }
    let c = ngx_pool_cleanup_add((*r).pool, core::mem::size_of::<Marked<T>>());
    if c.is_null() {
        return ptr::null_mut();
    }
    let m = (*c).data.cast::<Marked<T>>();
    m.write(Marked { magic, value });
    (*c).handler = Some(mark);
    ptr::addr_of_mut!((*m).value)
}

/// Forgets the kind `magic` for `r`.
///
/// # Safety
/// `r` is a live request.
pub unsafe fn clear(r: *mut ngx_http_request_t, magic: u64) {
    let v = find::<u8>(r, magic);
    if !v.is_null() {
        // The magic sits just before the value (repr(C), the value's alignment at most
        // that of u64 for every kind here).
        let m = v.cast::<u64>().sub(1);
        m.write(0);
    }
}

//! Per-request state of the module's parts that must outlive internal redirects (which
//! clear module contexts) and the phases' second run after a guard read a body: kept in
//! the request pool's cleanup list, each entry tagged by a magic number of its kind.
//!
//! The entries share one handler, and the magic number, not the handler's address, tells
//! the kinds apart: the linker may fold identical functions into one address, so empty
//! handlers of different kinds could not be told apart by address.

use core::ffi::c_void;
use core::ptr;

use nginx_sys::ngx_pool_cleanup_add;
use ngx::http::Request;

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

/// The value of kind `magic` recorded for `r`. It lives as long as the request's pool.
///
/// # Safety
/// `T` is the type stored under `magic`, and `'a` does not outlive the request's pool.
pub unsafe fn find<'a, T>(r: &Request, magic: u64) -> Option<&'a mut T> {
    let m = find_entry(r, magic)?;
    // SAFETY: the entry of kind `magic` is a `Marked<T>` (the caller's contract).
    Some(unsafe { &mut (*m.cast::<Marked<T>>()).value })
}

/// Records `value` as the kind `magic` for `r` (replacing an earlier one); `None` when
/// the pool is out of memory.
///
/// # Safety
/// As for [`find`]; `T` has no destructor to run (the pool frees the memory).
pub unsafe fn set<'a, T: Copy>(r: &Request, magic: u64, value: T) -> Option<&'a mut T> {
    if let Some(found) = find::<T>(r, magic) {
        *found = value;
        return Some(found);
    }
    // SAFETY: a cleanup entry with room for the value, from the request's live pool.
    unsafe {
        let c = ngx_pool_cleanup_add(r.pool().as_ptr(), core::mem::size_of::<Marked<T>>());
        let c = c.as_mut()?;
        let m = c.data.cast::<Marked<T>>();
        m.write(Marked { magic, value });
        c.handler = Some(mark);
        Some(&mut (*m).value)
    }
}

/// Forgets the kind `magic` for `r`.
pub fn clear(r: &Request, magic: u64) {
    if let Some(m) = find_entry(r, magic) {
        // SAFETY: the entry's magic, its first field (repr(C)).
        unsafe { m.write(0) };
    }
}

/// The entry of kind `magic` (a pointer to its magic, the first field of every kind).
fn find_entry(r: &Request, magic: u64) -> Option<*mut u64> {
    let mut c = r.pool().as_ref().cleanup;
    // SAFETY: the live request's pool and its cleanup list; entries whose handler is
    // `mark` start with a magic.
    unsafe {
        while let Some(entry) = c.as_ref() {
            let ours = entry
                .handler
                .is_some_and(|h| h as usize == mark as *const () as usize);
            let m = entry.data.cast::<u64>();
            if ours && !m.is_null() && *m == magic {
                return Some(m);
            }
            c = entry.next;
        }
    }
    None
}

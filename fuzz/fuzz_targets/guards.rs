//! `guards::check_body` on arbitrary bodies: see src/guards.rs for the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| docker_stream_logic_fuzz::guards::check(data));

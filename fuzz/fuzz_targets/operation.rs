//! `classify` on arbitrary method and path bytes: see src/operation.rs for the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| docker_stream_logic_fuzz::operation::check(data));

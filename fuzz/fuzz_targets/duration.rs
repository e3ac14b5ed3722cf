//! `parse_timeout` on arbitrary UTF-8: see src/duration.rs for the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| docker_stream_logic_fuzz::duration::check(data));

//! `stream_type` on arbitrary bytes: see src/content_type.rs for the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| docker_stream_logic_fuzz::content_type::check(data));

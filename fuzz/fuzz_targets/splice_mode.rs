//! `SpliceMode::parse` on arbitrary bytes: see src/splice_mode.rs for the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| docker_stream_logic_fuzz::splice_mode::check(data));

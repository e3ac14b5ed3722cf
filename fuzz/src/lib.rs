//! The checks behind the fuzz targets, kept in a library so that `cargo test` here replays
//! the seed corpus and the saved crash inputs (tests/replay.rs) on stable Rust, without
//! libFuzzer or sanitizers. Each `check` panics when an invariant does not hold.

pub mod content_type;
pub mod duration;
pub mod guards;
pub mod operation;
pub mod splice_mode;

/// Runs the check of the target named `target` (a fuzz target's name) on `data`.
pub fn check(target: &str, data: &[u8]) {
    match target {
        "content_type" => content_type::check(data),
        "duration" => duration::check(data),
        "guards" => guards::check(data),
        "operation" => operation::check(data),
        "splice_mode" => splice_mode::check(data),
        _ => panic!("unknown fuzz target {target:?}"),
    }
}

/// The fuzz targets, as named in Cargo.toml, fuzz/corpus/ and fuzz/artifacts/.
pub const TARGETS: [&str; 5] = [
    "content_type",
    "duration",
    "guards",
    "operation",
    "splice_mode",
];

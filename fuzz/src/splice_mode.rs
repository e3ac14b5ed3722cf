//! `SpliceMode::parse` on arbitrary bytes: never panics, and agrees with a plain
//! reference (ASCII-lowercase, then one of the three keywords); a parsed mode's rule
//! splices into a unix socket whenever it splices anything into TCP.

use docker_stream_logic::splice_mode::SpliceMode;

fn reference(value: &[u8]) -> Option<SpliceMode> {
    match value.to_ascii_lowercase().as_slice() {
        b"off" => Some(SpliceMode::Off),
        b"on" => Some(SpliceMode::On),
        b"auto" => Some(SpliceMode::Auto),
        _ => None,
    }
}

/// The fuzz target's body: panics when an invariant does not hold.
pub fn check(data: &[u8]) {
    let got = SpliceMode::parse(data);
    assert_eq!(
        got,
        reference(data),
        "input {:?}",
        String::from_utf8_lossy(data)
    );
    assert_eq!(SpliceMode::parse(&data.to_ascii_uppercase()), got);
    if let Some(mode) = got {
        for from_unix in [false, true] {
            assert!(!mode.splices(from_unix, false) || mode.splices(from_unix, true));
        }
    }
}

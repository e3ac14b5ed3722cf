//! `stream_type` on arbitrary bytes: never panics, and agrees with a plain reference
//! implementation (cut at the first `;`, ASCII-lowercase, trim spaces and tabs, compare).

use docker_stream_logic::content_type::{stream_type, StreamType};

const RAW: &str = "application/vnd.docker.raw-stream";
const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";

fn reference(value: &[u8]) -> Option<StreamType> {
    let essence = value.split(|&b| b == b';').next().unwrap_or_default();
    let lower = essence.to_ascii_lowercase();
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = lower.iter().position(|b| !is_ows(b)).unwrap_or(lower.len());
    let end = lower
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    match &lower[start..end.max(start)] {
        e if e == RAW.as_bytes() => Some(StreamType::Raw),
        e if e == MULTIPLEXED.as_bytes() => Some(StreamType::Multiplexed),
        _ => None,
    }
}

/// The fuzz target's body: panics when an invariant does not hold.
pub fn check(data: &[u8]) {
    let got = stream_type(data);
    assert_eq!(
        got,
        reference(data),
        "input {:?}",
        String::from_utf8_lossy(data)
    );

    // Case does not matter, and neither do parameters after the first `;`.
    assert_eq!(stream_type(&data.to_ascii_uppercase()), got);
    let mut with_param = data.to_vec();
    with_param.extend_from_slice(b"; x=\"y;z\"");
    assert_eq!(stream_type(&with_param), got);

    // Whatever the input, each known type framed by the input's bytes as parameters and
    // whitespace is still recognised.
    for (t, name) in [
        (StreamType::Raw, RAW),
        (StreamType::Multiplexed, MULTIPLEXED),
    ] {
        let mut v = b" \t".to_vec();
        v.extend_from_slice(name.as_bytes());
        v.extend_from_slice(b"\t ;");
        v.extend_from_slice(data);
        assert_eq!(stream_type(&v), Some(t));
    }
}

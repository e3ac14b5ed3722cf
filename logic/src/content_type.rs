//! Recognises the media types with which the Docker daemon announces a hijacked stream.
//! Pure logic: no nginx types, so it has plain unit tests and a fuzz target.

/// What kind of stream a response announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamType {
    /// `application/vnd.docker.raw-stream`: TTY output, or any stream before API 1.42.
    Raw,
    /// `application/vnd.docker.multiplexed-stream`: stdout/stderr framed (API >= 1.42).
    Multiplexed,
}

const RAW: &[u8] = b"application/vnd.docker.raw-stream";
const MULTIPLEXED: &[u8] = b"application/vnd.docker.multiplexed-stream";

/// Returns the stream type a Content-Type value announces, if any.
///
/// Media types are case-insensitive (RFC 9110 8.3.1) and may carry parameters and
/// surrounding whitespace: ` Application/VND.Docker.Raw-Stream ; charset=x` matches.
pub fn stream_type(value: &[u8]) -> Option<StreamType> {
    let essence = match memchr::memchr(b';', value) {
        Some(i) => &value[..i],
        None => value,
    };
    let essence = trim_ows(essence);
    if essence.eq_ignore_ascii_case(RAW) {
        Some(StreamType::Raw)
    } else if essence.eq_ignore_ascii_case(MULTIPLEXED) {
        Some(StreamType::Multiplexed)
    } else {
        None
    }
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_types() {
        assert_eq!(stream_type(RAW), Some(StreamType::Raw));
        assert_eq!(stream_type(MULTIPLEXED), Some(StreamType::Multiplexed));
    }

    #[test]
    fn case_whitespace_and_parameters() {
        assert_eq!(
            stream_type(b" Application/VND.Docker.Raw-Stream ; charset=utf-8"),
            Some(StreamType::Raw)
        );
        assert_eq!(
            stream_type(b"application/vnd.docker.multiplexed-stream;x=1"),
            Some(StreamType::Multiplexed)
        );
        assert_eq!(
            stream_type(b"\tapplication/vnd.docker.raw-stream\t"),
            Some(StreamType::Raw)
        );
    }

    #[test]
    fn near_misses() {
        for v in [
            &b""[..],
            b";",
            b"application/json",
            b"application/vnd.docker.raw-stream2",
            b"application/vnd.docker.raw-streamx; a=b",
            b"xapplication/vnd.docker.raw-stream",
            b"application/vnd.docker.raw stream",
            b"application/vnd.docker.raw-\0stream",
            b"text/plain; application/vnd.docker.raw-stream",
        ] {
            assert_eq!(stream_type(v), None, "{:?}", String::from_utf8_lossy(v));
        }
    }

    #[test]
    fn huge_value() {
        let mut v = RAW.to_vec();
        v.extend(std::iter::repeat_n(b' ', 1 << 20));
        v.extend_from_slice(b"; p=1");
        assert_eq!(stream_type(&v), Some(StreamType::Raw));
        assert_eq!(stream_type(&vec![b'a'; 1 << 20]), None);
    }
}

//! `docker_stream_splice auto | on | off`: which directions of a tunnel move bulk data
//! with splice(2) through a pipe instead of copying it through a userspace buffer.

/// The directive's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpliceMode {
    /// Always copy.
    Off,
    /// Splice every direction between plain sockets.
    On,
    /// Splice every direction but one from a unix socket into TCP. Measured on loopback
    /// as CPU seconds per GiB (scripts/bench): splicing into a unix socket, and from TCP
    /// into TCP, costs less than one copy through a 256 KiB buffer; from a unix socket
    /// into TCP it costs more (and moves less).
    Auto,
}

impl SpliceMode {
    /// Parses the directive's argument; case-insensitive, as nginx's own `on`/`off`.
    pub fn parse(value: &[u8]) -> Option<SpliceMode> {
        [
            (&b"off"[..], SpliceMode::Off),
            (b"on", SpliceMode::On),
            (b"auto", SpliceMode::Auto),
        ]
        .into_iter()
        .find(|(name, _)| value.eq_ignore_ascii_case(name))
        .map(|(_, mode)| mode)
    }

    /// Whether bulk data from a socket (a unix socket when `src_unix`) into a socket (a
    /// unix socket when `dst_unix`) is spliced; TLS connections are never spliced,
    /// whatever this says.
    pub fn splices(self, src_unix: bool, dst_unix: bool) -> bool {
        match self {
            SpliceMode::Off => false,
            SpliceMode::On => true,
            SpliceMode::Auto => dst_unix || !src_unix,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SpliceMode::{self, *};

    #[test]
    fn parses_the_three_keywords_in_any_case() {
        for (text, want) in [
            ("off", Some(Off)),
            ("on", Some(On)),
            ("auto", Some(Auto)),
            ("AUTO", Some(Auto)),
            ("On", Some(On)),
            ("", None),
            ("yes", None),
            ("autox", None),
            ("o", None),
            (" on", None),
        ] {
            assert_eq!(SpliceMode::parse(text.as_bytes()), want, "{text:?}");
        }
    }

    #[test]
    fn auto_splices_all_but_unix_into_tcp() {
        // (from unix, into unix)
        assert!(Auto.splices(true, true));
        assert!(Auto.splices(false, true));
        assert!(Auto.splices(false, false));
        assert!(!Auto.splices(true, false));
        for ends in [(false, false), (false, true), (true, false), (true, true)] {
            assert!(On.splices(ends.0, ends.1));
            assert!(!Off.splices(ends.0, ends.1));
        }
    }
}

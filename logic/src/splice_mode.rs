//! `docker_stream_splice auto | on | off`: which directions of a tunnel move bulk data
//! with splice(2) through a pipe instead of copying it through a userspace buffer.

/// The directive's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpliceMode {
    /// Always copy.
    Off,
    /// Splice every direction between plain sockets.
    On,
    /// Splice only into unix sockets. Measured on loopback (scripts/bench): splicing into
    /// a unix socket hands page references over, while splicing into TCP was slower than
    /// one copy through a 256 KiB buffer.
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

    /// Whether bulk data going into a socket (a unix socket when `dest_unix`) is spliced;
    /// TLS connections are never spliced, whatever this says.
    pub fn splices_into(self, dest_unix: bool) -> bool {
        match self {
            SpliceMode::Off => false,
            SpliceMode::On => true,
            SpliceMode::Auto => dest_unix,
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
    fn auto_splices_into_unix_sockets_only() {
        assert!(Auto.splices_into(true));
        assert!(!Auto.splices_into(false));
        assert!(On.splices_into(false) && On.splices_into(true));
        assert!(!Off.splices_into(false) && !Off.splices_into(true));
    }
}

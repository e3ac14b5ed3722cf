//! `parse_timeout` on arbitrary UTF-8: never panics, accepted values are at most MAX_MSEC,
//! only "off" gives `None`, and values round-trip through "<n>ms" and a canonical
//! "<d>d<h>h<m>m<s>s<ms>ms" spelling. The first 8 bytes, as a number of milliseconds, are
//! also written as "<n>ms" and "<n>" seconds and parsed.

use docker_stream_logic::duration::{parse_timeout, TimeError, MAX_MSEC};

/// "1d2h3m4s5ms", zero parts left out ("0ms" for zero).
fn canonical(mut ms: u64) -> String {
    let mut s = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size {
            s.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    if ms > 0 || s.is_empty() {
        s.push_str(&format!("{ms}ms"));
    }
    s
}

fn check_number(n: u64) {
    let ms = parse_timeout(&format!("{n}ms"));
    if n <= MAX_MSEC {
        assert_eq!(ms, Ok(Some(n)), "{n}ms");
    } else {
        assert!(matches!(ms, Err(TimeError::TooLarge(_))), "{n}ms: {ms:?}");
    }
    let secs = parse_timeout(&n.to_string());
    match n.checked_mul(1000) {
        Some(v) if v <= MAX_MSEC => assert_eq!(secs, Ok(Some(v)), "{n}"),
        _ => assert!(matches!(secs, Err(TimeError::TooLarge(_))), "{n}: {secs:?}"),
    }
}

/// The fuzz target's body: panics when an invariant does not hold.
pub fn check(data: &[u8]) {
    if data.len() >= 8 {
        let n = u64::from_le_bytes(data[..8].try_into().unwrap());
        check_number(n);
        check_number(n % (MAX_MSEC + 2));
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match parse_timeout(s) {
        Ok(None) => assert_eq!(s, "off"),
        Ok(Some(v)) => {
            assert!(v <= MAX_MSEC, "{s:?} -> {v}");
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_digit() || b"yMwdhms".contains(&b)),
                "{s:?} accepted"
            );
            assert_eq!(parse_timeout(&format!("{v}ms")), Ok(Some(v)), "{s:?}");
            let c = canonical(v);
            assert_eq!(parse_timeout(&c), Ok(Some(v)), "{s:?} -> {c:?}");
        }
        Err(TimeError::Invalid(e) | TimeError::TooLarge(e)) => assert_eq!(e, s),
    }
}

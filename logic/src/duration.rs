//! Parses nginx time values ("90s", "5m", "1h30m", "500ms", a bare number of seconds) and
//! the keyword "off". Pure logic, mirroring `ngx_parse_time()` so values read the same as
//! in every other nginx directive.

use thiserror::Error;

/// The largest timeout nginx's timer tree and `epoll_wait()` handle safely (about 24 days).
pub const MAX_MSEC: u64 = i32::MAX as u64;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TimeError {
    #[error("invalid time value \"{0}\"")]
    Invalid(String),
    #[error("time value \"{0}\" is too large (the maximum is 24d)")]
    TooLarge(String),
}

/// `Ok(None)` for "off", `Ok(Some(ms))` for a time.
pub fn parse_timeout(value: &str) -> Result<Option<u64>, TimeError> {
    if value == "off" {
        return Ok(None);
    }
    let invalid = || TimeError::Invalid(value.to_string());
    if value.is_empty() {
        return Err(invalid());
    }
    let bytes = value.as_bytes();
    let mut total: u64 = 0;
    let mut i = 0;
    // Each unit may appear once, in decreasing order, as ngx_parse_time() requires.
    let mut last_rank = usize::MAX;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(invalid());
        }
        let n: u64 = value[start..i]
            .parse()
            .map_err(|_| TimeError::TooLarge(value.to_string()))?;
        let (mult, rank, len) = match &bytes[i..] {
            [b'm', b's', ..] => (1, 0, 2),
            [b'y', ..] => (365 * 86_400_000, 7, 1),
            [b'M', ..] => (30 * 86_400_000, 6, 1),
            [b'w', ..] => (7 * 86_400_000, 5, 1),
            [b'd', ..] => (86_400_000, 4, 1),
            [b'h', ..] => (3_600_000, 3, 1),
            [b'm', ..] => (60_000, 2, 1),
            [b's', ..] => (1_000, 1, 1),
            [] => (1_000, 1, 0),
            _ => return Err(invalid()),
        };
        if rank >= last_rank {
            return Err(invalid());
        }
        last_rank = rank;
        i += len;
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| TimeError::TooLarge(value.to_string()))?;
    }
    if total > MAX_MSEC {
        return Err(TimeError::TooLarge(value.to_string()));
    }
    Ok(Some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_timeout("off"), Ok(None));
        assert_eq!(parse_timeout("0"), Ok(Some(0)));
        assert_eq!(parse_timeout("30"), Ok(Some(30_000)));
        assert_eq!(parse_timeout("30s"), Ok(Some(30_000)));
        assert_eq!(parse_timeout("500ms"), Ok(Some(500)));
        assert_eq!(parse_timeout("5m"), Ok(Some(300_000)));
        assert_eq!(parse_timeout("1h30m"), Ok(Some(5_400_000)));
        assert_eq!(parse_timeout("1d"), Ok(Some(86_400_000)));
    }

    #[test]
    fn rejects() {
        for v in [
            "", "on", "-1", "1x", "s", "1s1h", "1m1m", "1 s", "10sec", "1.5s",
        ] {
            assert!(
                matches!(parse_timeout(v), Err(TimeError::Invalid(_))),
                "{v}"
            );
        }
        for v in ["25d", "1y", "99999999999999999999999s"] {
            assert!(
                matches!(parse_timeout(v), Err(TimeError::TooLarge(_))),
                "{v}"
            );
        }
    }
}

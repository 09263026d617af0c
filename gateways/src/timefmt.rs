//! Timestamp formats providers use, all read as UTC instants.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

/// RFC 3339 / ISO 8601 with offset (`2025-03-14T07:29:55.000+07:00`, `...Z`), Infobip's
/// `2016-10-06T09:28:39.220+0000`, or a naive `YYYY-MM-DD[T ]HH:MM:SS[.fff]` taken as UTC.
pub(crate) fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&naive));
        }
    }
    None
}

/// Unix seconds, or milliseconds when the number is too large to be seconds.
pub(crate) fn parse_unix(s: &str) -> Option<DateTime<Utc>> {
    let n: i64 = s.trim().parse().ok()?;
    if n > 100_000_000_000 {
        Utc.timestamp_millis_opt(n).single()
    } else {
        Utc.timestamp_opt(n, 0).single()
    }
}

/// Jasmin/SMPP `YYMMDDhhmm[ss]` (as UTC).
pub(crate) fn parse_smpp_short(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let fmt = match s.len() {
        10 => "%y%m%d%H%M",
        12 => "%y%m%d%H%M%S",
        _ => return None,
    };
    NaiveDateTime::parse_from_str(s, fmt)
        .ok()
        .map(|n| Utc.from_utc_datetime(&n))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn formats() {
        let want = Utc.with_ymd_and_hms(2017, 5, 3, 6, 4, 45).unwrap();
        assert_eq!(parse_datetime("2017-05-03T06:04:45Z"), Some(want));
        assert_eq!(parse_datetime("2017-05-03 06:04:45"), Some(want));
        assert_eq!(parse_datetime("2017-05-03T06:04"), None);
        assert_eq!(
            parse_datetime("2025-03-14T07:29:55.000+07:00"),
            Some(Utc.with_ymd_and_hms(2025, 3, 14, 0, 29, 55).unwrap())
        );
        assert_eq!(
            parse_datetime("2016-10-06T09:28:39.220+0000").map(|d| d.timestamp()),
            Some(Utc.with_ymd_and_hms(2016, 10, 6, 9, 28, 39).unwrap().timestamp())
        );
        assert_eq!(parse_unix("1385047698").map(|d| d.timestamp()), Some(1385047698));
        assert_eq!(
            parse_unix("1700000000000").map(|d| d.timestamp()),
            Some(1700000000)
        );
        assert!(parse_smpp_short("1810251310").is_some());
    }
}

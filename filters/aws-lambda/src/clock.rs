//! Calendar formatting of Unix times (UTC), without a date crate.

use crate::decimal::Decimal;
pub use faas_core::calendar::{amz_date, civil};

/// Unix seconds of an RFC 3339 time as AWS sources write expirations:
/// `2026-11-21T18:00:00Z`, optionally with fractional seconds and a numeric
/// offset (`+01:00`). `None` for anything else or before 1970.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let sep = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Fractional seconds are dropped; then `Z` or `±HH:MM`.
    let mut rest = b.get(19..)?;
    if rest.first() == Some(&b'.') {
        let digits = rest
            .iter()
            .skip(1)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        rest = rest.get(1 + digits..)?;
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: &u8, b: &u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let minutes = two(h1, h2)? * 60 + two(m1, m2)?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    // Howard Hinnant's days-from-civil algorithm (the inverse of `civil`).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let unix = days * 86_400 + hour * 3_600 + minute * 60 + second - offset;
    u64::try_from(unix).ok()
}

/// A date field zero-padded to `width` digits, by hand (`format!` is slow
/// in V8, and dates are written for every signature and event). Fields
/// are never negative; a negative one would print as 0.
fn push_padded<T: TryInto<u64>>(out: &mut String, field: T, width: usize) {
    Decimal::padded(field.try_into().unwrap_or(0), width).push_to(out);
}

/// API Gateway's request time, `dd/Mon/yyyy:HH:MM:SS +0000`.
pub fn clf_time(unix_seconds: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s) = civil(unix_seconds);
    let month = usize::try_from(mo - 1)
        .ok()
        .and_then(|i| MONTHS.get(i))
        .unwrap_or(&"Jan");
    let mut out = String::with_capacity(26);
    push_padded(&mut out, d, 2);
    out.push('/');
    out.push_str(month);
    out.push('/');
    push_padded(&mut out, y, 4);
    for v in [h, mi, s] {
        out.push(':');
        push_padded(&mut out, v, 2);
    }
    out.push_str(" +0000");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_dates_match_format() {
        // Every 997,331 s from 1970 to past 9999 (leap days, every month,
        // one- and two-digit fields), against the format! they replaced.
        let mut t = 0u64;
        while t < 253_402_300_800 + 10_000_000 {
            let (y, mo, d, h, mi, s) = civil(t);
            assert_eq!(
                amz_date(t),
                format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
            );
            let month = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ][(mo - 1) as usize];
            assert_eq!(
                clf_time(t),
                format!("{d:02}/{month}/{y:04}:{h:02}:{mi:02}:{s:02} +0000")
            );
            t += 997_331;
        }
    }

    #[test]
    fn rfc3339_times_parse_as_aws_sources_write_them() {
        assert_eq!(parse_rfc3339("2026-11-21T18:00:00Z"), Some(1_795_284_000));
        assert_eq!(
            parse_rfc3339("2026-11-21T18:00:00.123456Z"),
            Some(1_795_284_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-21T19:30:00+01:30"),
            Some(1_795_284_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-21T16:00:00-02:00"),
            Some(1_795_284_000)
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        for t in 0..200u64 {
            let unix = t * 7_919_993;
            let (y, mo, d, h, mi, s) = civil(unix);
            let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
            assert_eq!(parse_rfc3339(&text), Some(unix), "{text}");
        }
        for bad in [
            "",
            "2026-11-21",
            "2026-11-21T18:00:00",
            "2026-13-01T00:00:00Z",
            "2026-11-21T18:00:00.Z",
            "2026-11-21T18:00:00+0100",
            "2026/11/21T18:00:00Z",
            "1969-12-31T23:59:59Z",
            "2026-11-21T18:00:00Zjunk",
            "२०२६-11-21T18:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(amz_date(4_102_444_799), "20991231T235959Z");
        assert_eq!(clf_time(1_440_938_160), "30/Aug/2015:12:36:00 +0000");
        assert_eq!(clf_time(1_704_067_199), "31/Dec/2023:23:59:59 +0000");
    }
}

//! Calendar fields and formats of Unix times (UTC), without a date crate:
//! the one civil-date conversion the filters share.

use std::time::SystemTime;

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `(year, month, day, hour, minute, second)` of a Unix time.
pub fn civil(unix_seconds: u64) -> (i64, i64, i64, u64, u64, u64) {
    let days = i64::try_from(unix_seconds / 86_400).unwrap_or(0);
    let secs = unix_seconds % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        secs / 3_600,
        (secs % 3_600) / 60,
        secs % 60,
    )
}

/// SigV4's `YYYYMMDDTHHMMSSZ`.
pub fn amz_date(unix_seconds: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix_seconds);
    let mut out = String::with_capacity(16);
    push_padded(&mut out, y, 4);
    for v in [mo, d] {
        push_padded(&mut out, v, 2);
    }
    out.push('T');
    for v in [h, mi, s] {
        push_padded(&mut out, v, 2);
    }
    out.push('Z');
    out
}

/// A date field zero-padded to `width` digits, by hand (`format!` is slow
/// in V8, and a date is written for every signature). Fields are never
/// negative; a negative one would print as 0.
fn push_padded<T: TryInto<u64>>(out: &mut String, field: T, width: usize) {
    crate::decimal::Decimal::padded(field.try_into().unwrap_or(0), width).push_to(out);
}

/// The IMF-fixdate of RFC 9110 (`Sun, 06 Nov 1994 08:49:37 GMT`), for the
/// `date` header an upstream-placed filter adds when the function's answer
/// has none: Envoy's cache filter does not store an answer without one.
pub fn http_date(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (year, month, day, hour, minute, second) = civil(secs);
    // 1970-01-01 was a Thursday.
    let weekday = DAYS
        .get((secs / 86_400 % 7) as usize)
        .copied()
        .unwrap_or("Thu");
    let month_name = MONTHS.get((month - 1) as usize).copied().unwrap_or("Jan");
    let mut out = String::with_capacity(29);
    out.push_str(weekday);
    out.push_str(", ");
    two_digits(&mut out, day as u64);
    out.push(' ');
    out.push_str(month_name);
    out.push(' ');
    out.push_str(&year.to_string());
    out.push(' ');
    two_digits(&mut out, hour);
    out.push(':');
    two_digits(&mut out, minute);
    out.push(':');
    two_digits(&mut out, second);
    out.push_str(" GMT");
    out
}

fn two_digits(out: &mut String, n: u64) {
    out.push(char::from(b'0' + (n / 10 % 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        let at = |secs| http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(at(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(1_795_187_045), "Fri, 20 Nov 2026 15:04:05 GMT");
    }
}

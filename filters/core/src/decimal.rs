//! Decimal digits without `fmt`, which is slow in V8: the dates of every
//! signature and event, and the numbers in events.

/// `value`'s digits, zero-padded to a width.
pub struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    /// `value` in decimal with at least `width` digits (leading zeros; 20
    /// at most, as many as a `u64` has).
    pub fn padded(value: u64, width: usize) -> Decimal {
        let mut digits = [b'0'; 20];
        let mut n = value;
        let mut start = digits.len();
        while start > 0 && (n > 0 || digits.len() - start < width.max(1)) {
            start -= 1;
            if let Some(d) = digits.get_mut(start) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
        }
        Decimal { digits, start }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.digits.get(self.start..).unwrap_or_default()
    }

    /// Appends the digits to `out`.
    pub fn push_to(&self, out: &mut String) {
        out.extend(self.as_bytes().iter().map(|&d| char::from(d)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_match_format() {
        for (value, width) in [
            (0, 0),
            (0, 1),
            (7, 2),
            (42, 2),
            (1970, 4),
            (5, 4),
            (123_456, 2),
            (u64::MAX, 1),
            (u64::MAX, 20),
        ] {
            let mut out = String::new();
            Decimal::padded(value, width).push_to(&mut out);
            assert_eq!(out, format!("{value:0width$}"), "{value} {width}");
        }
    }
}

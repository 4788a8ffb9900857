//! XEP-0082 DateTime (`YYYY-MM-DDThh:mm:ss[.sss]Z`, UTC) from Unix milliseconds and back, with
//! the proleptic Gregorian calendar (no clock read, no calendar crate): FAST token expiries,
//! XEP-0203 `<delay/>` stamps, XEP-0313 `start`/`end` filters.
//!
//! ```
//! use tessera_plugin_api::datetime::{format_utc, format_utc_millis};
//! assert_eq!(format_utc(1_700_000_000_123), "2023-11-14T22:13:20Z");
//! assert_eq!(format_utc_millis(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
//! ```

const MS_PER_DAY: u64 = 86_400_000;

/// (year, month 1–12, day 1–31) of the day `days` after 1970-01-01.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so that leap days end each 400-year era's years.
    let z = days.saturating_add(719_468);
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1, 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to (year, month, day) (the inverse of [`civil_from_days`]); `None`
/// before 1970.
pub fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let y = if month <= 2 {
        year.checked_sub(1)?
    } else {
        year
    };
    let era = y / 400;
    let yoe = y % 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

/// Parse an XEP-0082 DateTime (`YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)`) into Unix
/// milliseconds; `None` if it is not one, names a day that does not exist, or is before 1970.
pub fn parse_utc(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = b.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let days_in_month = *month_days.get(usize::try_from(month).ok()?.checked_sub(1)?)?;
    if day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if sep(at, b'.') {
        let start = at + 1;
        at = start;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return None;
        }
        // Milliseconds: the first three digits, the rest dropped.
        let frac = text.get(start..at.min(start + 3))?;
        millis = frac.parse::<u64>().ok()? * 10u64.pow(3 - u32::try_from(frac.len()).ok()?);
    }
    let offset_minutes: i64 = match b.get(at) {
        Some(b'Z') if at + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == b.len() && sep(at + 3, b':') => {
            let (h, m) = (num(at + 1..at + 3)?, num(at + 4..at + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = i64::try_from(h * 60 + m).ok()?;
            if *sign == b'+' {
                minutes
            } else {
                -minutes
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day)?;
    let local = days * MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + millis;
    let utc = i64::try_from(local).ok()? - offset_minutes * 60_000;
    u64::try_from(utc).ok()
}

/// Format Unix milliseconds as an XEP-0082 DateTime in UTC with whole seconds.
pub fn format_utc(unix_ms: u64) -> String {
    let (year, month, day) = civil_from_days(unix_ms / MS_PER_DAY);
    let secs = (unix_ms % MS_PER_DAY) / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// [`format_utc`] with milliseconds (`.sss`), for stamps that must keep their order.
pub fn format_utc_millis(unix_ms: u64) -> String {
    let whole = format_utc(unix_ms);
    let (date, _) = whole.split_at(whole.len() - 1);
    format!("{date}.{:03}Z", unix_ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_what_format_writes_and_xep_0082_examples() {
        for ms in [0, 951_782_400_000, 1_700_000_000_123, 253_402_300_799_000] {
            assert_eq!(parse_utc(&format_utc_millis(ms)), Some(ms));
            assert_eq!(parse_utc(&format_utc(ms)), Some(ms - ms % 1000));
        }
        // XEP-0082 §3.2's example, in three spellings of one instant.
        let instant = parse_utc("1969-07-21T02:56:15Z");
        assert_eq!(instant, None, "before 1970");
        assert_eq!(
            parse_utc("2010-07-21T02:56:15Z"),
            parse_utc("2010-07-20T21:56:15-05:00")
        );
        assert_eq!(
            parse_utc("2010-07-21T02:56:15.5Z"),
            Some(parse_utc("2010-07-21T02:56:15Z").unwrap() + 500)
        );
        assert_eq!(
            parse_utc("2010-07-21T02:56:15.123456Z"),
            Some(parse_utc("2010-07-21T02:56:15Z").unwrap() + 123)
        );
        assert_eq!(
            parse_utc("2024-02-29T00:00:00+01:00"),
            Some(1_709_161_200_000)
        );
        for bad in [
            "",
            "2010-07-21",
            "2010-07-21T02:56:15",
            "2010-07-21 02:56:15Z",
            "2023-02-29T00:00:00Z",
            "2010-13-01T00:00:00Z",
            "2010-07-21T24:00:00Z",
            "2010-07-21T02:56:15.Z",
            "2010-07-21T02:56:15+5:00",
            "2010-07-21T02:56:15Zjunk",
            "+010-07-21T02:56:15Z",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(999), "1970-01-01T00:00:00Z", "whole seconds");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(951_868_799_000), "2000-02-29T23:59:59Z");
        assert_eq!(format_utc(951_868_800_000), "2000-03-01T00:00:00Z");
        assert_eq!(format_utc(1_709_164_800_000), "2024-02-29T00:00:00Z");
        assert_eq!(format_utc(1_740_787_200_000), "2025-03-01T00:00:00Z");
        assert_eq!(format_utc(1_735_689_599_000), "2024-12-31T23:59:59Z");
        assert_eq!(format_utc(1_784_628_000_000), "2026-07-21T10:00:00Z");
        assert_eq!(format_utc(4_107_542_400_000), "2100-03-01T00:00:00Z");
        assert_eq!(format_utc(253_402_300_799_000), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn century_years_are_not_leap_unless_divisible_by_400() {
        // 2100-02-28 is followed directly by 2100-03-01.
        let feb28 = 4_107_456_000_000;
        assert_eq!(format_utc(feb28), "2100-02-28T00:00:00Z");
        assert_eq!(format_utc(feb28 + MS_PER_DAY), "2100-03-01T00:00:00Z");
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
    }

    #[test]
    fn every_day_of_four_centuries_follows_the_previous_one() {
        let mut prev = civil_from_days(0);
        for days in 1..146_097 {
            let next = civil_from_days(days);
            let (y, m, d) = prev;
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            let expected = if d < len {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            assert_eq!(next, expected, "day {days}");
            prev = next;
        }
    }
}

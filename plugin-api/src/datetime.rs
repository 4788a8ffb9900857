//! XEP-0082 DateTime (`YYYY-MM-DDThh:mm:ss[.sss]Z`, UTC) from Unix milliseconds, with the
//! proleptic Gregorian calendar (no clock read, no calendar crate): FAST token expiries,
//! XEP-0203 `<delay/>` stamps.
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

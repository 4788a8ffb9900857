//! The reset mail: plain text naming the account, the link, when it expires, and when and from
//! which IP address the reset was requested, worded so that a phished copy is easy to spot (it
//! never asks for the current password, it says where the real link points, and it says what
//! to do when the reader did not ask for it).

use tessera_plugin_api::protocol::Mail;

/// What the mail says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResetMail<'a> {
    /// Recipient (the stored address).
    pub(crate) to: &'a str,
    /// The account's bare JID.
    pub(crate) jid: &'a str,
    /// The link.
    pub(crate) link: &'a str,
    /// The server's public base URL (the only place a real link points to).
    pub(crate) public_url: &'a str,
    /// When the reset was requested (ms since the epoch).
    pub(crate) requested_ms: u64,
    /// When the link expires (ms since the epoch).
    pub(crate) expires_ms: u64,
    /// The requesting client's IP address.
    pub(crate) requester_ip: &'a str,
}

/// `YYYY-MM-DD HH:MM:SS UTC` for a time in ms since the epoch.
pub(crate) fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (days ≥ 0).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so that leap days end each 4/100/400-year cycle.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st
    let mp = (5 * doy + 2) / 153; // month from March = 0
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// A human duration for the link's lifetime ("60 minutes", "2 hours", "45 seconds").
fn lifetime(ms: u64) -> String {
    let secs = ms / 1000;
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if secs >= 7200 && secs % 3600 == 0 {
        plural(secs / 3600, "hour")
    } else if secs >= 120 {
        plural(secs.div_ceil(60), "minute")
    } else {
        plural(secs, "second")
    }
}

impl ResetMail<'_> {
    /// The mail as the host sends it.
    pub(crate) fn render(&self) -> Mail {
        let valid_for = lifetime(self.expires_ms.saturating_sub(self.requested_ms));
        let body = format!(
            "Hello,\n\
             \n\
             someone asked to reset the password of the chat (XMPP) account\n\
             \n\
             \x20   {jid}\n\
             \n\
             The request came from the IP address {ip} on {requested}.\n\
             \n\
             To choose a new password, open this link:\n\
             \n\
             {link}\n\
             \n\
             The link works once and expires on {expires} (in {valid_for}).\n\
             Changing the password signs out every device that uses the account.\n\
             \n\
             If you did not ask for this, ignore this mail: your password stays as it\n\
             is, and the link expires by itself.\n\
             \n\
             Stay safe:\n\
             - A genuine reset link always starts with {base}/password-reset/\n\
             \x20 and nothing else. Do not follow links in copies of this mail that\n\
             \x20 point anywhere else.\n\
             - Neither this mail nor the reset page ever asks for your current\n\
             \x20 password, and nobody from the service will ask you for it.\n\
             - Never forward this mail or the link to anyone.\n",
            jid = self.jid,
            ip = self.requester_ip,
            requested = utc(self.requested_ms),
            link = self.link,
            expires = utc(self.expires_ms),
            base = self.public_url.trim_end_matches('/'),
        );
        Mail {
            to: self.to.to_owned(),
            subject: format!("Password reset for {}", self.jid),
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_are_right_across_leap_years() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_709_210_096_000), "2024-02-29 12:34:56 UTC");
        assert_eq!(utc(4_107_542_399_000), "2100-02-28 23:59:59 UTC");
        assert_eq!(utc(4_107_542_400_000), "2100-03-01 00:00:00 UTC");
    }

    #[test]
    fn lifetimes_read_naturally() {
        assert_eq!(lifetime(3_600_000), "60 minutes");
        assert_eq!(lifetime(7_200_000), "2 hours");
        assert_eq!(lifetime(1000), "1 second");
        assert_eq!(lifetime(90_000), "90 seconds");
    }

    #[test]
    fn the_mail_names_account_link_expiry_time_and_address() {
        let mail = ResetMail {
            to: "alice@example.org",
            jid: "alice@localhost",
            link: "https://xmpp.example/password-reset/TOKEN",
            public_url: "https://xmpp.example/",
            requested_ms: 1_709_210_096_000,
            expires_ms: 1_709_213_696_000,
            requester_ip: "203.0.113.7",
        }
        .render();
        assert_eq!(mail.to, "alice@example.org");
        assert_eq!(mail.subject, "Password reset for alice@localhost");
        for needle in [
            "    alice@localhost\n",
            "\nhttps://xmpp.example/password-reset/TOKEN\n",
            "expires on 2024-02-29 13:34:56 UTC (in 60 minutes)",
            "from the IP address 203.0.113.7 on 2024-02-29 12:34:56 UTC",
            "always starts with https://xmpp.example/password-reset/\n",
            "If you did not ask for this, ignore this mail",
            "ever asks for your current\n  password",
        ] {
            assert!(
                mail.body.contains(needle),
                "{needle:?} missing in:\n{}",
                mail.body
            );
        }
        assert!(mail.body.is_ascii());
    }
}

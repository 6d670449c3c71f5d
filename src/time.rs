//! Time formatting for log lines and answers: ISO-8601 in UTC, computed from Unix
//! milliseconds without a calendar library.

/// `2026-11-29T15:21:03.042Z` for `ms` milliseconds since the Unix epoch.
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Year, month, day of the `days`-th day after 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's days-to-civil algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        // The fixtures' time base: 2025-10-13T10:40Z.
        assert_eq!(iso8601(1_760_352_000_000), "2025-10-13T10:40:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
    }
}

/// A zone: a fixed offset, or an IANA name resolved by the runtime (`Intl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zone {
    Fixed(i32),
    Named(String),
}

impl Zone {
    /// `UTC`, `Z`, `+05:30`, `-03:00` or an IANA name.
    pub fn parse(s: &str) -> Option<Zone> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("utc") || s == "Z" {
            return Some(Zone::Fixed(0));
        }
        if let Some(rest) = s
            .strip_prefix('+')
            .map(|r| (1, r))
            .or(s.strip_prefix('-').map(|r| (-1, r)))
        {
            let (sign, hm) = rest;
            let (h, m) = hm.split_once(':')?;
            let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
            if (0..=14).contains(&h) && (0..60).contains(&m) {
                return Some(Zone::Fixed(sign * (h * 60 + m)));
            }
            return None;
        }
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_-+".contains(c));
        ok.then(|| Zone::Named(s.to_string()))
    }
}

/// Wall-clock time in a zone: weekday (0 = Monday) and minute of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub weekday: u8,
    pub minute: u16,
}

impl LocalTime {
    /// Local time at a fixed offset (minutes east of UTC).
    pub fn at_offset(unix_secs: u64, offset_min: i32) -> LocalTime {
        let t = unix_secs as i64 + offset_min as i64 * 60;
        let days = t.div_euclid(86_400);
        LocalTime {
            // 1970-01-01 was a Thursday (3 with Monday = 0).
            weekday: (days + 3).rem_euclid(7) as u8,
            minute: (t.rem_euclid(86_400) / 60) as u16,
        }
    }
}

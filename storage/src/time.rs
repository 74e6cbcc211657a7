//! Timestamps in PocketBase's storage format.

use std::time::{SystemTime, UNIX_EPOCH};

/// Current UTC time as PocketBase stores datetimes: `2006-01-02 15:04:05.000Z`.
pub fn now_datetime() -> String {
    format_unix_millis(unix_micros() / 1000)
}

/// Microseconds since the Unix epoch (what `_migrations.applied` holds).
pub fn unix_micros() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    d.as_micros() as i64
}

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS.mmmZ` (UTC).
pub fn format_unix_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{millis:03}Z",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        );
    }
    // digit by digit: this runs for every request log and record write
    let mut b = *b"0000-00-00 00:00:00.000Z";
    let mut put = |at: usize, v: u32, width: usize| {
        let mut v = v;
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, y as u32, 4);
    put(5, m, 2);
    put(8, d, 2);
    put(11, sod / 3600, 2);
    put(14, sod % 3600 / 60, 2);
    put(17, sod % 60, 2);
    put(20, millis, 3);
    // only ASCII digits and punctuation (a char-by-char `collect` was ~0.6k instructions)
    String::from_utf8(b.to_vec()).unwrap_or_default()
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_unix_millis(0), "1970-01-01 00:00:00.000Z");
        assert_eq!(
            format_unix_millis(1_665_395_386_123),
            "2022-10-10 09:49:46.123Z"
        );
        assert_eq!(
            format_unix_millis(951_782_400_000),
            "2000-02-29 00:00:00.000Z"
        );
        assert_eq!(now_datetime().len(), 24);
    }
}

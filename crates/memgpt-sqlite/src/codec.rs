//! How values are encoded in SQLite.
//!
//! * uuid: 36-character lowercase text (MemGPT's `CommonUUID`);
//! * timestamps: `YYYY-MM-DD HH:MM:SS.ffffff` in UTC (SQLAlchemy's SQLite `DATETIME`), which
//!   sorts as text in time order; migration 000006 rewrites other writers' forms into it
//!   (`time_of` reads those forms too);
//! * recall memory embeddings: base64 of the float32 bytes of the vector zero-padded to 4096
//!   (MemGPT's `CommonVector`);
//! * archival memory embeddings: raw little-endian float32 bytes of the true vector.

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use memgpt_core::row::Undecodable;
use memgpt_core::{Embedding, MAX_EMBEDDING_DIM};
use uuid::Uuid;

const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";

pub(crate) fn time_to_text(t: &DateTime<Utc>) -> String {
    t.naive_utc().format(TIME_FORMAT).to_string()
}

/// Decodes a time text of `column`: the canonical form, or any form migration 000006's
/// triggers accept and rewrite (so that a database whose triggers have not run yet, read
/// by [`SqliteStore::connect`](crate::SqliteStore::connect), still decodes its rows as
/// the instants they name). Anything else is [`Undecodable`] naming the column.
pub(crate) fn time_of(column: &'static str, s: &str) -> Result<DateTime<Utc>, Undecodable> {
    parse_time(s).ok_or_else(|| {
        Undecodable::new(
            column,
            format!(
                "{s:?} is not a time (expected YYYY-MM-DD HH:MM:SS.ffffff or another form SQLite's \
                 date functions read: 'T', 'Z', '+HH:MM', a date alone)"
            ),
        )
    })
}

/// The accepted forms, as migration 000006 reads them with SQLite's `strftime`:
/// `YYYY-MM-DD`, or `YYYY-MM-DD` then ` ` or `T`, `HH:MM`, optionally `:SS` and `.` with
/// one or more digits (microseconds kept, further digits cut), then optional spaces, an
/// optional `Z`/`z` or `+HH:MM`/`-HH:MM` (hour at most 14; converted to UTC) and optional
/// spaces. Impossible dates and hour 24 are refused, as the triggers leave them alone.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if !char_at(b, 4, b'-') || !char_at(b, 7, b'-') {
        return None;
    }
    let year = i32::try_from(digits(b, 0, 4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, digits(b, 5, 2)?, digits(b, 8, 2)?)?;
    if b.len() == 10 {
        return date.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    if !matches!(b.get(10), Some(b' ' | b'T')) || !char_at(b, 13, b':') {
        return None;
    }
    let (hour, minute) = (digits(b, 11, 2)?, digits(b, 14, 2)?);
    if hour > 23 {
        return None;
    }
    let (mut second, mut micros, mut i) = (0, 0, 16);
    if char_at(b, 16, b':') {
        second = digits(b, 17, 2)?;
        i = 19;
        if char_at(b, 19, b'.') {
            let n = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            // Microseconds: the first six digits, padded with zeros.
            let kept = n.min(6);
            micros = digits(b, 20, kept)? * 10u32.pow(u32::try_from(6 - kept).ok()?);
            i = 20 + n;
        }
    }
    let local = date.and_hms_micro_opt(hour, minute, second, micros)?;
    let rest = std::str::from_utf8(&b[i..]).ok()?.trim_matches(' ');
    let offset_minutes: i64 = match rest.as_bytes() {
        [] => 0,
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2], 0, 2)?, digits(&[*m1, *m2], 0, 2)?);
            if h > 14 || m > 59 {
                return None;
            }
            let v = i64::from(h * 60 + m);
            if *sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    local
        .checked_sub_signed(chrono::Duration::minutes(offset_minutes))
        .map(|t| t.and_utc())
}

/// `b[at]` is `c`.
fn char_at(b: &[u8], at: usize, c: u8) -> bool {
    b.get(at) == Some(&c)
}

/// The number written by the ASCII digits `b[at..at + n]`, if they all are digits.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    b.get(at..at + n)?.iter().try_fold(0u32, |v, c| {
        c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
    })
}

pub(crate) fn uuid_to_text(u: &Uuid) -> String {
    u.hyphenated().to_string()
}

pub(crate) fn f32_bytes(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

pub(crate) fn f32_from_bytes(b: &[u8]) -> Option<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return None;
    }
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// MemGPT's recall encoding: base64 of the float32 bytes, padded to 4096.
pub(crate) fn embedding_to_base64(e: &Embedding) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .encode(f32_bytes(&e.padded(MAX_EMBEDDING_DIM)))
        .into_bytes()
}

pub(crate) fn base64_to_f32(b: &[u8]) -> Option<Vec<f32>> {
    let raw = base64::engine::general_purpose::STANDARD.decode(b).ok()?;
    f32_from_bytes(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use memgpt_core::row::corrupt;
    use memgpt_core::Error;

    fn t(h: u32, m: u32, s: u32, micros: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, h, m, s).unwrap()
            + chrono::Duration::microseconds(i64::from(micros))
    }

    #[test]
    fn every_accepted_form_decodes_as_the_instant_it_names() {
        for (text, want) in [
            ("2024-01-01 09:00:01.250000", t(9, 0, 1, 250_000)),
            ("2024-01-01 09:00:01", t(9, 0, 1, 0)),
            ("2024-01-01T09:00:01", t(9, 0, 1, 0)),
            ("2024-01-01T09:00:01Z", t(9, 0, 1, 0)),
            ("2024-01-01 09:00:01z", t(9, 0, 1, 0)),
            ("2024-01-01T11:00:01+02:00", t(9, 0, 1, 0)),
            ("2024-01-01 11:00:01 +02:00 ", t(9, 0, 1, 0)),
            ("2024-01-01T11:00:01.25+02:00", t(9, 0, 1, 250_000)),
            ("2024-01-01T00:30:00-08:30", t(9, 0, 0, 0)),
            ("2024-01-01 09:00:01.123", t(9, 0, 1, 123_000)),
            ("2024-01-01 09:00:01.123456789", t(9, 0, 1, 123_456)),
            ("2024-01-01T09:00:01.999999999Z", t(9, 0, 1, 999_999)),
            ("2024-01-01T09:00:01.123456", t(9, 0, 1, 123_456)),
            ("2024-01-01 09:00:01.12345Z", t(9, 0, 1, 123_450)),
            ("2024-01-01 09:00:01.1234 Z", t(9, 0, 1, 123_400)),
            ("2024-01-01 09:00", t(9, 0, 0, 0)),
            ("2024-01-01T09:00Z", t(9, 0, 0, 0)),
            ("2024-01-01", t(0, 0, 0, 0)),
        ] {
            assert_eq!(time_of("created_at", text).unwrap(), want, "{text}");
        }
        assert_eq!(
            time_to_text(&t(9, 0, 1, 250_000)),
            "2024-01-01 09:00:01.250000"
        );
    }

    #[test]
    fn anything_else_is_a_database_error_naming_the_column() {
        for text in [
            "",
            "yesterday",
            "now",
            "2460311.5",
            "2024-13-01",
            "2024-02-30",
            "2024-02-30 00:00:00",
            "2024-01-01 24:00:00",
            "2024-01-01 09:60:00",
            "2024-01-01 09:00:60",
            "2024-01-01 09:00:00.",
            "2024-01-01 09:00:00 x",
            "2024-01-01t09:00:00",
            "2024-01-01  09:00:00",
            "2024-01-01 9:00:00",
            "2024-01-01 09:00:00+0200",
            "2024-01-01 09:00:00+15:00",
            "2024-01-01Z",
            "2024-1-01",
            "+2024-01-01",
            "2024-01-01 09:00:00.١",
            "2024-01-01 09:00:00.12é",
        ] {
            match time_of("created_at", text).map_err(|e| corrupt("t", e.column, e.why)) {
                Err(Error::Database { message }) => {
                    assert!(message.starts_with("t.created_at holds"), "{message}")
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}

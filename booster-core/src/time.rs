//! Time as the core sees it: instants and spans handed in by the driver, never read from a clock.
//!
//! [`Timestamp`] is milliseconds since the Unix epoch (UTC) and serialises as RFC 3339.
//! [`Dur`] is a non-negative span in milliseconds and reads and writes Go's duration syntax
//! (`90s`, `1m30s`, `1.5h`), because the flags it backs come from the Go project.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// An instant, in milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A span of time that is never negative, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(u64);

/// A time or duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {input:?}: {why}")]
pub struct TimeError {
    kind: &'static str,
    input: String,
    why: String,
}

impl TimeError {
    fn new(kind: &'static str, input: &str, why: impl Into<String>) -> Self {
        // Keep error messages one line and short even for garbage input.
        let input: String = input.chars().take(64).collect();
        Self {
            kind,
            input,
            why: why.into(),
        }
    }
}

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// An instant from milliseconds since the Unix epoch.
    pub const fn from_unix_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// An instant from whole seconds since the Unix epoch.
    pub const fn from_unix_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// This instant moved forward by `d` (saturating).
    #[must_use]
    pub fn plus(self, d: Dur) -> Self {
        let add = i64::try_from(d.0).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(add))
    }

    /// How long after `earlier` this instant is; zero when it is not after it.
    pub fn since(self, earlier: Timestamp) -> Dur {
        Dur(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// Reads an RFC 3339 instant (`2024-05-02T14:03:11Z`), as Kubernetes writes them.
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimeError> {
        DateTime::parse_from_rfc3339(s.trim())
            .map(|t| Timestamp(t.timestamp_millis()))
            .map_err(|e| TimeError::new("RFC 3339 time", s, e.to_string()))
    }

    /// Reads Go's `time.Time.String()` form as cluster-autoscaler writes it:
    /// `2023-03-27 10:38:18.722053187 +0000 UTC m=+1998.421365271`. The monotonic
    /// `m=` suffix and the zone abbreviation are ignored; the numeric offset counts.
    pub fn parse_go(s: &str) -> Result<Self, TimeError> {
        let mut parts = s.split_whitespace();
        let (Some(date), Some(clock)) = (parts.next(), parts.next()) else {
            return Err(TimeError::new("Go time", s, "expected `date time offset`"));
        };
        let offset = parts.next().unwrap_or("+0000");
        let naive =
            NaiveDateTime::parse_from_str(&format!("{date} {clock}"), "%Y-%m-%d %H:%M:%S%.f")
                .map_err(|e| TimeError::new("Go time", s, e.to_string()))?;
        let secs = parse_offset_secs(offset)
            .ok_or_else(|| TimeError::new("Go time", s, "bad UTC offset"))?;
        let utc = naive
            .and_utc()
            .timestamp_millis()
            .saturating_sub(secs.saturating_mul(1000));
        Ok(Timestamp(utc))
    }
}

fn parse_offset_secs(s: &str) -> Option<i64> {
    let (sign, digits) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = digits[2..].parse().ok()?;
    Some(sign * (h * 3600 + m * 60))
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match DateTime::<Utc>::from_timestamp_millis(self.0) {
            Some(t) => f.write_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            None => write!(f, "@{}ms", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(de::Error::custom)
    }
}

impl Dur {
    /// Zero.
    pub const ZERO: Dur = Dur(0);

    /// A span of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Dur(ms)
    }

    /// A span of `s` seconds.
    pub const fn from_secs(s: u64) -> Self {
        Dur(s.saturating_mul(1000))
    }

    /// A span of `m` minutes.
    pub const fn from_mins(m: u64) -> Self {
        Dur(m.saturating_mul(60_000))
    }

    /// `n` times this span (saturating).
    pub const fn times(self, n: u64) -> Self {
        Dur(self.0.saturating_mul(n))
    }

    /// Length in milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Length in seconds, with fractions.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Reads Go's duration syntax: `0`, `300ms`, `90s`, `1m30s`, `1.5h`, `2h45m`.
    /// Units: `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`. Negative spans are refused.
    /// Sub-millisecond parts are truncated.
    pub fn parse(input: &str) -> Result<Self, TimeError> {
        let s = input.trim();
        let err = |why: &str| TimeError::new("duration", input, why.to_string());
        let s = s.strip_prefix('+').unwrap_or(s);
        if s.starts_with('-') {
            return Err(err("must not be negative"));
        }
        if s == "0" {
            return Ok(Dur::ZERO);
        }
        if s.is_empty() {
            return Err(err("empty"));
        }
        let mut rest = s;
        let mut total_ns: u128 = 0;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| err("missing unit (e.g. `s`, `m`, `h`)"))?;
            if num_len == 0 {
                return Err(err("expected a number"));
            }
            let (num, after) = rest.split_at(num_len);
            let unit_len = after
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(after.len());
            let (unit, next) = after.split_at(unit_len);
            let unit_ns: u128 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                _ => return Err(err("unknown unit; use ns, us, ms, s, m or h")),
            };
            let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
            if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
                return Err(err("malformed number"));
            }
            let whole: u128 = if whole.is_empty() {
                0
            } else {
                whole.parse().map_err(|_| err("number too large"))?
            };
            let mut part = whole.checked_mul(unit_ns).ok_or_else(|| err("too large"))?;
            let mut scale = unit_ns;
            for d in frac.bytes().take(18) {
                scale /= 10;
                part += u128::from(d - b'0') * scale;
            }
            total_ns = total_ns.checked_add(part).ok_or_else(|| err("too large"))?;
            rest = next;
        }
        let ms = u64::try_from(total_ns / 1_000_000).map_err(|_| err("too large"))?;
        Ok(Dur(ms))
    }
}

impl fmt::Display for Dur {
    /// Go-like and compact: `0s`, `500ms`, `1m30s`, `2h`, `1h0m5s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        if ms < 1000 {
            return write!(f, "{ms}ms");
        }
        let (h, m, s, rem) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        let mut out = String::new();
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if m > 0 || (h > 0 && (s > 0 || rem > 0)) {
            out.push_str(&format!("{m}m"));
        }
        if s > 0 || rem > 0 {
            if rem > 0 {
                let frac = format!("{rem:03}");
                out.push_str(&format!("{s}.{}s", frac.trim_end_matches('0')));
            } else {
                out.push_str(&format!("{s}s"));
            }
        }
        f.write_str(&out)
    }
}

impl std::str::FromStr for Dur {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dur::parse(s)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    /// Accepts Go syntax (`"1m30s"`) or a plain number of seconds (`90`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"90s\" or \"1m30s\", or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                Dur::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur::from_secs(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(Dur::from_secs)
                    .map_err(|_| E::custom("a duration must not be negative"))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (input, ms) in [
            ("0", 0),
            ("120s", 120_000),
            ("1m30s", 90_000),
            ("1.5h", 5_400_000),
            ("300ms", 300),
            ("2h45m", 9_900_000),
            ("1h0m0s", 3_600_000),
            (".5s", 500),
            ("1500us", 1),
        ] {
            assert_eq!(Dur::parse(input), Ok(Dur::from_millis(ms)), "{input}");
        }
        for bad in [
            "",
            "-1s",
            "10",
            "1x",
            "s",
            "1..5s",
            "1.2.3s",
            "99999999999999999999999h",
        ] {
            assert!(Dur::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn durations_round_trip_through_display() {
        for ms in [
            0, 1, 999, 1000, 1500, 60_000, 90_000, 3_600_000, 3_605_000, 86_400_123,
        ] {
            let d = Dur::from_millis(ms);
            assert_eq!(Dur::parse(&d.to_string()), Ok(d), "{d}");
        }
    }

    #[test]
    fn go_time_as_cluster_autoscaler_writes_it() {
        let t = Timestamp::parse_go("2023-03-27 10:38:18.722053187 +0000 UTC m=+1998.421365271");
        assert_eq!(t, Timestamp::parse_rfc3339("2023-03-27T10:38:18.722Z"));
        let cest = Timestamp::parse_go("2023-03-27 12:38:18 +0200 CEST");
        assert_eq!(cest, Timestamp::parse_rfc3339("2023-03-27T10:38:18Z"));
        assert!(Timestamp::parse_go("yesterday").is_err());
        assert!(Timestamp::parse_go("2023-03-27 10:38:18 UTC").is_err());
    }

    #[test]
    fn timestamps_serialise_as_rfc3339() {
        let t = Timestamp::from_unix_millis(1_714_658_591_000);
        assert_eq!(t.to_string(), "2024-05-02T14:03:11Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_string()), Ok(t));
        assert_eq!(t.plus(Dur::from_secs(5)).since(t), Dur::from_secs(5));
        assert_eq!(t.since(t.plus(Dur::from_secs(5))), Dur::ZERO);
    }
}

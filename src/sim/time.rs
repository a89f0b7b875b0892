//! Virtual time: `u64` nanoseconds since the start of a run, and a duration type for scenario
//! files that reads and writes human units ("250ms", "10s") while holding exact nanoseconds.
//!
//! Depends on nothing else in the crate. No `std::time` is used inside a run.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const NS_PER_US: u64 = 1_000;
pub const NS_PER_MS: u64 = 1_000_000;
pub const NS_PER_S: u64 = 1_000_000_000;

/// A duration in whole nanoseconds. In JSON it is either an integer (nanoseconds) or a string
/// of an integer and a unit: `ns`, `us`, `ms`, `s` or `min` ("250ms", "10s").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub u64);

impl Dur {
    pub const fn ns(self) -> u64 {
        self.0
    }
    pub const fn from_ms(ms: u64) -> Dur {
        Dur(ms * NS_PER_MS)
    }
    pub const fn from_s(s: u64) -> Dur {
        Dur(s * NS_PER_S)
    }

    pub fn parse(text: &str) -> Result<Dur, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("duration {text:?} has no unit (ns, us, ms, s, min)"))?;
        let (digits, unit) = text.split_at(split);
        let value: u64 = digits
            .parse()
            .map_err(|_| format!("duration {text:?} does not start with a whole number"))?;
        let scale = match unit.trim() {
            "ns" => 1,
            "us" => NS_PER_US,
            "ms" => NS_PER_MS,
            "s" => NS_PER_S,
            "min" => 60 * NS_PER_S,
            other => return Err(format!("duration {text:?} has unknown unit {other:?}")),
        };
        value
            .checked_mul(scale)
            .map(Dur)
            .ok_or_else(|| format!("duration {text:?} is too large"))
    }
}

impl std::fmt::Display for Dur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = self.0;
        if ns != 0 && ns.is_multiple_of(NS_PER_S) {
            write!(f, "{}s", ns / NS_PER_S)
        } else if ns != 0 && ns.is_multiple_of(NS_PER_MS) {
            write!(f, "{}ms", ns / NS_PER_MS)
        } else if ns != 0 && ns.is_multiple_of(NS_PER_US) {
            write!(f, "{}us", ns / NS_PER_US)
        } else {
            write!(f, "{ns}ns")
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Dur;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration: nanoseconds as an integer, or a string like \"250ms\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(Dur)
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                Dur::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Formats nanoseconds as seconds with nine decimals, for timelines.
pub fn fmt_ns(ns: u64) -> String {
    format!("{}.{:09}", ns / NS_PER_S, ns % NS_PER_S)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_through_text() {
        for text in ["250ms", "10s", "3us", "7ns", "2min"] {
            let d = Dur::parse(text).unwrap();
            let back = Dur::parse(&d.to_string()).unwrap();
            assert_eq!(d, back, "{text}");
        }
        assert_eq!(Dur::parse("2min").unwrap(), Dur::from_s(120));
        assert!(Dur::parse("10").is_err());
        assert!(Dur::parse("1.5s").is_err());
        assert!(Dur::parse("5 parsecs").is_err());
    }
}

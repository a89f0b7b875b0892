//! Seed ranges: parsing "A..B" and splitting a range across CI jobs. Pure.

use std::ops::Range;

/// Parses "A..B" (B exclusive) or a single seed "A".
pub fn parse_range(text: &str) -> Result<Range<u64>, String> {
    let parse = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("{s:?} is not a seed (a whole number)"))
    };
    match text.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if a >= b {
                return Err(format!("empty seed range {text:?}: A..B needs A < B"));
            }
            Ok(a..b)
        }
        None => {
            let a = parse(text)?;
            Ok(a..a + 1)
        }
    }
}

/// The part `index` (0-based) of `count` equal parts of `range`.
pub fn shard(range: Range<u64>, index: u64, count: u64) -> Range<u64> {
    assert!(count > 0 && index < count);
    let len = range.end - range.start;
    let start = range.start + len * index / count;
    let end = range.start + len * (index + 1) / count;
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_shards_cover_everything_once() {
        assert_eq!(parse_range("0..10"), Ok(0..10));
        assert_eq!(parse_range("7"), Ok(7..8));
        assert!(parse_range("5..5").is_err());
        assert!(parse_range("a..b").is_err());
        let parts: Vec<_> = (0..3).map(|i| shard(0..10, i, 3)).collect();
        assert_eq!(parts, vec![0..3, 3..6, 6..10]);
    }
}

//! Delta debugging (Zeller and Hildebrandt's ddmin): the smallest subset of a list that still
//! fails, found by testing chunks of it and their complements at ever finer granularity.
//!
//! With `n` chunks, each chunk alone is tried first (a big jump when the failure lives in one
//! chunk), then each complement (remove one chunk); if neither fails, the granularity doubles,
//! down to single items. The result is 1-minimal: removing any one item makes the failure go
//! away (as far as the budget allowed to test). Subsets already tested are not re-run.
//!
//! Pure: the caller's `test` closure runs the candidate; it may refuse (budget spent) by
//! returning false. Depends on nothing else in the crate.

use std::collections::BTreeSet;

/// Returns the indices (into `0..len`, ascending) of a 1-minimal failing subset, given that
/// the whole list fails. `test` receives candidate index lists and says whether they fail.
pub fn ddmin(len: usize, test: &mut dyn FnMut(&[usize]) -> bool) -> Vec<usize> {
    let mut current: Vec<usize> = (0..len).collect();
    let mut tried: BTreeSet<Vec<usize>> = BTreeSet::new();
    tried.insert(current.clone());
    let mut run = |candidate: Vec<usize>, test: &mut dyn FnMut(&[usize]) -> bool| {
        tried.insert(candidate.clone()) && test(&candidate)
    };
    // The failure may need no item at all (it is then not about this list).
    if len > 0 && run(Vec::new(), test) {
        return Vec::new();
    }
    let mut n = 2usize;
    while current.len() >= 2 {
        let chunks = split(&current, n);
        let mut reduced = false;
        for chunk in &chunks {
            if run(chunk.clone(), test) {
                current = chunk.clone();
                n = 2;
                reduced = true;
                break;
            }
        }
        // With two chunks each complement is the other chunk, already tried.
        if !reduced && chunks.len() > 2 {
            for i in 0..chunks.len() {
                let complement: Vec<usize> = chunks
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, c)| c.iter().copied())
                    .collect();
                if run(complement.clone(), test) {
                    current = complement;
                    n = (chunks.len() - 1).max(2);
                    reduced = true;
                    break;
                }
            }
        }
        if !reduced {
            if n >= current.len() {
                break;
            }
            n = (n * 2).min(current.len());
        }
    }
    current
}

/// Splits `items` into `n` chunks of near-equal size (the first ones one longer).
fn split(items: &[usize], n: usize) -> Vec<Vec<usize>> {
    let n = n.clamp(1, items.len().max(1));
    let (base, extra) = (items.len() / n, items.len() % n);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let size = base + usize::from(i < extra);
        out.push(items[start..start + size].to_vec());
        start += size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the tests a ddmin makes on a list where the failure needs `needed` together.
    fn minimise(len: usize, needed: &[usize]) -> (Vec<usize>, usize) {
        let mut tests = 0;
        let found = ddmin(len, &mut |c| {
            tests += 1;
            needed.iter().all(|i| c.contains(i))
        });
        (found, tests)
    }

    #[test]
    fn finds_the_items_a_failure_needs_and_only_them() {
        assert_eq!(minimise(31, &[3, 17, 29]).0, vec![3, 17, 29]);
        assert_eq!(minimise(31, &[12]).0, vec![12]);
        assert_eq!(
            minimise(8, &[0, 1, 2, 3, 4, 5, 6, 7]).0,
            (0..8).collect::<Vec<_>>()
        );
        assert_eq!(minimise(5, &[]).0, Vec::<usize>::new());
    }

    #[test]
    fn one_needed_item_costs_about_log_n_tests() {
        // Chunks first: a failure living in one item is found by halving, not by 31 removals.
        let (_, tests) = minimise(32, &[21]);
        assert!(tests <= 12, "{tests} tests");
    }

    #[test]
    fn a_refusing_test_leaves_the_list_as_it_was() {
        assert_eq!(ddmin(6, &mut |_| false), (0..6).collect::<Vec<_>>());
    }

    #[test]
    fn split_covers_every_item_once() {
        let items: Vec<usize> = (0..10).collect();
        let chunks = split(&items, 3);
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![4, 3, 3]
        );
        assert_eq!(chunks.concat(), items);
    }
}

//! Linearizability: a Wing-Gong-Lowe search with memoisation, one partition at a time.
//!
//! Models: a history is linearizable against a [`SequentialSpec`] when every operation can be
//! given a point inside its window such that the spec, stepping through the points in order,
//! returns what was observed. Open (`info`) operations may take their point anywhere after
//! their invocation, or never.
//!
//! The search (Lowe, "Testing for linearizability", 2017; Porcupine's implementation) keeps the
//! call and return events of a partition in one doubly linked list in real-time order. It
//! walks from the head: at a call it tries to linearize the operation now (step the spec); on
//! success it *lifts* the call and its return out of the list and starts again from the head.
//! Reaching a return means that operation should already have been linearized, so the search
//! backtracks: it pops the last linearized operation and *unlifts* it. A memo of (set of
//! linearized operations, state) pairs already explored prunes the search; the set is a
//! bitset, hashed incrementally (Zobrist: one random word per operation, xor-ed in and out),
//! and stored only as the window of words that can still differ (see `bit_slots`), so long
//! histories cost memory in proportion to their concurrency, not their length. A pair is also
//! pruned when an explored pair differs only by using fewer open operations (see `Memo`).
//! Once every completed operation is linearized the rest are open ones, which can always come
//! last ("never happened"), so the search stops there.
//!
//! Cost: the pairs are exponential in the concurrency of one object. Valid histories are
//! usually found quickly; proving a violation means exhausting every order before it, which
//! with many crashed writes on one object can exceed the budget (then the verdict is unknown).
//!
//! P-compositionality: the spec names each operation's object (partition key); by locality the
//! history is linearizable iff each partition is, and partitions are checked one by one in key
//! order, which keeps the search small and the output deterministic.
//!
//! A [`Budget`] bounds steps and memo entries; running out gives [`Verdict::Unknown`], never a
//! pass. Depends on: `check::history`, `check::spec`, the verdict types.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use super::history::{History, Op, OpId};
use super::spec::SequentialSpec;
use super::{PartitionOrder, Verdict, Violation, Witness};

/// Limits of one check. Exceeding either gives [`Verdict::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Search steps over all partitions (one step = one call or return event visited).
    pub max_steps: u64,
    /// Memo entries in any one partition (each costs a bitset window and a state).
    pub max_memo_entries: usize,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            max_steps: 50_000_000,
            max_memo_entries: 20_000_000,
        }
    }
}

/// A recorded operation does not fit the model: bad input, not a violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelError {
    /// The offending operation.
    pub op: OpId,
    /// What is wrong with it.
    pub message: String,
}

/// Checks `history` for linearizability against `spec`, partition by partition.
pub fn check_linearizable<S: SequentialSpec>(
    spec: &S,
    history: &History,
    budget: &Budget,
) -> Result<Verdict, ModelError> {
    let ops: Vec<&Op> = history.ops.iter().collect();
    check_linearizable_ops(spec, &ops, budget)
}

/// [`check_linearizable`] over a list of recorded operations, whose ids are their positions
/// in `recorded`: a checker that judges a selection of a history passes references to the
/// selected operations instead of copying them into a history of their own.
pub fn check_linearizable_ops<S: SequentialSpec>(
    spec: &S,
    recorded: &[&Op],
    budget: &Budget,
) -> Result<Verdict, ModelError> {
    let partitions = compile(spec, recorded)?;
    let mut searches: Vec<Search<S>> = partitions
        .into_iter()
        .map(|(key, ops)| Search::new(spec, recorded, key, ops))
        .collect();
    let mut orders: Vec<Option<PartitionOrder>> = vec![None; searches.len()];
    let mut unknown = None;
    let mut active: Vec<usize> = (0..searches.len()).collect();
    let mut steps_left = budget.max_steps;
    // Partitions run in turns, in key order, so that one hard partition cannot hide an easy
    // violation in another (the deterministic analogue of Porcupine checking partitions in
    // parallel and stopping at the first failure). Turns double in length each round, so
    // a hard partition that is linearizable wastes at most a constant factor.
    let mut round = 0;
    while !active.is_empty() {
        let mut still_active = Vec::new();
        for &i in &active {
            if steps_left == 0 {
                let depth = searches[i].walk.as_ref().map_or(0, |w| w.calls.len());
                if let Outcome::OutOfBudget(reason) = searches[i].out_of_budget("step", depth) {
                    unknown.get_or_insert(reason);
                }
                searches[i].walk = None;
                continue;
            }
            let slice = steps_left.min(SLICE_FIRST << round.min(SLICE_DOUBLINGS));
            let (used, outcome) = searches[i].run(slice, budget.max_memo_entries);
            steps_left -= used;
            let paused = outcome.is_none();
            match outcome {
                None => still_active.push(i),
                Some(Outcome::Linearized(order)) => orders[i] = Some(order),
                // A definite violation wins over unknown partitions: stop at the first one.
                Some(Outcome::Stuck(violation)) => {
                    return Ok(Verdict::Invalid {
                        violations: vec![*violation],
                    })
                }
                Some(Outcome::OutOfBudget(reason)) => {
                    unknown.get_or_insert(reason);
                }
            }
            if !paused {
                // Free a finished partition's memo at once.
                searches[i].walk = None;
            }
        }
        active = still_active;
        round += 1;
    }
    Ok(match unknown {
        Some(reason) => Verdict::Unknown { reason },
        None => Verdict::Valid {
            witness: Witness::Linearization {
                partitions: orders.into_iter().flatten().collect(),
            },
        },
    })
}

/// Steps of a partition's first turn; each round doubles it, up to SLICE_DOUBLINGS times.
const SLICE_FIRST: u64 = 1 << 10;
const SLICE_DOUBLINGS: u32 = 16;

/// One compiled operation of a partition.
struct PartOp<T> {
    id: OpId,
    invoke_ns: u64,
    end_ns: Option<u64>,
    op: T,
}

type Partitions<'a, T> = BTreeMap<&'a str, Vec<PartOp<T>>>;

fn compile<'a, S: SequentialSpec>(
    spec: &S,
    recorded: &[&'a Op],
) -> Result<Partitions<'a, S::Op>, ModelError> {
    let mut partitions: Partitions<S::Op> = BTreeMap::new();
    for (id, &op) in recorded.iter().enumerate() {
        let compiled = spec
            .compile(op)
            .map_err(|message| ModelError { op: id, message })?;
        if let Some((key, compiled)) = compiled {
            partitions.entry(key).or_default().push(PartOp {
                id,
                invoke_ns: op.invoke_ns,
                end_ns: op.end_ns(),
                op: compiled,
            });
        }
    }
    // Invocation order (the memo's window relies on it); histories are usually already in it.
    for ops in partitions.values_mut() {
        ops.sort_by_key(|op| (op.invoke_ns, op.id));
    }
    Ok(partitions)
}

enum Outcome {
    Linearized(PartitionOrder),
    Stuck(Box<Violation>),
    OutOfBudget(String),
}

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;

/// One event of the list: a call (with the index of its return) or a return.
#[derive(Clone, Copy)]
struct Event {
    /// Local operation index.
    op: u32,
    /// For a call: the entry index of its return. For a return: `NIL`.
    matching: u32,
}

/// The furthest point the search reached before getting stuck (for the witness).
struct Stuck<S> {
    /// Entry index of the return that could not be passed (entries are in time order).
    entry: u32,
    /// How many operations were linearized, and the last few of them (oldest first).
    depth: usize,
    last: Vec<u32>,
    /// Operations not linearized whose windows overlap the blocked one's (a few).
    concurrent: Vec<u32>,
    state: S,
}

/// Operations shown before the blocked one, and overlapping ones, in a witness.
const WITNESS_LAST: usize = 6;
const WITNESS_CONCURRENT: usize = 12;

/// The mutable state of a search, kept between slices.
struct Walk<S> {
    /// Completed operations not linearized yet; zero means done.
    remaining_closed: usize,
    linearized: Linearized,
    memo: Memo<S>,
    /// The linearized calls, each with the state before it.
    calls: Vec<(u32, S)>,
    state: S,
    stuck: Option<Stuck<S>>,
    /// The entry the walk is at.
    entry: u32,
}

struct Search<'a, S: SequentialSpec> {
    spec: &'a S,
    /// The recorded operations, by id (for the witness's summaries).
    recorded: &'a [&'a Op],
    key: String,
    ops: Vec<PartOp<S::Op>>,
    /// Entry 0 is the head sentinel; entries 1.. are events in real-time order.
    events: Vec<Event>,
    next: Vec<u32>,
    prev: Vec<u32>,
    zobrist: Vec<u64>,
    /// Where each operation's bit lives: (open, index in the open or the closed bitset).
    slots: Vec<(bool, u32)>,
    /// For each completed operation (closed index k): the end of the window of the closed
    /// bitset, in words, while k is the first completed operation not linearized.
    reach_words: Vec<u32>,
    walk: Option<Walk<S::State>>,
}

impl<'a, S: SequentialSpec> Search<'a, S> {
    fn new(spec: &'a S, recorded: &'a [&'a Op], key: &str, ops: Vec<PartOp<S::Op>>) -> Self {
        // Sort key: (time, kind, op). Calls (kind 0) sort before returns (kind 1) at equal
        // times, so operations that touch at one instant count as concurrent; open operations
        // return at u64::MAX, after everything else.
        let mut order: Vec<(u64, u8, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.invoke_ns, 0, i as u32));
            order.push((op.end_ns.unwrap_or(u64::MAX), 1, i as u32));
        }
        order.sort_unstable();
        let mut events = vec![
            Event {
                op: NIL,
                matching: NIL
            };
            order.len() + 1
        ];
        let mut return_entry = vec![NIL; ops.len()];
        for (pos, &(_, kind, op)) in order.iter().enumerate().rev() {
            let entry = pos as u32 + 1;
            if kind == 1 {
                return_entry[op as usize] = entry;
                events[entry as usize] = Event { op, matching: NIL };
            } else {
                let matching = return_entry[op as usize];
                events[entry as usize] = Event { op, matching };
            }
        }
        let n = events.len() as u32;
        let next: Vec<u32> = (0..n)
            .map(|i| if i + 1 < n { i + 1 } else { NIL })
            .collect();
        let prev = (0..n).map(|i| if i == 0 { NIL } else { i - 1 }).collect();
        let zobrist = (0..ops.len() as u64).map(splitmix64).collect();
        let (slots, reach_words) = bit_slots(&ops);
        let closed = reach_words.len();
        let linearized = Linearized::new(closed, ops.len() - closed);
        let walk = Walk {
            remaining_closed: closed,
            memo: Memo::new(),
            linearized,
            calls: Vec::new(),
            state: spec.init(),
            stuck: None,
            entry: next[HEAD as usize],
        };
        Search {
            spec,
            recorded,
            key: key.to_string(),
            ops,
            events,
            next,
            prev,
            zobrist,
            slots,
            reach_words,
            walk: Some(walk),
        }
    }

    /// Removes a call entry and its return from the list.
    fn lift(&mut self, call: u32) {
        for entry in [call, self.events[call as usize].matching] {
            let (p, n) = (self.prev[entry as usize], self.next[entry as usize]);
            self.next[p as usize] = n;
            if n != NIL {
                self.prev[n as usize] = p;
            }
        }
    }

    /// Puts back what [`Search::lift`] removed (in reverse order, as dancing links need).
    fn unlift(&mut self, call: u32) {
        for entry in [self.events[call as usize].matching, call] {
            let (p, n) = (self.prev[entry as usize], self.next[entry as usize]);
            self.next[p as usize] = entry;
            if n != NIL {
                self.prev[n as usize] = entry;
            }
        }
    }

    /// Runs at most `slice` steps; returns the steps used and the outcome, `None` when paused
    /// with work left.
    fn run(&mut self, slice: u64, max_memo: usize) -> (u64, Option<Outcome>) {
        let mut w = self
            .walk
            .take()
            .expect("a finished search is not run again");
        let mut slice_left = slice;
        let outcome = loop {
            if w.remaining_closed == 0 {
                break self.linearization(&w.calls, &w.linearized);
            }
            if slice_left == 0 {
                self.walk = Some(w);
                return (slice, None);
            }
            slice_left -= 1;
            let event = self.events[w.entry as usize];
            if event.matching != NIL {
                // A call: try to linearize it here. Candidates are tried in list order, which
                // puts a crashed operation first while its effect is recent: a timed-out
                // write usually did take effect, near its invocation.
                match self.try_linearize(&mut w, max_memo) {
                    Ok(true) => continue,
                    Ok(false) => w.entry = self.next[w.entry as usize],
                    Err(outcome) => break outcome,
                }
                continue;
            }
            // A return: its operation had to be linearized by now.
            if let Some(outcome) = self.backtrack(&mut w) {
                break outcome;
            }
        };
        (slice - slice_left, Some(outcome))
    }

    /// Tries to linearize the call the walk is at. `Ok(true)`: done, the walk restarts from
    /// the head one level deeper; `Ok(false)`: illegal here or already explored.
    fn try_linearize(&mut self, w: &mut Walk<S::State>, max_memo: usize) -> Result<bool, Outcome> {
        let op = self.events[w.entry as usize].op as usize;
        let Some(next_state) = self.spec.step(&w.state, &self.ops[op].op) else {
            return Ok(false);
        };
        w.linearized.flip(self.slots[op], self.zobrist[op]);
        if !w.memo.insert(&w.linearized, &self.reach_words, &next_state) {
            w.linearized.flip(self.slots[op], self.zobrist[op]);
            return Ok(false);
        }
        if w.memo.len() > max_memo {
            return Err(self.out_of_budget("memo", w.calls.len()));
        }
        let state = std::mem::replace(&mut w.state, next_state);
        w.calls.push((w.entry, state));
        w.remaining_closed -= usize::from(self.ops[op].end_ns.is_some());
        self.lift(w.entry);
        w.entry = self.next[HEAD as usize];
        Ok(true)
    }

    /// At a return whose operation is not linearized: remembers the furthest such point for
    /// the witness, then undoes the last linearization. `Some`: nothing left to undo.
    fn backtrack(&mut self, w: &mut Walk<S::State>) -> Option<Outcome> {
        if w.stuck.as_ref().is_none_or(|s| w.entry > s.entry) {
            w.stuck = Some(self.stuck_here(w));
        }
        let Some((top, top_state)) = w.calls.pop() else {
            let stuck = w.stuck.take().expect("set above");
            return Some(Outcome::Stuck(Box::new(self.violation(stuck))));
        };
        let op = self.events[top as usize].op as usize;
        w.state = top_state;
        w.linearized.flip(self.slots[op], self.zobrist[op]);
        w.remaining_closed += usize::from(self.ops[op].end_ns.is_some());
        self.unlift(top);
        w.entry = self.next[top as usize];
        None
    }

    fn out_of_budget(&self, what: &str, depth: usize) -> Outcome {
        Outcome::OutOfBudget(format!(
            "the search ran out of its {what} budget in partition {:?} ({} operations, {depth} \
             linearized on the current path); the verdict is unknown, not a pass (a larger \
             budget, e.g. --max-steps, may decide it)",
            self.key,
            self.ops.len()
        ))
    }

    fn linearization(&self, calls: &[(u32, S::State)], linearized: &Linearized) -> Outcome {
        let order = calls
            .iter()
            .map(|c| self.ops[self.events[c.0 as usize].op as usize].id)
            .collect();
        let not_applied = (0..self.ops.len())
            .filter(|&i| !linearized.get(self.slots[i]))
            .map(|i| self.ops[i].id)
            .collect();
        Outcome::Linearized(PartitionOrder {
            key: self.key.clone(),
            order,
            not_applied,
        })
    }

    /// Records the point the walk is at (a return it cannot pass) for the witness. Costs the
    /// length of the list up to that return, which is about the concurrency.
    fn stuck_here(&self, w: &Walk<S::State>) -> Stuck<S::State> {
        let blocked = self.events[w.entry as usize].op;
        let start = self.ops[blocked as usize].invoke_ns;
        let mut concurrent = Vec::new();
        let mut entry = self.next[HEAD as usize];
        // Every call still in the list before this return is a concurrent candidate that was
        // invoked before the blocked operation completed.
        while entry != w.entry && concurrent.len() < WITNESS_CONCURRENT {
            let event = self.events[entry as usize];
            let overlaps = self.ops[event.op as usize]
                .end_ns
                .is_none_or(|end| end >= start);
            if event.matching != NIL && event.op != blocked && overlaps {
                concurrent.push(event.op);
            }
            entry = self.next[entry as usize];
        }
        let tail = w.calls.len().saturating_sub(WITNESS_LAST);
        Stuck {
            entry: w.entry,
            depth: w.calls.len(),
            last: w.calls[tail..]
                .iter()
                .map(|c| self.events[c.0 as usize].op)
                .collect(),
            concurrent,
            state: w.state.clone(),
        }
    }

    /// Builds the witness of a failed search from the furthest point it reached.
    fn violation(&self, stuck: Stuck<S::State>) -> Violation {
        let blocked = self.events[stuck.entry as usize].op as usize;
        let concurrent = &stuck.concurrent;
        let linearized: Vec<OpId> = stuck
            .last
            .iter()
            .map(|&i| self.ops[i as usize].id)
            .collect();
        let id = self.ops[blocked].id;
        let mut ops: Vec<OpId> = linearized.iter().rev().take(3).copied().collect();
        ops.push(id);
        ops.extend(concurrent.iter().map(|&i| self.ops[i as usize].id));
        ops.sort_unstable();
        let unordered = if concurrent.is_empty() {
            String::new()
        } else {
            format!(
                "; {} overlapping operations were still unordered",
                concurrent.len()
            )
        };
        let message = format!(
            "operation {id} ({}) cannot be linearized: the longest prefix the search could order \
             ({} operations, the last ones listed) leaves the {} model in state {:?}, where it \
             cannot return what it returned, and no other order gets further{unordered}",
            self.recorded[id].summary(),
            stuck.depth,
            self.spec.name(),
            stuck.state,
        );
        let op = &self.ops[blocked];
        Violation {
            kind: "not-linearizable".to_string(),
            message,
            op: Some(id),
            window: Some((op.invoke_ns, op.end_ns)),
            ops,
            key: Some(self.key.clone()),
            state: Some(format!("{:?}", stuck.state)),
            linearized,
        }
    }
}

/// Numbers each operation's bit: completed operations in the closed bitset (in invocation
/// order), open ones in the open bitset. Also returns, for each completed operation, the end
/// (in words) of the closed bitset's window while it is the first one not linearized.
///
/// Why a window is enough: while completed operation `k` is not linearized, its return stays
/// in the list and the walk never passes it, so every operation linearized meanwhile had its
/// call before that return: it was invoked no later than `k` completed. In invocation order
/// those operations form a prefix, whose length is `reach`. Bits from the first clear one to
/// `reach` are all that can differ, about the concurrency, however long the history.
fn bit_slots<T>(ops: &[PartOp<T>]) -> (Vec<(bool, u32)>, Vec<u32>) {
    let mut slots = Vec::with_capacity(ops.len());
    let (mut closed, mut open) = (0u32, 0u32);
    let mut closed_invokes = Vec::new();
    for op in ops {
        if op.end_ns.is_some() {
            slots.push((false, closed));
            closed_invokes.push(op.invoke_ns);
            closed += 1;
        } else {
            slots.push((true, open));
            open += 1;
        }
    }
    let reach_words = ops
        .iter()
        .filter_map(|op| op.end_ns)
        .map(|end| {
            let reach = closed_invokes.partition_point(|&invoke| invoke <= end);
            reach.div_ceil(64) as u32
        })
        .collect();
    (slots, reach_words)
}

/// The set of linearized operations, with the Zobrist hash of its completed operations kept
/// up to date and the first word of the closed bitset that is not all ones.
struct Linearized {
    closed: Vec<u64>,
    open: Vec<u64>,
    lo_word: usize,
    hash: u64,
}

impl Linearized {
    fn new(closed: usize, open: usize) -> Linearized {
        Linearized {
            closed: vec![0; closed.div_ceil(64)],
            open: vec![0; open.div_ceil(64)],
            lo_word: 0,
            hash: 0,
        }
    }

    fn flip(&mut self, (open, i): (bool, u32), zobrist: u64) {
        let i = i as usize;
        if open {
            // Not hashed: the memo finds sets that differ only in open operations together.
            self.open[i / 64] ^= 1 << (i % 64);
            return;
        }
        self.hash ^= zobrist;
        self.closed[i / 64] ^= 1 << (i % 64);
        if self.closed[i / 64] & (1 << (i % 64)) == 0 {
            self.lo_word = self.lo_word.min(i / 64);
        }
        while self.lo_word < self.closed.len() && self.closed[self.lo_word] == u64::MAX {
            self.lo_word += 1;
        }
    }

    fn get(&self, (open, i): (bool, u32)) -> bool {
        let (words, i) = (if open { &self.open } else { &self.closed }, i as usize);
        words[i / 64] & (1 << (i % 64)) != 0
    }

    /// The words of the closed bitset that can differ between sets with the same `lo_word`.
    fn window(&self, reach_words: &[u32]) -> &[u64] {
        let Some(&word) = self.closed.get(self.lo_word) else {
            return &[];
        };
        let first_clear = self.lo_word * 64 + word.trailing_ones() as usize;
        // Past the last completed operation (all linearized): the partial last word is all.
        let end = reach_words
            .get(first_clear)
            .map_or(self.closed.len(), |&r| (r as usize).max(self.lo_word + 1));
        debug_assert!(
            self.closed[end..].iter().all(|&w| w == 0),
            "bits beyond the window"
        );
        &self.closed[self.lo_word..end]
    }
}

/// Memo of explored (linearized set, state) pairs. Pairs are grouped by their completed
/// operations and state (the group key): an open-addressing table over an arena finds the
/// group, so a key costs no allocation of its own; the group keeps the sets of open operations
/// seen with it. A key's completed operations are stored as their window of the closed bitset.
/// Membership only, never iterated.
///
/// Dominance: a pair is also "seen" when its group holds a subset of its open operations.
/// Whatever the new pair can still do, the explored one can too (the open operations the new
/// one used may simply never take effect there), and that search is complete. Without this,
/// every subset of the crashed operations available at a point is a distinct pair. A group
/// keeps only its minimal sets (an antichain), so it stays small.
struct Memo<S> {
    /// Per key: (hash, lo_word, offset of its window in `bits`, window words).
    keys: Vec<(u64, u32, usize, u32)>,
    bits: Vec<u64>,
    states: Vec<S>,
    /// Per key: the minimal open-operation sets seen with it, concatenated.
    open_sets: Vec<Vec<u64>>,
    /// Pairs stored (open sets over all groups, at least one per key).
    pairs: usize,
    /// Indices into `keys`; `NIL` = empty. Length is a power of two.
    slots: Vec<u32>,
}

impl<S: Eq + Hash + Clone> Memo<S> {
    fn new() -> Memo<S> {
        Memo {
            keys: Vec::new(),
            bits: Vec::new(),
            states: Vec::new(),
            open_sets: Vec::new(),
            pairs: 0,
            slots: vec![NIL; 1024],
        }
    }

    fn len(&self) -> usize {
        self.pairs
    }

    /// Inserts the pair; true when it was neither there nor dominated.
    fn insert(&mut self, set: &Linearized, reach_words: &[u32], state: &S) -> bool {
        let mut hasher = FxHasher::default();
        state.hash(&mut hasher);
        let hash = mix(set.hash ^ hasher.finish().rotate_left(17));
        let window = set.window(reach_words);
        let key = match self.find(hash, set.lo_word, window, state) {
            Ok(key) => key,
            Err(slot) => {
                self.slots[slot] = self.keys.len() as u32;
                let key = (
                    hash,
                    set.lo_word as u32,
                    self.bits.len(),
                    window.len() as u32,
                );
                self.keys.push(key);
                self.bits.extend_from_slice(window);
                self.states.push(state.clone());
                self.open_sets.push(set.open.clone());
                self.pairs += 1;
                if self.keys.len() * 2 > self.slots.len() {
                    self.grow();
                }
                return true;
            }
        };
        let words = set.open.len();
        let group = &mut self.open_sets[key];
        if words == 0 {
            return false;
        }
        let subset = |old: &[u64], new: &[u64]| old.iter().zip(new).all(|(o, n)| o & !n == 0);
        if group.chunks_exact(words).any(|old| subset(old, &set.open)) {
            return false;
        }
        // Keep the group an antichain: drop the sets the new one is a subset of.
        let before = group.len() / words;
        let kept: Vec<u64> = group
            .chunks_exact(words)
            .filter(|old| !subset(&set.open, old))
            .flatten()
            .copied()
            .collect();
        *group = kept;
        group.extend_from_slice(&set.open);
        self.pairs = self.pairs + group.len() / words - before;
        true
    }

    /// The key's index, or the empty slot where it belongs.
    fn find(&self, hash: u64, lo_word: usize, window: &[u64], state: &S) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            let index = self.slots[slot];
            if index == NIL {
                return Err(slot);
            }
            let (h, lo, offset, len) = self.keys[index as usize];
            if h == hash
                && lo as usize == lo_word
                && self.bits[offset..offset + len as usize] == *window
                && self.states[index as usize] == *state
            {
                return Ok(index as usize);
            }
            slot = (slot + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let size = self.slots.len() * 2;
        let mask = size - 1;
        self.slots = vec![NIL; size];
        for (i, key) in self.keys.iter().enumerate() {
            let mut slot = key.0 as usize & mask;
            while self.slots[slot] != NIL {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = i as u32;
        }
    }
}

/// Deterministic per-operation random words (SplitMix64).
fn splitmix64(i: u64) -> u64 {
    mix(i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A 64-bit finaliser (MurmurHash3's fmix64): spreads every input bit over the output.
pub(crate) fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The rustc "Fx" hash: fast and deterministic (no random seed), good enough for the memo
/// once finalised with [`mix`].
#[derive(Default)]
struct FxHasher {
    hash: u64,
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.write_u64(word);
        }
        for &b in chunks.remainder() {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, b: u8) {
        self.write_u64(u64::from(b));
    }

    fn write_u32(&mut self, w: u32) {
        self.write_u64(u64::from(w));
    }

    fn write_i64(&mut self, w: i64) {
        self.write_u64(w as u64);
    }

    fn write_usize(&mut self, w: usize) {
        self.write_u64(w as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memo_tells_new_pairs_from_seen_ones_across_growth() {
        let mut memo: Memo<u32> = Memo::new();
        let reach_words = vec![2; 100];
        let mut set = Linearized::new(100, 3);
        for i in 0..3000usize {
            let slot = (
                i % 7 == 0,
                (i % 100) as u32 % if i % 7 == 0 { 3 } else { 100 },
            );
            set.flip(slot, splitmix64(i as u64 % 100));
            assert!(
                memo.insert(&set, &reach_words, &(i as u32)),
                "pair {i} is new"
            );
        }
        assert_eq!(memo.len(), 3000);
        // Same bits and state again: seen. Same bits, other state: new.
        assert!(!memo.insert(&set, &reach_words, &2999));
        assert!(memo.insert(&set, &reach_words, &5000));
    }

    #[test]
    fn memo_prunes_supersets_of_open_operations_only() {
        let mut memo: Memo<u32> = Memo::new();
        let reach_words = vec![1; 10];
        let mut set = Linearized::new(10, 10);
        set.flip((true, 2), 0);
        assert!(memo.insert(&set, &reach_words, &1));
        set.flip((true, 5), 0);
        assert!(
            !memo.insert(&set, &reach_words, &1),
            "a superset of {{2}} is dominated"
        );
        set.flip((true, 2), 0);
        assert!(
            memo.insert(&set, &reach_words, &1),
            "{{5}} is not a superset of {{2}}"
        );
        set.flip((false, 0), splitmix64(0));
        assert!(
            memo.insert(&set, &reach_words, &1),
            "other completed operations"
        );
    }

    #[test]
    fn linearized_hash_and_low_word_depend_only_on_the_set() {
        let mut a = Linearized::new(130, 2);
        let mut b = Linearized::new(130, 2);
        for i in 0..64 {
            a.flip((false, i), splitmix64(u64::from(i)));
        }
        a.flip((true, 1), 77);
        b.flip((true, 1), 77);
        for i in (0..64).rev() {
            b.flip((false, i), splitmix64(u64::from(i)));
        }
        assert_eq!(
            (a.hash, a.lo_word, &a.closed),
            (b.hash, b.lo_word, &b.closed)
        );
        assert_eq!(a.lo_word, 1);
        a.flip((false, 5), splitmix64(5));
        assert_eq!(a.lo_word, 0);
        assert!(a.get((true, 1)) && !a.get((false, 5)) && a.get((false, 6)));
    }
}

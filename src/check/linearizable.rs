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
//! bitset, hashed incrementally (Zobrist: one random word per operation, xor-ed in and out).
//! Once every completed operation is linearized the rest are open ones, which can always come
//! last ("never happened"), so the search stops there.
//!
//! P-compositionality: the spec names each operation's object (partition key); by locality the
//! history is linearizable iff each partition is, and partitions are checked one by one in key
//! order, which keeps the search small and the output deterministic.
//!
//! A [`Budget`] bounds steps and memo entries; running out gives [`Verdict::Unknown`], never a
//! pass. Depends on: `check::history`, `check::spec`, the verdict types.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use super::history::{History, OpId};
use super::spec::SequentialSpec;
use super::{PartitionOrder, Verdict, Violation, Witness};

/// Limits of one check. Exceeding either gives [`Verdict::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Search steps over all partitions (one step = one call or return event visited).
    pub max_steps: u64,
    /// Memo entries in any one partition (each costs a bitset and a state).
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
    let partitions = compile(spec, history)?;
    let mut searches: Vec<Search<S>> = partitions
        .into_iter()
        .map(|(key, ops)| Search::new(spec, history, &key, ops))
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

type Partitions<T> = BTreeMap<String, Vec<PartOp<T>>>;

fn compile<S: SequentialSpec>(
    spec: &S,
    history: &History,
) -> Result<Partitions<S::Op>, ModelError> {
    let mut partitions: Partitions<S::Op> = BTreeMap::new();
    for (id, op) in history.ops.iter().enumerate() {
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
    linearized: Vec<u32>,
    state: S,
}

/// The mutable state of a search, kept between slices.
struct Walk<S> {
    /// Completed operations not linearized yet; zero means done.
    remaining_closed: usize,
    linearized: Bitset,
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
    history: &'a History,
    key: String,
    ops: Vec<PartOp<S::Op>>,
    /// Entry 0 is the head sentinel; entries 1.. are events in real-time order.
    events: Vec<Event>,
    next: Vec<u32>,
    prev: Vec<u32>,
    zobrist: Vec<u64>,
    walk: Option<Walk<S::State>>,
}

impl<'a, S: SequentialSpec> Search<'a, S> {
    fn new(spec: &'a S, history: &'a History, key: &str, ops: Vec<PartOp<S::Op>>) -> Self {
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
        let linearized = Bitset::new(ops.len());
        let walk = Walk {
            remaining_closed: ops.iter().filter(|o| o.end_ns.is_some()).count(),
            memo: Memo::new(linearized.words.len()),
            linearized,
            calls: Vec::new(),
            state: spec.init(),
            stuck: None,
            entry: next[HEAD as usize],
        };
        Search {
            spec,
            history,
            key: key.to_string(),
            ops,
            events,
            next,
            prev,
            zobrist,
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
                let op = event.op as usize;
                if let Some(next_state) = self.spec.step(&w.state, &self.ops[op].op) {
                    w.linearized.flip(op, self.zobrist[op]);
                    if w.memo.insert(&w.linearized, &next_state) {
                        if w.memo.len() > max_memo {
                            break self.out_of_budget("memo", w.calls.len());
                        }
                        w.calls
                            .push((w.entry, std::mem::replace(&mut w.state, next_state)));
                        w.remaining_closed -= usize::from(self.ops[op].end_ns.is_some());
                        self.lift(w.entry);
                        w.entry = self.next[HEAD as usize];
                        continue;
                    }
                    w.linearized.flip(op, self.zobrist[op]);
                }
                w.entry = self.next[w.entry as usize];
                continue;
            }
            // A return: its operation had to be linearized by now. Remember the furthest such
            // point for the witness, then backtrack.
            if w.stuck.as_ref().is_none_or(|s| w.entry > s.entry) {
                let linearized = w
                    .calls
                    .iter()
                    .map(|c| self.events[c.0 as usize].op)
                    .collect();
                w.stuck = Some(Stuck {
                    entry: w.entry,
                    linearized,
                    state: w.state.clone(),
                });
            }
            let Some((top, top_state)) = w.calls.pop() else {
                let stuck = w.stuck.take().expect("set above");
                break Outcome::Stuck(Box::new(self.violation(stuck)));
            };
            let op = self.events[top as usize].op as usize;
            w.state = top_state;
            w.linearized.flip(op, self.zobrist[op]);
            w.remaining_closed += usize::from(self.ops[op].end_ns.is_some());
            self.unlift(top);
            w.entry = self.next[top as usize];
        };
        (slice - slice_left, Some(outcome))
    }

    fn out_of_budget(&self, what: &str, depth: usize) -> Outcome {
        Outcome::OutOfBudget(format!(
            "the search ran out of its {what} budget in partition {:?} ({} operations, {depth} \
             linearized on the current path)",
            self.key,
            self.ops.len()
        ))
    }

    fn linearization(&self, calls: &[(u32, S::State)], linearized: &Bitset) -> Outcome {
        let order = calls
            .iter()
            .map(|c| self.ops[self.events[c.0 as usize].op as usize].id)
            .collect();
        let not_applied = (0..self.ops.len())
            .filter(|&i| !linearized.get(i))
            .map(|i| self.ops[i].id)
            .collect();
        Outcome::Linearized(PartitionOrder {
            key: self.key.clone(),
            order,
            not_applied,
        })
    }

    /// Builds the witness of a failed search from the furthest point it reached.
    fn violation(&self, stuck: Stuck<S::State>) -> Violation {
        let blocked = self.events[stuck.entry as usize].op as usize;
        let window = (self.ops[blocked].invoke_ns, self.ops[blocked].end_ns);
        let done: Vec<bool> = {
            let mut done = vec![false; self.ops.len()];
            stuck
                .linearized
                .iter()
                .for_each(|&i| done[i as usize] = true);
            done
        };
        // Operations that could have been ordered around the blocked one: not yet linearized
        // and overlapping its window. Capped to keep the witness small.
        let concurrent: Vec<usize> = (0..self.ops.len())
            .filter(|&i| i != blocked && !done[i])
            .filter(|&i| self.ops[i].invoke_ns <= window.1.unwrap_or(u64::MAX))
            .filter(|&i| self.ops[i].end_ns.is_none_or(|end| end >= window.0))
            .take(12)
            .collect();
        let tail = stuck.linearized.len().saturating_sub(6);
        let linearized: Vec<OpId> = stuck.linearized[tail..]
            .iter()
            .map(|&i| self.ops[i as usize].id)
            .collect();
        let id = self.ops[blocked].id;
        let mut ops: Vec<OpId> = linearized.iter().rev().take(3).copied().collect();
        ops.push(id);
        ops.extend(concurrent.iter().map(|&i| self.ops[i].id));
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
            self.history.ops[id].summary(),
            stuck.linearized.len(),
            self.spec.name(),
            stuck.state,
        );
        Violation {
            kind: "not-linearizable".to_string(),
            message,
            op: Some(id),
            ops,
            key: Some(self.key.clone()),
            state: Some(format!("{:?}", stuck.state)),
            linearized,
        }
    }
}

/// The set of linearized operations with its Zobrist hash kept up to date.
struct Bitset {
    words: Vec<u64>,
    hash: u64,
}

impl Bitset {
    fn new(n: usize) -> Bitset {
        Bitset {
            words: vec![0; n.div_ceil(64).max(1)],
            hash: 0,
        }
    }

    fn flip(&mut self, i: usize, zobrist: u64) {
        self.words[i / 64] ^= 1 << (i % 64);
        self.hash ^= zobrist;
    }

    fn get(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }
}

/// Memo of explored (linearized set, state) pairs: an open-addressing table over an arena,
/// so an entry costs no allocation of its own. Membership only, never iterated.
struct Memo<S> {
    words: usize,
    bits: Vec<u64>,
    states: Vec<S>,
    hashes: Vec<u64>,
    /// Indices into the arena; `NIL` = empty. Length is a power of two.
    slots: Vec<u32>,
}

impl<S: Eq + Hash + Clone> Memo<S> {
    fn new(words: usize) -> Memo<S> {
        Memo {
            words,
            bits: Vec::new(),
            states: Vec::new(),
            hashes: Vec::new(),
            slots: vec![NIL; 1024],
        }
    }

    fn len(&self) -> usize {
        self.states.len()
    }

    /// Inserts the pair; true when it was not there yet.
    fn insert(&mut self, set: &Bitset, state: &S) -> bool {
        let mut hasher = FxHasher::default();
        state.hash(&mut hasher);
        let hash = mix(set.hash ^ hasher.finish().rotate_left(17));
        if (self.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            let index = self.slots[slot];
            if index == NIL {
                self.slots[slot] = self.len() as u32;
                self.bits.extend_from_slice(&set.words);
                self.states.push(state.clone());
                self.hashes.push(hash);
                return true;
            }
            let i = index as usize;
            if self.hashes[i] == hash
                && self.bits[i * self.words..(i + 1) * self.words] == set.words[..]
                && self.states[i] == *state
            {
                return false;
            }
            slot = (slot + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let size = self.slots.len() * 2;
        let mask = size - 1;
        self.slots = vec![NIL; size];
        for (i, &hash) in self.hashes.iter().enumerate() {
            let mut slot = hash as usize & mask;
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
fn mix(mut x: u64) -> u64 {
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

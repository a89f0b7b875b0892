//! Pure rules behind three of the monitor's invariants (reference A.11), kept apart so that
//! each can be shown to fire on a hand-built case:
//! - primary order (items 4 and 5): along one server's delivered sequence, the next txn is
//!   the next one its primary broadcast: same epoch and counter + 1, or the first txn
//!   (counter 1) of a later epoch. A primary numbers its proposals 1, 2, 3, ... so any
//!   other step means the server skipped a txn that was broadcast before the one it
//!   delivered (or delivered out of order);
//! - integrity (item 1): a delivered txn is one a primary broadcast;
//! - leader-side ACK consistency (item 17): a leader of epoch e receives ACK(z) only for
//!   z = (e, 0) (NEWLEADER, and the ACK after UPTODATE) or for a zxid it sent that learner
//!   as a PROPOSAL during this leadership (on any of its connections: ZooKeeper keeps the
//!   ACKs of a learner's earlier connection).
//!
//! Depends on: zab (zxid helpers).

use std::collections::BTreeSet;

use crate::zab::msg::{make_zxid, zxid_counter, zxid_epoch, Zxid};

/// Whether delivering `next` right after `prev` keeps primary order (`prev` = 0: nothing
/// delivered yet).
pub fn primary_order_ok(prev: Zxid, next: Zxid) -> bool {
    let (pe, pc) = (zxid_epoch(prev), zxid_counter(prev));
    let (ne, nc) = (zxid_epoch(next), zxid_counter(next));
    (ne == pe && nc == pc + 1) || (ne > pe && nc == 1)
}

/// Integrity: the delivered txn with fingerprint `h` is in the proposal log, where its
/// zxid holds `proposed` (None: no proposal there).
pub fn integrity_ok(proposed: Option<&u64>, h: u64) -> bool {
    proposed == Some(&h)
}

/// Whether a leader of `epoch` may receive ACK(`z`) from a learner it sent `proposed`.
pub fn ack_legal(epoch: u32, z: Zxid, proposed: Option<&BTreeSet<Zxid>>) -> bool {
    z == make_zxid(epoch, 0) || proposed.is_some_and(|p| p.contains(&z))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn z(e: u32, c: u32) -> Zxid {
        make_zxid(e, c)
    }

    #[test]
    fn primary_order_accepts_the_next_txn_and_the_first_of_a_later_epoch() {
        assert!(primary_order_ok(0, z(1, 1)));
        assert!(primary_order_ok(z(1, 4), z(1, 5)));
        assert!(primary_order_ok(z(1, 4), z(3, 1)));
    }

    #[test]
    fn primary_order_fires_on_a_skipped_or_reordered_txn() {
        // ZOOKEEPER-2355's shape: a DIFF from a zxid the server never applied skips txns.
        assert!(!primary_order_ok(z(1, 4), z(1, 6)));
        assert!(!primary_order_ok(z(1, 4), z(2, 2)));
        assert!(!primary_order_ok(z(2, 1), z(1, 7)));
        assert!(!primary_order_ok(z(1, 4), z(1, 4)));
    }

    #[test]
    fn integrity_fires_on_a_txn_no_primary_broadcast() {
        let log = BTreeMap::from([(z(1, 1), 11), (z(1, 2), 12)]);
        assert!(integrity_ok(log.get(&z(1, 2)), 12));
        assert!(
            !integrity_ok(log.get(&z(1, 2)), 99),
            "another txn at a proposed zxid"
        );
        assert!(
            !integrity_ok(log.get(&z(1, 3)), 13),
            "a zxid nobody proposed"
        );
    }

    #[test]
    fn ack_consistency_fires_on_an_ack_for_a_zxid_not_sent_to_that_learner() {
        let sent = BTreeSet::from([z(2, 1), z(2, 2)]);
        assert!(ack_legal(2, z(2, 0), None), "NEWLEADER ACK");
        assert!(ack_legal(2, z(2, 2), Some(&sent)));
        assert!(!ack_legal(2, z(2, 3), Some(&sent)), "never proposed");
        assert!(
            !ack_legal(2, z(2, 1), None),
            "proposed to another learner only"
        );
        assert!(
            !ack_legal(3, z(2, 0), Some(&sent)),
            "an older epoch's NEWLEADER"
        );
    }
}

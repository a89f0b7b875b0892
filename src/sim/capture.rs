//! An optional record of what the kernel did, for pictures and exports: every message with its
//! send and delivery time and a payload summary, and every crash, restart and halt.
//!
//! Off in normal runs: the kernel holds `Option<Box<Capture>>` and every hook is one branch on
//! `None`. Capturing never touches the trace hash (it only reads what the kernel already
//! decided), so a captured run has the hash of the same run uncaptured.
//!
//! Depends on: nothing in the crate.

use serde::{Deserialize, Serialize};

/// Longest payload summary kept (bytes; cut at a character boundary).
pub const SUMMARY_MAX: usize = 200;

/// One message: sent by `from` to `to`; `delivered_ns` is None when it was lost (a broken
/// connection, a closed end, a crash) or still in flight when the run stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgRecord {
    pub from: u32,
    pub to: u32,
    pub sent_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_ns: Option<u64>,
    /// The payload, as `Debug` prints it, shortened.
    pub summary: String,
}

/// A node's process event: "crash", "restart" or "halt" (with the node's reason).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMark {
    pub at_ns: u64,
    pub node: u32,
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// What a captured run recorded, in the kernel's own order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    /// Messages by id (the id is the index).
    pub messages: Vec<MsgRecord>,
    pub marks: Vec<NodeMark>,
    /// Send and delivery order across the run: (message id, true for the send). Exports
    /// compute vector clocks in this order.
    pub order: Vec<(u32, bool)>,
}

impl Capture {
    /// Records a send; returns the message id to carry with it.
    pub fn sent(&mut self, from: u32, to: u32, at_ns: u64, payload: &dyn std::fmt::Debug) -> u64 {
        let id = self.messages.len() as u32;
        self.messages.push(MsgRecord {
            from,
            to,
            sent_ns: at_ns,
            delivered_ns: None,
            summary: shorten(format!("{payload:?}")),
        });
        self.order.push((id, true));
        id as u64
    }

    pub fn delivered(&mut self, id: u64, at_ns: u64) {
        if let Some(m) = self.messages.get_mut(id as usize) {
            m.delivered_ns = Some(at_ns);
            self.order.push((id as u32, false));
        }
    }

    pub fn mark(&mut self, at_ns: u64, node: u32, kind: &str, detail: &str) {
        self.marks.push(NodeMark {
            at_ns,
            node,
            kind: kind.to_string(),
            detail: detail.to_string(),
        });
    }
}

/// Cuts a summary to [`SUMMARY_MAX`] bytes at a character boundary, marking the cut.
pub fn shorten(mut text: String) -> String {
    if text.len() > SUMMARY_MAX {
        let mut cut = SUMMARY_MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_and_deliveries_pair_by_id_in_order() {
        let mut c = Capture::default();
        let a = c.sent(0, 1, 10, &"ping");
        let b = c.sent(1, 0, 12, &"pong");
        c.delivered(a, 20);
        assert_eq!(c.messages[a as usize].delivered_ns, Some(20));
        assert_eq!(c.messages[b as usize].delivered_ns, None);
        assert_eq!(c.messages[b as usize].summary, "\"pong\"");
        assert_eq!(c.order, vec![(0, true), (1, true), (0, false)]);
    }

    #[test]
    fn long_summaries_are_cut_at_a_character_boundary() {
        let long = "é".repeat(SUMMARY_MAX);
        let short = shorten(long);
        assert!(short.len() <= SUMMARY_MAX + '…'.len_utf8());
        assert!(short.ends_with('…'));
    }
}

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
    /// Index of the delivered event whose handler sent it.
    pub sent_by_event: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_ns: Option<u64>,
    /// Index of its delivery among delivered events (0 when not delivered).
    #[serde(default)]
    pub delivery_event: u64,
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
    /// Sends, deliveries and marks in the order the kernel did them. Exports compute vector
    /// clocks in this order.
    pub order: Vec<Step>,
}

/// One entry of [`Capture::order`]: an index into `messages` or `marks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Send(u32),
    Deliver(u32),
    Mark(u32),
}

impl Capture {
    /// Records a send; returns the message id to carry with it.
    /// `event` is the index of the event being handled when the message was sent.
    pub fn sent(
        &mut self,
        (from, to): (u32, u32),
        at_ns: u64,
        event: u64,
        payload: &dyn std::fmt::Debug,
    ) -> u64 {
        let id = self.messages.len() as u32;
        self.messages.push(MsgRecord {
            from,
            to,
            sent_ns: at_ns,
            sent_by_event: event,
            delivered_ns: None,
            delivery_event: 0,
            summary: shorten(format!("{payload:?}")),
        });
        self.order.push(Step::Send(id));
        id as u64
    }

    /// The message was delivered at `at_ns` as event `event`.
    pub fn delivered(&mut self, id: u64, at_ns: u64, event: u64) {
        if let Some(m) = self.messages.get_mut(id as usize) {
            m.delivered_ns = Some(at_ns);
            m.delivery_event = event;
            self.order.push(Step::Deliver(id as u32));
        }
    }

    pub fn mark(&mut self, at_ns: u64, node: u32, kind: &str, detail: &str) {
        self.order.push(Step::Mark(self.marks.len() as u32));
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
        let a = c.sent((0, 1), 10, 1, &"ping");
        let b = c.sent((1, 0), 12, 2, &"pong");
        c.delivered(a, 20, 3);
        c.mark(25, 1, "crash", "");
        assert_eq!(c.messages[a as usize].delivered_ns, Some(20));
        assert_eq!(c.messages[a as usize].delivery_event, 3);
        assert_eq!(c.messages[b as usize].delivered_ns, None);
        assert_eq!(c.messages[b as usize].summary, "\"pong\"");
        let want = vec![
            Step::Send(0),
            Step::Send(1),
            Step::Deliver(0),
            Step::Mark(0),
        ];
        assert_eq!(c.order, want);
    }

    #[test]
    fn long_summaries_are_cut_at_a_character_boundary() {
        let long = "é".repeat(SUMMARY_MAX);
        let short = shorten(long);
        assert!(short.len() <= SUMMARY_MAX + '…'.len_utf8());
        assert!(short.ends_with('…'));
    }
}

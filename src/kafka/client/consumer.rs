//! Kafka's consumer as a workload node (skeleton; see the module doc of `kafka::client`).
//!
//! May depend on: `node`, `kafka`.

use std::rc::Rc;

use super::record::KafkaRecord;
use super::ClientSetup;
use crate::kafka::wire::WireMsg;
use crate::node::{Context, Event, Node};

pub struct Consumer {
    index: u32,
    setup: Rc<ClientSetup>,
    history: Vec<KafkaRecord>,
}

impl Consumer {
    pub fn new(index: u32, setup: Rc<ClientSetup>) -> Self {
        Consumer {
            index,
            setup,
            history: Vec::new(),
        }
    }
    pub fn index(&self) -> u32 {
        self.index
    }
    pub fn setup(&self) -> &ClientSetup {
        &self.setup
    }
    /// Everything recorded so far, in order.
    pub fn history(&self) -> &[KafkaRecord] {
        &self.history
    }
}

impl Node for Consumer {
    type Msg = WireMsg;
    fn on_event(&mut self, ctx: &mut Context<'_, WireMsg>, event: Event<WireMsg>) {
        if let Event::Stop = event {
            ctx.halt("stopped");
        }
    }
}

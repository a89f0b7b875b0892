//! The one message type of a Kafka world: ZooKeeper's protocol (between ZooKeeper servers,
//! and between a broker's embedded ZooKeeper client and a server) and Kafka's (between
//! brokers, the controller and clients). A broker speaks both; a ZooKeeper server and a
//! Kafka client each speak one, wrapped by the world's node enum.
//!
//! May depend on: `zab::msg`, `kafka::msg`.

use super::msg::KafkaMsg;
use crate::zab::msg::Msg as ZkMsg;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WireMsg {
    Zk(ZkMsg),
    Kafka(KafkaMsg),
}

impl From<ZkMsg> for WireMsg {
    fn from(m: ZkMsg) -> Self {
        WireMsg::Zk(m)
    }
}

impl From<KafkaMsg> for WireMsg {
    fn from(m: KafkaMsg) -> Self {
        WireMsg::Kafka(m)
    }
}

impl WireMsg {
    pub fn into_zk(self) -> Option<ZkMsg> {
        match self {
            WireMsg::Zk(m) => Some(m),
            WireMsg::Kafka(_) => None,
        }
    }
    pub fn into_kafka(self) -> Option<KafkaMsg> {
        match self {
            WireMsg::Kafka(m) => Some(m),
            WireMsg::Zk(_) => None,
        }
    }
}

//! Tests of the Kafka world's wiring: the layout, the factory, fault targets and roles.

use super::*;
use crate::sim::SimConfig;

fn spec() -> KafkaSpec {
    serde_json::from_str(
        r#"{"zookeeper": {"servers": 3}, "brokers": 2, "topics": [{"name": "t",
            "partitions": 2, "replication.factor": 2}],
            "producer": {"count": 2}, "consumer": {"count": 1}}"#,
    )
    .unwrap()
}

fn world(system: &KafkaSystem) -> Sim<KafkaNode> {
    let config = SimConfig {
        seed: 1,
        net: Default::default(),
        disk: Default::default(),
        timeline_capture: 0,
        record_checksums: false,
    };
    Sim::new(config, system.names(), system.factory())
}

#[test]
fn the_factory_builds_each_part_at_its_ids() {
    let system = KafkaSystem::new(&spec());
    let sim = world(&system);
    let kinds: Vec<&str> = (0..sim.node_count() as u32)
        .map(|i| match sim.node(NodeId(i)).unwrap() {
            KafkaNode::Zk(_) => "zk",
            KafkaNode::Broker(_) => "broker",
            KafkaNode::Producer(_) => "producer",
            KafkaNode::Consumer(_) => "consumer",
        })
        .collect();
    assert_eq!(
        kinds,
        ["zk", "zk", "zk", "broker", "broker", "producer", "producer", "consumer"]
    );
    assert_eq!(system.names()[3], "kafka0");
    let b = sim.node(NodeId(4)).unwrap().broker().unwrap();
    assert_eq!(b.id(), 1, "broker id i is node Z+i");
    assert_eq!(b.setup().zk_servers, system.layout().zk);
    assert_eq!(sim.node(NodeId(6)).unwrap().producer().unwrap().index(), 1);
    let targets: Vec<u32> = system.fault_targets().iter().map(|n| n.0).collect();
    assert_eq!(targets, [0, 1, 2, 3, 4]);
    assert_eq!(
        partitions(&spec()),
        [
            (TopicPartition::new("t", 0), vec![0, 1]),
            (TopicPartition::new("t", 1), vec![1, 0])
        ]
    );
}

#[test]
fn roles_resolve_to_live_parts_and_to_nobody_before_elections() {
    let system = KafkaSystem::new(&spec());
    let sim = world(&system);
    let ids = |role: &str| -> Vec<u32> {
        system
            .resolve_role(role, &sim)
            .iter()
            .map(|n| n.0)
            .collect()
    };
    assert_eq!(ids("@zk"), [0, 1, 2]);
    assert_eq!(ids("@broker"), [3, 4]);
    // Nothing has run yet: no ZooKeeper leader, controller or partition leader exists.
    assert!(ids("@zk-leader").is_empty());
    assert!(ids("@controller").is_empty());
    assert!(ids("@partition-leader:t-1").is_empty());
    assert!(ids("@partition-leader:nope-0").is_empty());
    // Nor any protocol moment.
    assert!(ids("@controller-electing").is_empty());
    assert!(ids("@rejoining").is_empty());
    let role = system.role(&sim, NodeId(3)).unwrap();
    assert_eq!((role.name.as_str(), role.epoch), ("BROKER", 0));
    assert_eq!(system.role(&sim, NodeId(0)).unwrap().name, "LOOKING");
    assert!(
        system.role(&sim, NodeId(5)).is_none(),
        "clients have no role"
    );
}

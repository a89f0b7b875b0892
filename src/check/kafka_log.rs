//! Kafka log anomalies (stub, being written).
use super::history::History;
use super::linearizable::ModelError;
use super::Verdict;

/// Options of the Kafka log checker.
#[derive(Clone, Copy, Debug, Default)]
pub struct KafkaLogOptions {}

/// Checks a Kafka-style history.
pub fn check_kafka_log(_h: &History, _o: &KafkaLogOptions) -> Result<Verdict, ModelError> {
    Ok(Verdict::Unknown {
        reason: "todo".into(),
    })
}

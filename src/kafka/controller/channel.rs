//! Delivery of controller requests (ControllerChannelManager): one FIFO queue per registered
//! broker with one request in flight, re-sent until that broker answers, as Kafka's
//! RequestSendThread does. One in flight keeps a broker's requests in the controller's
//! order even across re-sends (an UpdateMetadata must never overtake a newer one).
//!
//! The broker hosting the controller carries a request at most once; a request without an
//! answer is re-sent after [`RESEND_AFTER_NS`] (Kafka's `controller.socket.timeout.ms`), or
//! [`BACKOFF_NS`] after the broker reports it could not deliver it. A response is matched to
//! the in-flight request by its API. A broker that leaves the cluster loses its queue (its
//! start-up sends it everything again).
//!
//! May depend on: `kafka::msg`.

use std::collections::{BTreeMap, VecDeque};

use super::super::msg::{BrokerId, Request, Response};

/// Kafka's `controller.socket.timeout.ms` default (30 s).
pub const RESEND_AFTER_NS: u64 = 30_000_000_000;
/// The RequestSendThread's pause after a failed send (100 ms).
pub const BACKOFF_NS: u64 = 100_000_000;

#[derive(Clone, Debug)]
struct InFlight {
    request: Request,
    /// When to send it again without an answer.
    resend_at_ns: u64,
}

#[derive(Clone, Debug, Default)]
struct BrokerQueue {
    queued: VecDeque<Request>,
    in_flight: Option<InFlight>,
}

#[derive(Clone, Debug, Default)]
pub struct Channel {
    brokers: BTreeMap<BrokerId, BrokerQueue>,
}

fn answers(request: &Request, response: &Response) -> bool {
    matches!(
        (request, response),
        (Request::LeaderAndIsr { .. }, Response::LeaderAndIsr { .. })
            | (
                Request::UpdateMetadata { .. },
                Response::UpdateMetadata { .. }
            )
            | (Request::StopReplica { .. }, Response::StopReplica { .. })
    )
}

impl Channel {
    pub fn add_broker(&mut self, b: BrokerId) {
        self.brokers.entry(b).or_default();
    }

    pub fn remove_broker(&mut self, b: BrokerId) {
        self.brokers.remove(&b);
    }

    /// Requests queued or in flight to `b` (0 for an unknown broker).
    pub fn backlog(&self, b: BrokerId) -> usize {
        self.brokers
            .get(&b)
            .map_or(0, |q| q.queued.len() + usize::from(q.in_flight.is_some()))
    }

    /// Queues `request` for `to`; returns it when it can go out at once.
    pub fn enqueue(&mut self, to: BrokerId, request: Request, now_ns: u64) -> Option<Request> {
        let q = self.brokers.get_mut(&to)?;
        q.queued.push_back(request);
        Self::next(q, now_ns)
    }

    fn next(q: &mut BrokerQueue, now_ns: u64) -> Option<Request> {
        if q.in_flight.is_some() {
            return None;
        }
        let request = q.queued.pop_front()?;
        q.in_flight = Some(InFlight {
            request: request.clone(),
            resend_at_ns: now_ns.saturating_add(RESEND_AFTER_NS),
        });
        Some(request)
    }

    /// `from` answered: the in-flight request is done; returns the next one to send.
    pub fn on_response(&mut self, from: BrokerId, resp: &Response, now_ns: u64) -> Option<Request> {
        let q = self.brokers.get_mut(&from)?;
        if !q
            .in_flight
            .as_ref()
            .is_some_and(|f| answers(&f.request, resp))
        {
            return None;
        }
        q.in_flight = None;
        Self::next(q, now_ns)
    }

    /// The broker could not deliver to `to`: try again after the backoff.
    pub fn on_send_failed(&mut self, to: BrokerId, now_ns: u64) {
        if let Some(f) = self.brokers.get_mut(&to).and_then(|q| q.in_flight.as_mut()) {
            f.resend_at_ns = now_ns.saturating_add(BACKOFF_NS);
        }
    }

    /// Requests due for a re-send.
    pub fn on_tick(&mut self, now_ns: u64) -> Vec<(BrokerId, Request)> {
        let mut out = Vec::new();
        for (&b, q) in &mut self.brokers {
            if let Some(f) = q.in_flight.as_mut().filter(|f| f.resend_at_ns <= now_ns) {
                f.resend_at_ns = now_ns.saturating_add(RESEND_AFTER_NS);
                out.push((b, f.request.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::msg::ErrorCode;
    use super::*;

    fn um(epoch: u32) -> Request {
        Request::UpdateMetadata {
            controller_id: 0,
            controller_epoch: epoch,
            broker_epoch: 1,
            partitions: vec![],
            live_brokers: vec![0],
        }
    }

    #[test]
    fn one_request_in_flight_per_broker_and_resent_until_answered() {
        let mut ch = Channel::default();
        ch.add_broker(1);
        assert_eq!(ch.enqueue(1, um(1), 0), Some(um(1)));
        assert_eq!(ch.enqueue(1, um(2), 0), None, "waits for the first answer");
        assert_eq!(ch.enqueue(7, um(1), 0), None, "unknown broker: dropped");
        assert_eq!(ch.backlog(1), 2);
        assert!(ch.on_tick(RESEND_AFTER_NS - 1).is_empty());
        assert_eq!(ch.on_tick(RESEND_AFTER_NS), vec![(1, um(1))]);
        ch.on_send_failed(1, RESEND_AFTER_NS + 5);
        assert_eq!(
            ch.on_tick(RESEND_AFTER_NS + 5 + BACKOFF_NS),
            vec![(1, um(1))]
        );
        // A response of another API does not complete it.
        let stop = Response::StopReplica {
            error: ErrorCode::None,
            partitions: vec![],
        };
        assert_eq!(ch.on_response(1, &stop, 1), None);
        let ok = Response::UpdateMetadata {
            error: ErrorCode::None,
        };
        assert_eq!(ch.on_response(1, &ok, 1), Some(um(2)));
        assert_eq!(ch.on_response(1, &ok, 1), None);
        assert_eq!(ch.backlog(1), 0);
        ch.remove_broker(1);
        assert_eq!(ch.enqueue(1, um(3), 2), None);
    }
}

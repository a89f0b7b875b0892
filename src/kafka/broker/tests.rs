//! Unit tests of the broker: one broker driven by hand-made events.

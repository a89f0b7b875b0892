//! Integration tests of the history checkers: every peer history against its expected verdict,
//! hand-written bad histories for every model and anomaly, and property tests.

mod check {
    mod peer;
}

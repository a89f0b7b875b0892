//! Integration tests of the history checkers: every peer history against its expected verdict,
//! hand-written bad histories for every model and anomaly, the command's exit codes, and
//! property tests.

mod check {
    mod command;
    mod kafka;
    mod linearizable;
    mod peer;
    mod props;
    mod util;
    mod zookeeper;
}

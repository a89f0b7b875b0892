//! test kit placeholder

//! A stateful fake vyte (being written).

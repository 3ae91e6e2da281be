//! A stateful fake zaia (being written).

//! A stateful fake saleschat (being written).

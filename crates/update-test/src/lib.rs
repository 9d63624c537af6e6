//! update-test (being written).

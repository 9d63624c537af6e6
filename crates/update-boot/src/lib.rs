//! update-boot (being written).

//! update-bundle (being written).

//! update-native (being written).

//! libupdate (being written).

//! ICY metadata (stub; being written).

//! serde bridge (placeholder, filled below).

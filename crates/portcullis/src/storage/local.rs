//! Local filesystem storage (being written).
#[derive(Debug)]
pub struct LocalStorage;

//! Config-file users (being written).
#[derive(Debug)]
pub struct ConfigAuthenticator;

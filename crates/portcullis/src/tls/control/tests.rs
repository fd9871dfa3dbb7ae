//! ControlTls tests

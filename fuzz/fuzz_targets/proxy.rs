//! Arbitrary bytes as a PROXY protocol header: never a panic; a header
//! found is no longer than the bytes given and than the limits; a request
//! for more bytes asks for at least one and never past the limits, so a
//! reader that follows it cannot read past a header or without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_proto::proxy::{parse, Parse, V1_MAX, V2_MAX};

fuzz_target!(|buf: &[u8]| {
    match parse(buf) {
        Ok(Parse::Done { len, .. }) => {
            assert!(len <= buf.len());
            assert!(len <= V1_MAX.max(V2_MAX));
        }
        Ok(Parse::Need(n)) => {
            assert!(n > 0);
            assert!(buf.len() + n <= V1_MAX.max(V2_MAX));
        }
        Err(_) => {}
    }
});

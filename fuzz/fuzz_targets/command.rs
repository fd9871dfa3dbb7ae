//! Bytes from a client, split at an arbitrary point, through the line
//! framing and the command parser: nothing may panic, lines respect the
//! limit, and every parsed command has a verb.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_proto::command::Command;
use portcullis_proto::framing::{Frame, LineDecoder};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| *b as usize % (data.len().max(1)));
    let mut d = LineDecoder::new(512);
    let mut frames = Vec::new();
    d.feed(&data[..split], &mut frames);
    d.feed(&data[split..], &mut frames);
    for f in frames {
        if let Frame::Line(line) = f {
            assert!(line.len() <= 512);
            if let Ok(cmd) = Command::parse(&line) {
                assert!(!cmd.verb().is_empty());
            }
        }
    }
});

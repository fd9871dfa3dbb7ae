//! TYPE A line-end conversion (RFC 959 section 3.1.1.1): files are stored with
//! Unix LF line ends and travel as CRLF. Both directions are streaming: the
//! state between chunks is one flag, so a CRLF split across two reads is
//! handled.

/// LF -> CRLF for RETR. A LF already preceded by CR is left alone.
#[derive(Debug, Default)]
pub struct ToWire {
    last_cr: bool,
}

impl ToWire {
    /// Convert `input`, appending to `out`.
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 16);
        for &b in input {
            if b == b'\n' && !self.last_cr {
                out.push(b'\r');
            }
            out.push(b);
            self.last_cr = b == b'\r';
        }
    }
}

/// CRLF -> LF for STOR. A lone CR (not followed by LF) is kept.
#[derive(Debug, Default)]
pub struct FromWire {
    pending_cr: bool,
}

impl FromWire {
    /// Convert `input`, appending to `out`.
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len());
        for &b in input {
            if self.pending_cr {
                self.pending_cr = false;
                if b != b'\n' {
                    out.push(b'\r');
                }
            }
            if b == b'\r' {
                self.pending_cr = true;
            } else {
                out.push(b);
            }
        }
    }

    /// Flush a CR held back at the end of the stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.push(b'\r');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_wire_adds_cr_once() {
        let mut c = ToWire::default();
        let mut out = Vec::new();
        c.convert(b"a\nb\r", &mut out);
        c.convert(b"\nc\n", &mut out);
        assert_eq!(out, b"a\r\nb\r\nc\r\n");
    }

    #[test]
    fn from_wire_strips_cr_across_chunks() {
        let mut c = FromWire::default();
        let mut out = Vec::new();
        c.convert(b"a\r\nb\r", &mut out);
        c.convert(b"\nc\rd\r", &mut out);
        c.finish(&mut out);
        assert_eq!(out, b"a\nb\nc\rd\r");
    }
}

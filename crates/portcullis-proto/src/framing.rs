//! Control-connection framing: bytes in, command lines out.
//!
//! Lines end with CRLF or a bare LF (RFC 959 asks for CRLF; many clients and
//! scripts send LF). Telnet commands are stripped (RFC 959 section 4.1.3: a
//! client sends IAC IP and IAC DM (Synch) before ABOR), `IAC IAC` stands for a
//! literal 0xFF. A line longer than the limit is never buffered whole: its
//! bytes are dropped as they arrive and it yields [`Frame::TooLong`] once its
//! end is seen.

/// Telnet "interpret as command".
const IAC: u8 = 255;
const WILL: u8 = 251;
const DONT: u8 = 254;

/// The default maximum line length (bytes, without the line end).
pub const DEFAULT_MAX_LINE: usize = 4096;

/// One unit of control-connection input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its line end and Telnet commands.
    Line(Vec<u8>),
    /// A line that exceeded the maximum length; its bytes were discarded.
    TooLong,
}

/// Where the decoder is inside a Telnet command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Telnet {
    Data,
    /// Saw IAC.
    Iac,
    /// Saw IAC WILL/WONT/DO/DONT: the next byte is the option.
    Option,
}

/// Incremental line decoder.
#[derive(Debug)]
pub struct LineDecoder {
    line: Vec<u8>,
    max: usize,
    overflow: bool,
    telnet: Telnet,
}

impl Default for LineDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LINE)
    }
}

impl LineDecoder {
    /// A decoder that refuses lines longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        LineDecoder {
            line: Vec::with_capacity(128),
            max,
            overflow: false,
            telnet: Telnet::Data,
        }
    }

    /// Feed bytes; complete frames are appended to `out`. Returns how many
    /// bytes were consumed (always all of them).
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Frame>) -> usize {
        for &b in data {
            match self.telnet {
                Telnet::Iac => {
                    self.telnet = match b {
                        IAC => {
                            self.push(IAC);
                            Telnet::Data
                        }
                        WILL..=DONT => Telnet::Option,
                        // IP, DM, AYT, NOP, ...: a two-byte command, dropped.
                        _ => Telnet::Data,
                    };
                    continue;
                }
                Telnet::Option => {
                    self.telnet = Telnet::Data;
                    continue;
                }
                Telnet::Data => {}
            }
            match b {
                IAC => self.telnet = Telnet::Iac,
                b'\n' => {
                    if self.line.last() == Some(&b'\r') {
                        self.line.pop();
                    }
                    // `push` keeps one byte past the limit for a CR; a line
                    // that still has it is one byte too long.
                    if self.overflow || self.line.len() > self.max {
                        out.push(Frame::TooLong);
                    } else {
                        out.push(Frame::Line(std::mem::take(&mut self.line)));
                    }
                    self.line.clear();
                    self.overflow = false;
                }
                _ => self.push(b),
            }
        }
        data.len()
    }

    fn push(&mut self, b: u8) {
        if self.overflow {
            return;
        }
        // +1 leaves room for the CR of a CRLF.
        if self.line.len() > self.max {
            self.overflow = true;
            self.line = Vec::new();
        } else {
            self.line.push(b);
        }
    }

    /// Bytes of an unfinished line currently held (bounded by the maximum).
    pub fn pending(&self) -> usize {
        self.line.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(dec: &mut LineDecoder, data: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        dec.feed(data, &mut out);
        out
    }

    #[test]
    fn limit_is_exact_with_or_without_cr() {
        // Found by the framing property test: max+1 bytes without a CR got through.
        let mut d = LineDecoder::new(4);
        let mut f = Vec::new();
        d.feed(b"abcd\nabcd\r\nabcde\nabcde\r\n", &mut f);
        assert_eq!(
            f,
            vec![
                Frame::Line(b"abcd".to_vec()),
                Frame::Line(b"abcd".to_vec()),
                Frame::TooLong,
                Frame::TooLong
            ]
        );
    }

    #[test]
    fn crlf_and_lf_and_split_input() {
        let mut d = LineDecoder::default();
        assert_eq!(
            frames(&mut d, b"USER a\r\nNO"),
            vec![Frame::Line(b"USER a".to_vec())]
        );
        assert_eq!(
            frames(&mut d, b"OP\nQUIT\r"),
            vec![Frame::Line(b"NOOP".to_vec())]
        );
        assert_eq!(frames(&mut d, b"\n"), vec![Frame::Line(b"QUIT".to_vec())]);
    }

    #[test]
    fn telnet_ip_dm_before_abor_are_stripped() {
        let mut d = LineDecoder::default();
        let input = [IAC, 244, IAC, 242, b'A', b'B', b'O', b'R', b'\r', b'\n'];
        assert_eq!(frames(&mut d, &input), vec![Frame::Line(b"ABOR".to_vec())]);
        let input = [IAC, 253, 1, b'X', IAC, IAC, b'\n'];
        assert_eq!(frames(&mut d, &input), vec![Frame::Line(vec![b'X', 255])]);
    }

    #[test]
    fn overlong_line_is_dropped_without_buffering() {
        let mut d = LineDecoder::new(16);
        let big = vec![b'a'; 10_000];
        assert!(frames(&mut d, &big).is_empty());
        assert!(d.pending() <= 17);
        assert_eq!(
            frames(&mut d, b"aaa\r\nNOOP\r\n"),
            vec![Frame::TooLong, Frame::Line(b"NOOP".to_vec())]
        );
    }

    #[test]
    fn exact_limit_is_accepted() {
        let mut d = LineDecoder::new(8);
        assert_eq!(
            frames(&mut d, b"12345678\r\n"),
            vec![Frame::Line(b"12345678".to_vec())]
        );
    }
}

//! The server's log: the tracing subscriber `serve` installs, a text
//! format that hostile values cannot forge, the panic hook and the one way
//! a fatal error is reported.
//!
//! Text format. tracing's default writes a `Display` value as it is, so an
//! uploaded file named `x user=root result=ok` would add fields that look
//! real, and a value or message with a newline would start a line of its
//! own. Here every event is one line and every value follows logfmt's
//! rules: a value that is empty or holds a space, `=`, `"`, `\` or any
//! control character (or U+2028, U+2029) is quoted, with `"` and `\`
//! escaped and those characters written as `\n`, `\r`, `\t` or `\u{..}`;
//! values the code records as strings (`user` at login) are always
//! quoted, as tracing's default does. The message is written
//! first, as in tracing's default, escaped the same way and quoted when
//! it holds `=`, `"` or `\`. Span fields (the session's `user`, `peer`)
//! follow the same rules. The JSON format escapes by itself.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;

use crate::options::LogFormat;

/// Install the subscriber for `format` (filter from `PORTCULLIS_LOG` or
/// `RUST_LOG`) and the panic hook that reports through it.
pub fn init(format: LogFormat) {
    let filter = std::env::var("PORTCULLIS_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        // rustls warns about clients that send an IP address as SNI (lftp,
        // curl); that is the clients' business, not the operator's.
        .unwrap_or_else(|_| "info,rustls=error".into());
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => fmt
            .fmt_fields(SafeFields)
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
        // One object per line; the session's span fields (id, peer, user)
        // under "span", the event's own under "fields".
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    install_panic_hook();
}

/// A panic is logged as one event (one JSON object under
/// `log.format = "json"`), inside the span of the session it happened in.
/// The session's task ends (tokio catches the unwind) and the server
/// serves on.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(a panic without a message)".into());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(panic = %message, %location, "panic: a bug in portcullis");
    }));
}

/// A fatal error of `serve`: logged (in the configured format), before the
/// process exits unsuccessfully.
pub fn fatal(error: &dyn fmt::Display) {
    tracing::error!("{error}");
}

/// [`FormatFields`] for the text format, with logfmt's quoting (see the
/// module header).
pub struct SafeFields;

impl<'w> FormatFields<'w> for SafeFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = SafeVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct SafeVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl SafeVisitor<'_> {
    fn put(&mut self, field: &Field, value: &str, always_quote: bool) {
        if self.result.is_err() {
            return;
        }
        let w = &mut self.writer;
        let sep = if self.first { "" } else { " " };
        self.first = false;
        self.result = if field.name() == "message" {
            w.write_str(sep)
                .and_then(|()| push_value(w, value, value.contains(['=', '"', '\\'])))
        } else {
            // `r#type` and the like: the name without its raw prefix.
            let name = field.name().trim_start_matches("r#");
            write!(w, "{sep}{name}=")
                .and_then(|()| push_value(w, value, always_quote || needs_quotes(value)))
        };
    }
}

impl Visit for SafeVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value, true);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // Formatted once into this thread's buffer (whether to quote
        // depends on the whole value): no allocation per field.
        thread_local!(static TEXT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) });
        TEXT.with(|cell| match cell.try_borrow_mut() {
            Ok(mut text) => {
                text.clear();
                let _ = write!(text, "{value:?}");
                self.put(field, &text, false);
                if text.capacity() > 64 << 10 {
                    // One huge value is not kept for the thread's life.
                    *text = String::new();
                }
            }
            // A value whose Debug logs in turn: its own buffer.
            Err(_) => self.put(field, &format!("{value:?}"), false),
        });
    }
}

/// logfmt: a value that would not read back as itself unquoted.
fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c == '\\' || breaks_lines(c))
}

/// A control character, or a Unicode line or paragraph separator that
/// some viewers show as a line break.
fn breaks_lines(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// `value`, quoted or not, with its control characters escaped (and,
/// quoted, its `"` and `\`).
fn push_value(out: &mut impl fmt::Write, value: &str, quoted: bool) -> fmt::Result {
    if quoted {
        out.write_char('"')?;
    }
    for c in value.chars() {
        match c {
            '"' | '\\' if quoted => {
                out.write_char('\\')?;
                out.write_char(c)?;
            }
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if breaks_lines(c) => write!(out, "\\u{{{:x}}}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    if quoted {
        out.write_char('"')?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: &str) -> String {
        let mut out = String::new();
        push_value(&mut out, v, needs_quotes(v)).unwrap();
        out
    }

    #[test]
    fn plain_values_stay_as_they_are() {
        assert_eq!(value("alice"), "alice");
        assert_eq!(value("127.0.0.1:2121"), "127.0.0.1:2121");
        assert_eq!(value("/dir/file.txt"), "/dir/file.txt");
    }

    #[test]
    fn hostile_values_are_quoted_and_escaped() {
        assert_eq!(
            value("x user=root result=ok peer=10.1.1.1"),
            r#""x user=root result=ok peer=10.1.1.1""#
        );
        assert_eq!(value("a\"b"), r#""a\"b""#);
        assert_eq!(value("a\\b"), r#""a\\b""#);
        assert_eq!(value("two\nlines"), r#""two\nlines""#);
        assert_eq!(value("bell\u{7}"), r#""bell\u{7}""#);
        assert_eq!(value("ls\u{2028}x"), r#""ls\u{2028}x""#);
        assert_eq!(value(""), r#""""#);
        assert_eq!(value("k=v"), r#""k=v""#);
    }

    /// Whole events through the subscriber: one line each, fields that
    /// cannot be forged by a value.
    #[test]
    fn events_are_one_line_with_quoted_values() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(SafeFields)
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let name = "x user=root result=ok\nINFO forged line";
            let span = tracing::info_span!("session", user = %"ev\"il");
            let _g = span.enter();
            tracing::info!(path = %name, bytes = 3, verb = "STOR", "transfer");
            tracing::warn!("reload failed:\n  line 2\n  a = b");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].ends_with(
                r#"session{user="ev\"il"}: transfer path="x user=root result=ok\nINFO forged line" bytes=3 verb="STOR""#
            ),
            "{text}"
        );
        assert!(
            lines[1]
                .ends_with(r#"WARN session{user="ev\"il"}: "reload failed:\n  line 2\n  a = b""#),
            "{text}"
        );
    }
}

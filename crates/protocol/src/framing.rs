//! NDJSON framing: one message per line.
//!
//! Reading accepts `\n` and `\r\n` endings, a last line without a newline, and skips blank
//! lines (they still count for line numbers). A line longer than the configured maximum is
//! rejected with [`FrameError::LineTooLong`] after discarding it, without buffering it whole.
//!
//! [`LineDecoder`] is the sans-IO core: feed it whatever bytes a buffered reader has available
//! and it reports complete lines. [`NdjsonReader`] drives it over any [`std::io::BufRead`];
//! async callers drive it over their own buffered reader the same way.

use std::io::{self, BufRead, Write};

use thiserror::Error;

use crate::{Message, ParseError};

/// Default maximum line length: 64 MiB, far above any Stripe object, far below memory.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// A line that could not be framed.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The line is longer than the limit.
    #[error("line {line}: longer than the {limit}-byte limit")]
    LineTooLong {
        /// The line's number, from 1.
        line: u64,
        /// The limit in bytes.
        limit: usize,
    },
    /// Reading the input failed.
    #[error("line {line}: read failed: {source}")]
    Io {
        /// The line being read.
        line: u64,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// A message line that would break the one-message-per-line framing: nothing was written.
#[derive(Debug, Error)]
#[error(
    "{subject} contains a raw line break, which would split it over several lines; it was not written"
)]
pub struct FramingError {
    subject: String,
    stream: Option<String>,
}

impl FramingError {
    /// The stream of the offending record, when it is one and its stream could be read.
    pub fn stream(&self) -> Option<&str> {
        self.stream.as_deref()
    }

    fn of_line(line: &[u8]) -> FramingError {
        // A raw line break outside strings is JSON whitespace, so the line may still parse.
        match crate::peek::peek(line) {
            Ok(crate::peek::Peeked::Record(r)) => FramingError::of_record(&r.stream),
            Ok(crate::peek::Peeked::Other(kind)) => FramingError {
                subject: format!("a {kind} message"),
                stream: None,
            },
            Err(_) => FramingError {
                subject: "a message line".to_owned(),
                stream: None,
            },
        }
    }

    fn of_record(stream: &str) -> FramingError {
        FramingError {
            subject: format!("a record of stream {stream:?}"),
            stream: Some(stream.to_owned()),
        }
    }
}

/// Checks that a serialised message is one line: no raw `\n` or `\r` anywhere in it.
pub fn check_line(line: &[u8]) -> Result<(), FramingError> {
    match memchr::memchr2(b'\n', b'\r', line) {
        None => Ok(()),
        Some(_) => Err(FramingError::of_line(line)),
    }
}

/// The line (without its newline) of a record whose `data` is already JSON text: the text goes
/// in untouched, so it must be one line (compact it first with [`crate::compact`]).
pub fn record_line(
    stream: &str,
    data_json: &str,
    emitted_at: &str,
) -> Result<String, FramingError> {
    if memchr::memchr2(b'\n', b'\r', data_json.as_bytes()).is_some() {
        return Err(FramingError::of_record(stream));
    }
    let stream_json = serde_json::to_string(stream).unwrap_or_else(|_| "\"\"".to_owned());
    let emitted_json = serde_json::to_string(emitted_at).unwrap_or_else(|_| "\"\"".to_owned());
    let mut line = String::with_capacity(data_json.len() + stream_json.len() + 80);
    line.push_str(r#"{"type":"record","record":{"stream":"#);
    line.push_str(&stream_json);
    line.push_str(r#","data":"#);
    line.push_str(data_json);
    line.push_str(r#","emitted_at":"#);
    line.push_str(&emitted_json);
    line.push_str("}}");
    Ok(line)
}

/// A line that could not be framed or parsed; always names the line.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The line could not be framed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The line is not a valid message.
    #[error("line {line}: {source}")]
    Parse {
        /// The line's number, from 1.
        line: u64,
        /// Why it did not parse.
        #[source]
        source: ParseError,
    },
}

impl ReadError {
    /// The 1-based number of the offending line.
    pub fn line(&self) -> u64 {
        match self {
            ReadError::Frame(
                FrameError::LineTooLong { line, .. } | FrameError::Io { line, .. },
            ) => *line,
            ReadError::Parse { line, .. } => *line,
        }
    }

    /// True for a well-formed line with a `type` this dialect does not know (skippable).
    pub fn is_unknown_type(&self) -> bool {
        matches!(self, ReadError::Parse { source, .. } if source.is_unknown_type())
    }
}

/// What [`LineDecoder::feed`] found in the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Feed {
    /// All bytes were taken; the line is not complete yet.
    NeedMore,
    /// A line ended: it is available through [`LineDecoder::line`].
    Line,
    /// A too-long line ended and was discarded.
    TooLong,
}

/// Sans-IO line splitter with a length limit and line numbering.
#[derive(Debug)]
pub struct LineDecoder {
    max_line_bytes: usize,
    buf: Vec<u8>,
    line_no: u64,
    overflowed: bool,
    /// The last step returned a line; the next one forgets it.
    line_ready: bool,
}

impl LineDecoder {
    /// A decoder that refuses lines longer than `max_line_bytes`.
    pub fn new(max_line_bytes: usize) -> LineDecoder {
        LineDecoder {
            max_line_bytes,
            buf: Vec::new(),
            line_no: 0,
            overflowed: false,
            line_ready: false,
        }
    }

    /// Takes bytes up to and including the next newline. Returns how many bytes were consumed
    /// and whether a line ended.
    pub fn feed(&mut self, available: &[u8]) -> (usize, Feed) {
        let (chunk, consumed, ended) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        if !self.overflowed {
            if self.buf.len() + chunk.len()
                > self.max_line_bytes + usize::from(chunk.ends_with(b"\r"))
            {
                self.overflowed = true;
                self.buf = Vec::new();
            } else {
                self.buf.extend_from_slice(chunk);
            }
        }
        if !ended {
            return (consumed, Feed::NeedMore);
        }
        (consumed, self.end_line())
    }

    /// Ends the input: a last line without a newline is reported as a line.
    pub fn finish(&mut self) -> Option<Feed> {
        if self.buf.is_empty() && !self.overflowed {
            return None;
        }
        Some(self.end_line())
    }

    fn end_line(&mut self) -> Feed {
        self.line_no += 1;
        if self.overflowed {
            self.overflowed = false;
            return Feed::TooLong;
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Feed::Line
    }

    /// The number of the line last ended (1-based).
    pub fn line_number(&self) -> u64 {
        self.line_no
    }

    /// The bytes of the line last ended, without its line ending.
    pub fn line(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets the current line; call after handling it.
    pub fn clear_line(&mut self) {
        self.buf.clear();
    }
}

/// How one read step of [`LineDecoder::advance`] ended.
#[derive(Debug)]
pub enum Outcome {
    /// A non-blank line ended; it is in [`LineDecoder::line`].
    Line,
    /// A line was rejected.
    Error(FrameError),
    /// The input is exhausted.
    End,
}

impl LineDecoder {
    /// One step of reading for a buffered reader: feed it what the reader has available (empty
    /// at end of input) and consume the bytes it returns. No outcome means: read more. Blank
    /// lines are skipped; the previous line is forgotten.
    pub fn advance(&mut self, available: &[u8]) -> (usize, Option<Outcome>) {
        if self.line_ready {
            self.line_ready = false;
            self.clear_line();
        }
        let (consumed, fed) = if available.is_empty() {
            match self.finish() {
                Some(fed) => (0, fed),
                None => return (0, Some(Outcome::End)),
            }
        } else {
            self.feed(available)
        };
        let outcome = match fed {
            Feed::NeedMore => None,
            Feed::TooLong => {
                let (line, limit) = (self.line_number(), self.max_line_bytes);
                self.clear_line();
                Some(Outcome::Error(FrameError::LineTooLong { line, limit }))
            }
            Feed::Line if is_blank(self.line()) => {
                self.clear_line();
                None
            }
            Feed::Line => {
                self.line_ready = true;
                Some(Outcome::Line)
            }
        };
        (consumed, outcome)
    }

    /// What a line reader returns for an outcome: the line and its number, an error, or `None`
    /// at the end.
    pub fn output(&self, outcome: Outcome) -> Option<Result<(u64, &[u8]), FrameError>> {
        match outcome {
            Outcome::Line => Some(Ok((self.line_number(), self.line()))),
            Outcome::Error(e) => Some(Err(e)),
            Outcome::End => None,
        }
    }

    /// The error for a failed read of the next line.
    pub fn read_failed(&self, source: io::Error) -> FrameError {
        FrameError::Io {
            line: self.line_number() + 1,
            source,
        }
    }
}

/// True for a line holding only whitespace.
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Reads NDJSON lines and messages from a buffered reader.
pub struct NdjsonReader<R> {
    inner: R,
    decoder: LineDecoder,
}

impl<R: BufRead> NdjsonReader<R> {
    /// A reader with the default line limit ([`DEFAULT_MAX_LINE_BYTES`]).
    pub fn new(inner: R) -> NdjsonReader<R> {
        NdjsonReader::with_max_line_bytes(inner, DEFAULT_MAX_LINE_BYTES)
    }

    /// A reader refusing lines longer than `max_line_bytes`.
    pub fn with_max_line_bytes(inner: R, max_line_bytes: usize) -> NdjsonReader<R> {
        NdjsonReader {
            inner,
            decoder: LineDecoder::new(max_line_bytes),
        }
    }

    /// The next non-blank line and its number; `None` at end of input.
    pub fn next_line(&mut self) -> Option<Result<(u64, &[u8]), FrameError>> {
        loop {
            let (consumed, outcome) = match self.inner.fill_buf() {
                Ok(available) => self.decoder.advance(available),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Some(Err(self.decoder.read_failed(source))),
            };
            self.inner.consume(consumed);
            if let Some(outcome) = outcome {
                return self.decoder.output(outcome);
            }
        }
    }

    /// The next message; `None` at end of input. Errors name the line.
    pub fn next_message(&mut self) -> Option<Result<Message, ReadError>> {
        Some(match self.next_line()? {
            Ok((line, bytes)) => {
                Message::from_slice(bytes).map_err(|source| ReadError::Parse { line, source })
            }
            Err(e) => Err(e.into()),
        })
    }
}

impl<R: BufRead> Iterator for NdjsonReader<R> {
    type Item = Result<Message, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_message()
    }
}

/// Writes messages as NDJSON through a buffer that is flushed at every message other than a
/// record, so checkpoints and statuses never wait in the buffer. Callers that feed records from a
/// queue call [`MessageWriter::flush`] when the queue runs dry ("flush when idle").
pub struct MessageWriter<W: Write> {
    out: io::BufWriter<W>,
}

impl<W: Write> MessageWriter<W> {
    /// A writer over `out` with a 64 KiB buffer.
    pub fn new(out: W) -> MessageWriter<W> {
        MessageWriter {
            out: io::BufWriter::with_capacity(64 * 1024, out),
        }
    }

    /// Writes one message; flushes unless it is a record.
    pub fn write(&mut self, message: &Message) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, message)?;
        self.out.write_all(b"\n")?;
        if !matches!(message, Message::Record(_)) {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Writes an already-serialised line (without its newline) untouched. A line holding a raw
    /// line break is refused with an [`io::ErrorKind::InvalidData`] error wrapping a
    /// [`FramingError`], and nothing is written.
    pub fn write_line(&mut self, line: &[u8], flush: bool) -> io::Result<()> {
        check_line(line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.out.write_all(line)?;
        self.out.write_all(b"\n")?;
        if flush {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Writes out what the buffer holds.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Bytes waiting in the buffer.
    pub fn buffered(&self) -> usize {
        self.out.buffer().len()
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(self) -> io::Result<W> {
        self.out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Result<(u64, String), String>> {
        // A tiny buffer exercises lines split across reads.
        let reader = io::BufReader::with_capacity(3, input);
        let mut r = NdjsonReader::with_max_line_bytes(reader, max);
        let mut out = Vec::new();
        while let Some(item) = r.next_line() {
            out.push(
                item.map(|(n, b)| (n, String::from_utf8_lossy(b).into_owned()))
                    .map_err(|e| e.to_string()),
            );
        }
        out
    }

    #[test]
    fn splits_crlf_blank_and_unterminated_lines() {
        let got = lines(b"{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}", 100);
        assert_eq!(
            got,
            vec![
                Ok((1, "{\"a\":1}".into())),
                Ok((4, "{\"b\":2}".into())),
                Ok((5, "{\"c\":3}".into()))
            ]
        );
    }

    #[test]
    fn oversize_line_is_rejected_and_reading_goes_on() {
        let got = lines(
            b"{\"a\":1}\n0123456789012345678901234567890\n{\"b\":2}\n",
            10,
        );
        assert_eq!(got[0], Ok((1, "{\"a\":1}".into())));
        assert_eq!(got[1], Err("line 2: longer than the 10-byte limit".into()));
        assert_eq!(got[2], Ok((3, "{\"b\":2}".into())));
    }

    #[test]
    fn line_exactly_at_limit_is_accepted_even_with_crlf() {
        let got = lines(b"0123456789\r\n0123456789\n", 10);
        assert_eq!(
            got,
            vec![Ok((1, "0123456789".into())), Ok((2, "0123456789".into()))]
        );
    }

    #[test]
    fn a_line_with_a_raw_break_is_refused_and_names_its_stream() {
        let mut out = Vec::new();
        let mut w = MessageWriter::new(&mut out);
        let broken = b"{\"type\":\"record\",\"record\":{\"stream\":\"customers\",\n\"data\":{}}}";
        let e = w.write_line(broken, true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("\"customers\""), "{e}");
        let e = w
            .write_line(b"{\"type\":\"log\",\r\"log\":{}}", true)
            .unwrap_err();
        assert!(e.to_string().contains("a log message"), "{e}");
        w.write_line(b"{\"a\":\"x\\ny\"}", true).unwrap();
        drop(w);
        assert_eq!(out, b"{\"a\":\"x\\ny\"}\n");
        let e = record_line("invoices", "{\n}", "t").unwrap_err();
        assert_eq!(e.stream(), Some("invoices"));
        let line = record_line("a\"b", "{\"id\":1}", "2026-01-01T00:00:00Z").unwrap();
        let m = crate::Message::from_slice(line.as_bytes()).unwrap();
        let crate::Message::Record(r) = m else {
            panic!()
        };
        assert_eq!(
            (r.stream.as_str(), r.data["id"].as_i64()),
            ("a\"b", Some(1))
        );
    }

    #[test]
    fn empty_input_yields_nothing() {
        assert!(lines(b"", 10).is_empty());
        assert!(lines(b"\n\n", 10).is_empty());
    }
}

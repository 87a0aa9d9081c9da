//! NDJSON lines from a child's stdout, with the protocol crate's framing rules (line numbers,
//! CRLF, blank lines, a length limit) over tokio.

use sync_protocol::framing::{Feed, FrameError, LineDecoder, is_blank};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

pub struct LineReader<R> {
    inner: BufReader<R>,
    decoder: LineDecoder,
    pending_clear: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(inner: BufReader<R>, max_line_bytes: usize) -> LineReader<R> {
        LineReader {
            inner,
            decoder: LineDecoder::new(max_line_bytes),
            pending_clear: false,
        }
    }

    /// True when no read-ahead bytes are waiting: the writer side may flush now.
    pub fn drained(&self) -> bool {
        self.inner.buffer().is_empty()
    }

    /// The next non-blank line and its number; `None` at end of input.
    pub async fn next_line(&mut self) -> Option<Result<(u64, &[u8]), FrameError>> {
        if self.pending_clear {
            self.decoder.clear_line();
            self.pending_clear = false;
        }
        loop {
            let available = match self.inner.fill_buf().await {
                Ok(bytes) => bytes,
                Err(source) => {
                    return Some(Err(FrameError::Io {
                        line: self.decoder.line_number() + 1,
                        source,
                    }));
                }
            };
            let outcome = if available.is_empty() {
                self.decoder.finish()?
            } else {
                let (consumed, outcome) = self.decoder.feed(available);
                self.inner.consume(consumed);
                outcome
            };
            match outcome {
                Feed::NeedMore => continue,
                Feed::TooLong => {
                    let (line, limit) = (self.decoder.line_number(), self.decoder.max_line_bytes());
                    self.decoder.clear_line();
                    return Some(Err(FrameError::LineTooLong { line, limit }));
                }
                Feed::Line if is_blank(self.decoder.line()) => self.decoder.clear_line(),
                Feed::Line => {
                    self.pending_clear = true;
                    return Some(Ok((self.decoder.line_number(), self.decoder.line())));
                }
            }
        }
    }
}

//! NDJSON lines from a child's stdout, with the protocol crate's framing rules (line numbers,
//! CRLF, blank lines, a length limit) over tokio.

use sync_protocol::framing::{FrameError, LineDecoder};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    decoder: LineDecoder,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(crate) fn new(inner: BufReader<R>, max_line_bytes: usize) -> LineReader<R> {
        LineReader {
            inner,
            decoder: LineDecoder::new(max_line_bytes),
        }
    }

    /// True when no read-ahead bytes are waiting: the writer side may flush now.
    pub(crate) fn drained(&self) -> bool {
        self.inner.buffer().is_empty()
    }

    /// The next non-blank line and its number; `None` at end of input.
    pub(crate) async fn next_line(&mut self) -> Option<Result<(u64, &[u8]), FrameError>> {
        loop {
            let (consumed, outcome) = match self.inner.fill_buf().await {
                Ok(available) => self.decoder.advance(available),
                Err(source) => return Some(Err(self.decoder.read_failed(source))),
            };
            self.inner.consume(consumed);
            if let Some(outcome) = outcome {
                return self.decoder.output(outcome);
            }
        }
    }
}

//! stdin as a stream of framed lines, read on a blocking thread so the async side only sees
//! complete lines with their numbers.

use std::io::BufRead;

use sync_protocol::framing::{FrameError, NdjsonReader};
use tokio::sync::mpsc;

/// One non-blank input line.
#[derive(Debug)]
pub struct InputLine {
    /// 1-based line number, for error messages.
    pub number: u64,
    /// The line without its newline.
    pub bytes: Vec<u8>,
}

/// The lines of an NDJSON input, in order.
pub struct InputLines {
    rx: mpsc::Receiver<Result<InputLine, FrameError>>,
}

const QUEUE: usize = 4096;

impl InputLines {
    /// Reads `input` on its own thread; lines longer than `max_line_bytes` arrive as errors.
    pub fn spawn<R: BufRead + Send + 'static>(input: R, max_line_bytes: usize) -> InputLines {
        let (tx, rx) = mpsc::channel(QUEUE);
        let spawned = std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let mut reader = NdjsonReader::with_max_line_bytes(input, max_line_bytes);
                while let Some(item) = reader.next_line() {
                    let item = item.map(|(number, bytes)| InputLine {
                        number,
                        bytes: bytes.to_vec(),
                    });
                    if tx.blocking_send(item).is_err() {
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            panic!("cannot start the stdin thread: {e}");
        }
        InputLines { rx }
    }

    /// The next line; `None` at end of input.
    pub async fn next(&mut self) -> Option<Result<InputLine, FrameError>> {
        self.rx.recv().await
    }
}

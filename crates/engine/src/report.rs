//! What the engine shows while it runs and when it ends: a live per-stream display on a
//! terminal; otherwise NDJSON lines on stdout (committed states, stream statuses, a progress
//! every 2 s, the final `eof`), each stamped with who emitted it (`_emitted_by`) and when
//! (`_ts`); or, with `--plain`, a text line on stderr every 2 s; and a human summary.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sync_protocol::{Eof, Message, Progress, RunStatus, Status, StreamProgressStatus};

use crate::cli::OutputMode;
use sync_engine_api::Emitted;

const LINE_INTERVAL: Duration = Duration::from_secs(2);

pub(crate) enum Reporter {
    Live {
        bars: MultiProgress,
        streams: BTreeMap<String, ProgressBar>,
    },
    Lines {
        last: Option<Instant>,
    },
    Plain {
        last: Option<Instant>,
    },
}

fn status_word(s: StreamProgressStatus) -> &'static str {
    match s {
        StreamProgressStatus::NotStarted => "waiting",
        StreamProgressStatus::Started => "running",
        StreamProgressStatus::Completed => "complete",
        StreamProgressStatus::Skipped => "skipped",
        StreamProgressStatus::Errored => "ERROR",
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Whether a message of a sync goes to stdout as a line: what the engine's HTTP answer of
/// `pipeline_sync` carries but for logs (already on stderr) and config updates (saved with the
/// checkpoint; they hold secrets); progress is thinned to one every 2 s.
fn is_a_line(message: &Message) -> bool {
    matches!(
        message,
        Message::SourceState(_) | Message::StreamStatus(_) | Message::ConnectionStatus(_)
    )
}

impl Reporter {
    pub(crate) fn new(mode: OutputMode) -> Reporter {
        match mode {
            OutputMode::Auto if std::io::stderr().is_terminal() => Reporter::Live {
                bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(5)),
                streams: BTreeMap::new(),
            },
            OutputMode::Plain => Reporter::Plain { last: None },
            _ => Reporter::Lines { last: None },
        }
    }

    /// Shows one of the run's messages (the eof goes to [`Reporter::finish`]).
    pub(crate) fn message(&mut self, emitted: &Emitted) {
        if let Message::Progress(progress) = &emitted.message {
            self.tick(emitted, progress);
        } else if matches!(self, Reporter::Lines { .. }) && is_a_line(&emitted.message) {
            print_line(emitted);
        }
    }

    /// Updates the display; prints a progress line when due.
    fn tick(&mut self, emitted: &Emitted, progress: &Progress) {
        match self {
            Reporter::Live { bars, streams } => {
                let elapsed = (progress.elapsed_ms as f64 / 1000.0).max(0.001);
                for (name, p) in &progress.streams {
                    let bar = streams.entry(name.clone()).or_insert_with(|| {
                        let bar = bars.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template("{spinner} {msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        bar
                    });
                    bar.set_message(format!(
                        "{name:<34} {:>11} read {:>11} committed {:>8.0}/s  ranges {:>4}  {}",
                        thousands(p.record_count),
                        thousands(p.committed_count),
                        p.record_count as f64 / elapsed,
                        p.completed_ranges.len(),
                        status_word(p.status)
                    ));
                    if matches!(
                        p.status,
                        StreamProgressStatus::Completed
                            | StreamProgressStatus::Skipped
                            | StreamProgressStatus::Errored
                    ) {
                        bar.tick();
                    } else {
                        bar.inc(1);
                    }
                }
            }
            Reporter::Lines { last } => {
                if last.is_none_or(|t| t.elapsed() >= LINE_INTERVAL) {
                    *last = Some(Instant::now());
                    print_line(emitted);
                }
            }
            Reporter::Plain { last } => {
                if last.is_none_or(|t| t.elapsed() >= LINE_INTERVAL) {
                    *last = Some(Instant::now());
                    eprintln!("{}", plain_line(progress, "Syncing"));
                }
            }
        }
    }

    /// Ends the display and prints the eof line (with `--plain`, a last text line instead).
    pub(crate) fn finish(&mut self, eof: &Emitted) {
        match self {
            Reporter::Live { bars, streams } => {
                for bar in streams.values() {
                    bar.finish();
                }
                let _ = bars.clear();
                if !std::io::stdout().is_terminal() {
                    print_line(eof);
                }
            }
            Reporter::Lines { .. } => print_line(eof),
            Reporter::Plain { .. } => {
                if let Message::Eof(end) = &eof.message
                    && let Some(progress) = &end.run_progress
                {
                    let label = match end.status {
                        RunStatus::Succeeded => "Sync complete",
                        RunStatus::Failed => "Sync failed",
                        RunStatus::Started => "Sync stopped",
                    };
                    eprintln!("{}", plain_line(progress, label));
                }
            }
        }
    }
}

/// One line of `--plain`: `Syncing 3 streams (1 completed, 2 started) — 4.2s — 1,234 records,
/// 293.8/s`, as the reference implementation prints it.
fn plain_line(progress: &Progress, label: &str) -> String {
    let mut counts: BTreeMap<u8, (usize, &str)> = BTreeMap::new();
    for p in progress.streams.values() {
        let (order, word) = match p.status {
            StreamProgressStatus::Completed => (0, "completed"),
            StreamProgressStatus::Started => (1, "started"),
            StreamProgressStatus::Errored => (2, "errored"),
            StreamProgressStatus::Skipped => (3, "skipped"),
            StreamProgressStatus::NotStarted => (4, "not started"),
        };
        counts.entry(order).or_insert((0, word)).0 += 1;
    }
    let parts: Vec<String> = counts
        .values()
        .map(|(n, word)| format!("{n} {word}"))
        .collect();
    let failure = match &progress.connection_status {
        Some(s) if s.status == Status::Failed => " — a connector failed (see below)",
        _ => "",
    };
    format!(
        "{label} {} streams ({}) — {:.1}s — {} records, {:.1}/s{failure}",
        progress.streams.len(),
        parts.join(", "),
        progress.elapsed_ms as f64 / 1000.0,
        thousands(progress.derived.total_record_count),
        progress.derived.records_per_second
    )
}

fn print_line(emitted: &Emitted) {
    let mut out = std::io::stdout().lock();
    // Connector messages can echo anything; registered secrets never leave the engine.
    let _ = writeln!(
        out,
        "{}",
        sync_connector::redact::redact(&emitted.to_line())
    );
    let _ = out.flush();
}

/// The human summary, printed on stderr at the end; `saved` says what became of the state.
pub(crate) fn summary(eof: &Eof, failures: &[String], saved: &str) -> String {
    let mut out = String::new();
    let Some(progress) = &eof.run_progress else {
        return out;
    };
    out.push_str(&format!(
        "\n{:<36} {:>12} {:>12}  {}\n",
        "stream", "read", "committed", "status"
    ));
    let (mut read, mut committed, mut rejected) = (0, 0, 0);
    for (name, p) in &progress.streams {
        read += p.record_count;
        committed += p.committed_count;
        rejected += p.rejected_count;
        let mut status = status_word(p.status).to_owned();
        if p.rejected_count > 0 {
            status.push_str(&format!(
                " ({} rejected, kept by the destination)",
                thousands(p.rejected_count)
            ));
        }
        if let Some(message) = &p.message {
            let short: String = message.chars().take(120).collect();
            status.push_str(&format!(": {short}"));
        }
        out.push_str(&format!(
            "{name:<36} {:>12} {:>12}  {status}\n",
            thousands(p.record_count),
            thousands(p.committed_count)
        ));
    }
    out.push_str(&format!(
        "{:<36} {:>12} {:>12}\n",
        "total",
        thousands(read),
        thousands(committed)
    ));
    if rejected > 0 {
        out.push_str(&format!(
            "{} record(s) could not be stored as they are and were set aside by the destination (see its warnings)\n",
            thousands(rejected)
        ));
    }
    let secs = progress.elapsed_ms as f64 / 1000.0;
    out.push_str(&format!(
        "\n{} in {secs:.1}s ({:.0} records/s); {}; {saved}\n",
        match (eof.status, eof.reason, eof.has_more) {
            (_, Some(sync_protocol::EofReason::Aborted), _) => {
                "STOPPED by a signal (rerun the same command to continue)"
            }
            (sync_protocol::RunStatus::Failed, _, true) => {
                "FAILED (rerun the same command to continue from the last commit)"
            }
            (sync_protocol::RunStatus::Failed, _, false) => "FAILED",
            (_, _, true) => "stopped early (rerun the same command to continue)",
            _ => "done",
        },
        read as f64 / secs.max(0.001),
        match eof.reason {
            Some(r) => format!(
                "reason: {}",
                serde_json::to_value(r)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            None => String::new(),
        }
    ));
    for f in failures {
        out.push_str(&format!("error: {f}\n"));
    }
    out
}

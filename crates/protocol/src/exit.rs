//! Exit codes of the command-line contract, shared by connectors and the engine.

/// Success, including a `check` that reports a failure and a reader that went away.
pub const OK: u8 = 0;
/// A fatal failure (a connector emitted `connection_status failed` first; a sync failed).
pub const FAILED: u8 = 1;
/// Bad usage or an invalid config.
pub const USAGE: u8 = 2;
/// The engine only: a sync stopped by a limit or a signal before the end; a rerun continues.
pub const STOPPED: u8 = 3;

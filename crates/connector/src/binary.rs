//! The `main` of an async binary that is not a connector (the service, the bundle): a runtime,
//! the command, and its error on stderr, passed through the secret redactor, with exit 1.

use std::future::Future;
use std::process::ExitCode;

/// Runs `main` to its end; its `Ok` is the exit code.
pub fn run_main<F>(main: F) -> ExitCode
where
    F: Future<Output = anyhow::Result<u8>>,
{
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", crate::redact::redact(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

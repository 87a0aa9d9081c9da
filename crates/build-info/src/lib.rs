//! The version line of every binary of the workspace: `0.1.0 (commit 0123456789ab)`, for
//! clap's `--version` and the connectors' `About`.

#![warn(missing_docs)]
#![warn(unreachable_pub)]

/// The workspace version and the commit the binary was built from (see build.rs: a debug
/// build says which commit it started from; without `.git` or `STRIPE_SYNC_COMMIT` the commit
/// is unknown).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("STRIPE_SYNC_BUILD"),
    ")"
);

/// The workspace version alone.
pub const SEMVER: &str = env!("CARGO_PKG_VERSION");

//! A stream the user selected: a leaf, shared by the settings, the wire format and requests.

/// A stream the user selected, with its options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamChoice {
    /// The stream's name, or the name of its objects (`customer` for `customers`).
    pub name: String,
    /// Stop its backfill after this many records.
    pub backfill_limit: Option<u64>,
    /// Top-level properties to keep; all when absent.
    pub fields: Option<Vec<String>>,
    /// `full_refresh`: read the stream from scratch, its saved state dropped for the run;
    /// `incremental` (as when absent): continue from it.
    pub sync_mode: Option<sync_protocol::SyncMode>,
}

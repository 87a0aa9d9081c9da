//! A fence in a stream's listing: a source that lists a stream whole says so, in the stream's
//! states, when the listing starts and when it has reached its end, so that a destination can
//! mark the rows the listing did not return (objects deleted without an event it saw). The
//! fence rides on a [`crate::StreamState`], which destinations already apply in order, after
//! every record before it.

use serde::{Deserialize, Serialize};

use crate::JsonMap;

/// One listing of one stream, from its start to its end, across runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    /// Names this listing (unique per stream): a destination keeps what it saw under it.
    pub id: String,
    /// Where the listing is.
    pub phase: ListingPhase,
    /// The rows the listing covers, as column = value pairs (say `{"_account_id": "acct_1"}`):
    /// rows of other values are never marked.
    #[serde(default, skip_serializing_if = "JsonMap::is_empty")]
    pub scope: JsonMap,
    /// Rows the listing cannot return although they exist, by top-level field of their object:
    /// `null` for "the field is set" (`{"test_clock": null}`: objects on a test clock), or an
    /// array of values (`{"status": ["canceled"]}`). Such rows are never marked.
    #[serde(default, skip_serializing_if = "JsonMap::is_empty")]
    pub unlisted: JsonMap,
}

/// Where a listing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListingPhase {
    /// Sent before the listing's first record (again when a run resumes it): what the
    /// destination holds of the stream now is what the listing will be compared with.
    Started,
    /// Every object the listing covers has been sent: what it did not return is gone.
    Complete,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{Listing, ListingPhase, Message, SourceState};

    #[test]
    fn a_fence_rides_on_a_stream_state_both_ways() {
        let line = r#"{"type":"source_state","source_state":{"state_type":"stream","stream":"customers","data":{"phase":"complete"},"listing":{"id":"l1","phase":"complete","scope":{"_account_id":"acct_1"},"unlisted":{"test_clock":null}}}}"#;
        let Message::SourceState(state) = Message::from_slice(line.as_bytes()).unwrap() else {
            panic!("not a state");
        };
        let listing = state.listing().expect("the fence");
        assert_eq!(listing.phase, ListingPhase::Complete);
        assert_eq!(listing.scope["_account_id"], "acct_1");
        assert!(listing.unlisted["test_clock"].is_null());
        assert_eq!(Message::SourceState(state).to_line(), line);
        let plain = SourceState::stream("customers", json!({}));
        assert!(plain.listing().is_none());
        assert!(!Message::SourceState(plain).to_line().contains("listing"));
        let started = SourceState::stream_with_listing(
            "customers",
            json!({}),
            Listing {
                id: "l2".into(),
                phase: ListingPhase::Started,
                scope: Default::default(),
                unlisted: Default::default(),
            },
        );
        assert!(
            Message::SourceState(started)
                .to_line()
                .contains(r#""listing":{"id":"l2","phase":"started"}"#)
        );
    }
}

//! The body of a 200 as an endpoint hands it to the HTTP layer.

use bytes::Bytes;

pub(crate) enum Body {
    /// Built compact; the HTTP layer lays it out as the simulator answers.
    Compact(Bytes),
    /// Already in the simulator's layout (a list page put together from laid-out objects).
    Final(Bytes),
}

impl From<Bytes> for Body {
    fn from(compact: Bytes) -> Body {
        Body::Compact(compact)
    }
}

//! An object as a list page carries it: what list pages and the store share.

use bytes::Bytes;

use crate::pretty::pretty_at;

/// How deep an object of a list's `data` sits in the list's body.
pub(crate) const LIST_ITEM_DEPTH: usize = 2;

/// An object as a list page carries it.
pub(crate) trait Listed {
    /// Its compact JSON.
    fn compact(&self) -> &Bytes;

    /// Its pretty form at [`LIST_ITEM_DEPTH`], without a trailing newline. Objects served
    /// often keep it, so that a page is laid out by concatenation.
    fn in_list(&self) -> Bytes {
        pretty_at(self.compact(), LIST_ITEM_DEPTH)
    }
}

impl Listed for Bytes {
    fn compact(&self) -> &Bytes {
        self
    }
}

//! What a checkpoint was written for (a leaf: the control database stores it, `owner.rs`
//! derives it through the engine).

use serde::{Deserialize, Serialize};

/// What a checkpoint was written for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// What the source reads (its identity, no secrets).
    pub source: String,
    /// Where the destination writes (its identity, no secrets).
    pub destination: String,
}

impl Owner {
    /// Why a checkpoint written for `self` does not fit `now`, naming each side that moved;
    /// `None` when neither did.
    pub fn moved_to(&self, now: &Owner) -> Option<String> {
        let moved: Vec<String> = [
            ("source", &self.source, &now.source),
            ("destination", &self.destination, &now.destination),
        ]
        .into_iter()
        .filter(|(_, was, is)| was != is)
        .map(|(role, was, is)| format!("the {role} moved ({was} → {is})"))
        .collect();
        (!moved.is_empty()).then(|| moved.join("; "))
    }
}

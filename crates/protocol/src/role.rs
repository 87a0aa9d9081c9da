/// Which side of a sync a connector plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// It reads from Stripe or another service.
    Source,
    /// It writes what it is sent.
    Destination,
}

impl Role {
    /// `source` or `destination`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Destination => "destination",
        }
    }
}

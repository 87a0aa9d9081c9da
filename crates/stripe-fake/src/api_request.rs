//! One API request as the handlers see it.

use crate::auth::Mode;

/// A request after routing and authentication.
pub(crate) struct ApiRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub body: &'a [u8],
    pub slot: usize,
    pub mode: Mode,
    pub request_id: &'a str,
}

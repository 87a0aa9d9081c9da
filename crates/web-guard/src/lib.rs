#![warn(missing_docs)]
#![warn(unreachable_pub)]
//! What stands in front of both HTTP servers (`sync-engine serve` and `sync-service`), their
//! API and the web console alike: [`same_site::enforce`] in front of everything, then
//! [`gate::gate`] (the bearer token, or the console's session cookie) in front of all but the
//! routes a server keeps open. No pages here: the console renders the login form.

pub mod gate;
pub mod same_site;

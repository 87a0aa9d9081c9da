#![warn(missing_docs)]
#![warn(unreachable_pub)]
//! The Postgres tables a catalog becomes, with no I/O: table and column names cut to
//! Postgres' limit ([`ident`]), and per stream its key, typed and system columns ([`table`]).
//! dest-postgres creates and loads these tables; the console's explorer shows them.

pub mod ident;
pub mod table;

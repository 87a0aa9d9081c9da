//! `dest-postgres`: the Postgres destination connector.

fn main() -> std::process::ExitCode {
    sync_connector::run(dest_postgres::PostgresDestination)
}

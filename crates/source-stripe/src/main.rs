//! `source-stripe`: the Stripe source connector.

fn main() -> std::process::ExitCode {
    sync_connector::run(source_stripe::StripeSource)
}

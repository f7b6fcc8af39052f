//! Structured logs for the Lambda functions: JSON, one object per line,
//! fields at the top level, filtered by `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

pub fn init_json_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .init();
}

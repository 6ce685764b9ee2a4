//! Logging: the tracing subscriber the controller logs through.

use crate::settings::{LogFormat, LogLevel};

/// Installs the subscriber: `format`, and `level` unless RUST_LOG says otherwise.
pub(super) fn init_logs(format: LogFormat, level: LogLevel) {
    let level = format!("{level:?}").to_lowercase();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colours only on a terminal: `kubectl logs` and log shippers get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Plain => b.try_init(),
        LogFormat::Json => b.json().flatten_event(true).try_init(),
    };
}

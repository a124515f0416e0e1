//! Logging set-up: one function, any writer, so tests can silence or capture logs.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Fails on a filter that does not parse, so a typo is not silently ignored.
pub fn init<W>(config: &LogConfig, writer: W) -> Result<(), String>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&config.level)
        .map_err(|error| format!("invalid --log-level {:?}: {error}", config.level))?;
    // Colour codes only help a person at a terminal; in files and log pipelines they are noise.
    let ansi = config.format == LogFormat::Text && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    let installed = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|error| format!("cannot install the log subscriber: {error}"))
}

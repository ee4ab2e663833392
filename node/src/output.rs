//! Printing for the command line, and the runtime its async commands run on.

use anyhow::Result;
use serde_json::Value;

/// A JSON string's text, or `?`.
pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

/// Prints `v` as pretty JSON with `json_out`, else the text `human` makes of it.
pub fn output(json_out: bool, v: Value, human: impl FnOnce(&Value) -> String) {
    use std::io::Write;
    let text = if json_out {
        serde_json::to_string_pretty(&v).unwrap_or_default()
    } else {
        human(&v)
    };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// A multi-threaded tokio runtime.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

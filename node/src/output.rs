//! Printing for the command line, its errors and exit codes, and the runtime its async
//! commands run on.
//!
//! A failed command exits with one of the codes below. With `--json` it prints one object on
//! stdout, `{"error": {"code": "...", "message": "...", "done": {...}}}` (`done`, when present,
//! is what the command had completed before it failed, e.g. the payments of a pay job that
//! stopped early); without it, the message on stderr.
//!
//! | exit | error codes | meaning |
//! |------|-------------|---------|
//! | 0 | | success |
//! | 1 | `bad_request`, `not_found`, `refused`, `unauthorized`, `failed` | the request cannot succeed as given |
//! | 2 | `usage` | the command line is wrong |
//! | 3 | `unreachable`, `unavailable`, `busy`, `timeout`, `interrupted` | try again later, or differently |
//! | 4 | `violation`, `internal` | the peer broke the protocol, or the node failed |

use anyhow::Result;
use serde_json::{json, Value};

/// The symbol printed after every amount: the unit of the genesis the command works with, set
/// once when the command learns it ([`set_unit`]); until then that of the shipped geneses.
static UNIT_SYMBOL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the unit amounts are printed in (the first call wins: one command, one chain).
pub fn set_unit(unit: &paychan_protocol::Unit) {
    let _ = UNIT_SYMBOL.set(unit.symbol.clone());
}

/// The symbol amounts are printed with.
pub fn unit_symbol() -> &'static str {
    UNIT_SYMBOL.get().map(String::as_str).unwrap_or("cr")
}

/// A unit as JSON: `{"name": ..., "symbol": ...}`.
pub fn unit_json(unit: &paychan_protocol::Unit) -> Value {
    json!({"name": unit.name, "symbol": unit.symbol})
}

/// An amount with its unit: `1,500 cr`.
pub fn amount_text(v: &Value) -> String {
    match v.as_u64() {
        Some(n) => format!("{} {}", grouped(n), unit_symbol()),
        None => "-".into(),
    }
}

/// A count with thousands separators: `57,000`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A JSON string's text, or `?`.
pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

/// The first 16 characters of a string value (an id or a key in a table), `?` if not a string.
pub fn short(v: &Value) -> String {
    s(v).chars().take(16).collect()
}

/// Prints `v` as pretty JSON with `json_out`, else the text `human` makes of it.
pub fn output(json_out: bool, v: Value, human: impl FnOnce(&Value) -> String) {
    let text = if json_out {
        serde_json::to_string_pretty(&v).unwrap_or_default()
    } else {
        human(&v)
    };
    print_line(&text);
}

/// Prints one line on stdout; a closed pipe (`| head`) is not an error worth a panic.
pub fn print_line(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// A failed command: a code of the table in this module's doc, a message, and what was done
/// before the failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// One of the documented codes.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// What the command completed before it failed.
    pub done: Option<Value>,
}

impl CliError {
    /// An error with `code`.
    pub fn new(code: &'static str, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: message.into(),
            done: None,
        }
    }

    /// The exit code of this error's class.
    pub fn exit_code(&self) -> i32 {
        exit_code(self.code)
    }

    /// The JSON error object.
    pub fn to_json(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(done) = &self.done {
            e["done"] = done.clone();
        }
        json!({ "error": e })
    }
}

/// The exit code of an error code.
pub fn exit_code(code: &str) -> i32 {
    match code {
        "usage" => 2,
        "unreachable" | "unavailable" | "busy" | "timeout" | "interrupted" => 3,
        "violation" | "internal" => 4,
        _ => 1,
    }
}

/// The [`CliError`] an error is, or carries, or a generic `failed` one with its message.
pub fn cli_error(e: &anyhow::Error) -> CliError {
    if let Some(c) = e.chain().find_map(|c| c.downcast_ref::<CliError>()) {
        let mut c = c.clone();
        // Context added above the typed error is part of the message.
        let outer = format!("{e:#}");
        if !outer.is_empty() && outer != c.message {
            c.message = outer;
        }
        return c;
    }
    CliError::new("failed", format!("{e:#}"))
}

/// `e` with `done` attached (its code kept; fields it carried already stay unless `done`
/// names them too).
pub fn with_done(e: anyhow::Error, done: Value) -> anyhow::Error {
    let mut c = cli_error(&e);
    c.done = Some(match (c.done.take(), done) {
        (Some(Value::Object(mut had)), Value::Object(new)) => {
            had.extend(new);
            Value::Object(had)
        }
        (_, done) => done,
    });
    anyhow::Error::new(c)
}

/// Reports a failed command (JSON on stdout with `json_out`, else text on stderr) and returns
/// its exit code.
pub fn report_error(json_out: bool, e: &anyhow::Error) -> i32 {
    let c = cli_error(e);
    if json_out {
        print_line(&c.to_json().to_string());
    } else {
        eprintln!("error: {}", c.message);
        if let Some(done) = c
            .done
            .as_ref()
            .and_then(|d| d.get("summary"))
            .and_then(Value::as_str)
        {
            eprintln!("{done}");
        }
    }
    c.exit_code()
}

/// A multi-threaded tokio runtime.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// A duration in ms as a person reads it: `42 ms`, `3.2 s`, `4 min 10 s`, `2 h 5 min`.
pub fn duration_text(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
        _ => format!("{} h {} min", ms / 3_600_000, (ms % 3_600_000) / 60_000),
    }
}

/// A ledger time (ms since the Unix epoch) as a UTC date: `2026-01-31 12:00:05 UTC`.
pub fn time_text(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) of the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_durations() {
        assert_eq!(time_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time_text(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(time_text(1_767_225_599_000), "2025-12-31 23:59:59 UTC");
        assert_eq!(duration_text(42), "42 ms");
        assert_eq!(duration_text(3_300), "3.3 s");
        assert_eq!(duration_text(250_000), "4 min 10 s");
        assert_eq!(duration_text(7_500_000), "2 h 5 min");
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(amount_text(&json!(1500)), "1,500 cr");
    }

    #[test]
    fn codes_map_to_the_documented_exits() {
        for (code, exit) in [
            ("refused", 1),
            ("bad_request", 1),
            ("usage", 2),
            ("unreachable", 3),
            ("violation", 4),
        ] {
            assert_eq!(exit_code(code), exit, "{code}");
        }
        let e = with_done(
            anyhow::Error::new(CliError::new("refused", "insufficient funds")),
            json!({"payments": 3}),
        );
        let v = cli_error(&e).to_json();
        assert_eq!(v["error"]["code"], "refused");
        assert_eq!(v["error"]["done"]["payments"], 3);
    }
}

//! The pure parts of the harness: medians, percentiles, ratios and the JSON line.

use serde_json::Value;

/// The median of `xs` (the mean of the two middle values for an even count); `None` if empty.
pub fn median(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The `p`-th percentile (0..=100) of `xs` by the nearest-rank rule: the smallest value with
/// at least `p`% of the samples at or below it; `None` if empty.
pub fn percentile(xs: &[f64], p: f64) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p.clamp(0.0, 100.0) / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// How a figure compares with its target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// The figure must be at least the target.
    AtLeast(f64),
    /// The figure must be at most the target.
    AtMost(f64),
}

impl Goal {
    /// The target value.
    pub fn value(self) -> f64 {
        match self {
            Goal::AtLeast(t) | Goal::AtMost(t) => t,
        }
    }

    /// Whether `figure` meets it.
    pub fn met(self, figure: f64) -> bool {
        match self {
            Goal::AtLeast(t) => figure >= t,
            Goal::AtMost(t) => figure <= t,
        }
    }

    /// Figure over target; above 1 is better for `AtLeast`, below 1 for `AtMost`.
    pub fn ratio(self, figure: f64) -> Option<f64> {
        let t = self.value();
        (t != 0.0).then(|| figure / t)
    }
}

/// The keys of the JSON line, in the order the issue lists them.
pub const KEYS: [&str; 24] = [
    "signed_payments_per_s",
    "aggregate_payments_per_s",
    "latency_p50_us",
    "latency_p99_us",
    "durable_latency_p50_us",
    "durable_latency_p99_us",
    "buffered_payments_per_s",
    "buffered_latency_p99_us",
    "sign_limit_per_s",
    "verify_limit_per_s",
    "batch_verify_limit_per_s",
    "sha256_limit_per_s",
    "loopback_rtt_us",
    "fsync_us",
    "ledger_tx_per_s",
    "audit_tx_per_s",
    "channel_bytes_resident",
    "pay_after_10k_channels_per_s",
    "ledger_bytes_per_settlement_10",
    "ledger_bytes_per_settlement_1m",
    "testnet_up_ms",
    "paid_requests_per_s",
    "unpaid_requests_per_s",
    // Not a figure of the list: what the run was, so that a reader of the line alone
    // knows whether it was the quick one.
    "mode",
];

/// The JSON line: every key of [`KEYS`] in order, a missing or non-finite figure as `null`,
/// figures rounded to at most one decimal (rates and byte counts to integers above 100).
pub fn json_line(get: impl Fn(&str) -> Option<Value>) -> String {
    // Written by hand rather than through a `Map`, which would sort the keys.
    let fields: Vec<String> = KEYS
        .iter()
        .map(|key| {
            let v = match get(key) {
                Some(Value::Number(n)) => match n.as_f64() {
                    Some(f) if f.is_finite() => round(f),
                    _ => Value::Null,
                },
                Some(other) => other,
                None => Value::Null,
            };
            format!("{}:{}", Value::from(*key), v)
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// A figure rounded for the JSON line: integers above 100, one decimal below.
pub fn round(f: f64) -> Value {
    if f.abs() >= 100.0 {
        Value::from(f.round() as i64)
    } else {
        serde_json::Number::from_f64((f * 10.0).round() / 10.0).map_or(Value::Null, Value::Number)
    }
}

/// A rate or count with thousands separators, for the table (`-` when absent).
pub fn fmt_num(v: Option<f64>) -> String {
    let Some(v) = v else {
        return "-".into();
    };
    if !v.is_finite() {
        return "-".into();
    }
    if v.abs() < 100.0 {
        return format!("{v:.1}");
    }
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&xs, 50.0), Some(50.0));
        assert_eq!(percentile(&xs, 99.0), Some(99.0));
        assert_eq!(percentile(&xs, 100.0), Some(100.0));
        assert_eq!(percentile(&xs, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn goals_compare_both_ways() {
        assert!(Goal::AtLeast(10.0).met(10.0));
        assert!(!Goal::AtLeast(10.0).met(9.9));
        assert!(Goal::AtMost(16.0).met(0.0));
        assert!(!Goal::AtMost(16.0).met(17.0));
        assert_eq!(Goal::AtLeast(4.0).ratio(2.0), Some(0.5));
        assert_eq!(Goal::AtMost(0.0).ratio(2.0), None);
    }

    #[test]
    fn the_json_line_has_every_key_in_order_and_nulls() {
        let line = json_line(|k| match k {
            "signed_payments_per_s" => Some(Value::from(61234.56)),
            "fsync_us" => Some(Value::from(4.26)),
            "audit_tx_per_s" => Some(Value::from(f64::NAN)),
            "mode" => Some(Value::from("quick")),
            _ => None,
        });
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).expect("one JSON object");
        let obj = v.as_object().expect("an object");
        assert_eq!(obj.len(), KEYS.len());
        let positions: Vec<usize> = KEYS
            .iter()
            .map(|k| line.find(&format!("\"{k}\":")).expect("every key"))
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "keys in the issue's order"
        );
        assert_eq!(obj["signed_payments_per_s"], Value::from(61235));
        assert_eq!(obj["fsync_us"], Value::from(4.3));
        assert_eq!(obj["audit_tx_per_s"], Value::Null);
        assert_eq!(obj["latency_p50_us"], Value::Null);
        assert_eq!(obj["mode"], Value::from("quick"));
    }

    #[test]
    fn numbers_for_the_table() {
        assert_eq!(fmt_num(Some(1234567.4)), "1,234,567");
        assert_eq!(fmt_num(Some(999.0)), "999");
        assert_eq!(fmt_num(Some(12.34)), "12.3");
        assert_eq!(fmt_num(None), "-");
    }
}

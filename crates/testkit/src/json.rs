//! Field getters of the golden JSON vectors. A vector file is test input the repository
//! commits, so a malformed one is a failed test: each getter panics with the field's name.

use serde_json::Value;

/// The string field `k` of `v`.
pub fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("field `{k}` is not a string in {v}"))
}

/// The unsigned integer field `k` of `v`.
pub fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("field `{k}` is not an unsigned integer in {v}"))
}

/// The list field `k` of `v`.
pub fn arr<'a>(v: &'a Value, k: &str) -> &'a Vec<Value> {
    v[k].as_array()
        .unwrap_or_else(|| panic!("field `{k}` is not a list in {v}"))
}

/// The bytes of the hex field `k` of `v`; the hex must be lower-case.
pub fn bytes(v: &Value, k: &str) -> Vec<u8> {
    let t = s(v, k);
    assert_eq!(t, t.to_ascii_lowercase(), "hex of `{k}` must be lower-case");
    hex::decode(t).unwrap_or_else(|e| panic!("field `{k}` is not hex: {e}"))
}

/// The hex field `k` of `v`, exactly 32 bytes.
pub fn b32(v: &Value, k: &str) -> [u8; 32] {
    bytes(v, k)
        .try_into()
        .unwrap_or_else(|_| panic!("field `{k}` is not 32 bytes"))
}

/// The hex field `k` of `v`, exactly 64 bytes.
pub fn b64(v: &Value, k: &str) -> [u8; 64] {
    bytes(v, k)
        .try_into()
        .unwrap_or_else(|_| panic!("field `{k}` is not 64 bytes"))
}

/// Lower-case hex of `b`, as the vector files spell bytes.
pub fn hx(b: impl AsRef<[u8]>) -> String {
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn getters_read_their_fields() {
        let v = json!({"s": "ab", "n": 7, "l": [1, 2], "h": "00ff", "k": "11".repeat(32)});
        assert_eq!(s(&v, "s"), "ab");
        assert_eq!(n(&v, "n"), 7);
        assert_eq!(arr(&v, "l").len(), 2);
        assert_eq!(bytes(&v, "h"), vec![0x00, 0xff]);
        assert_eq!(b32(&v, "k"), [0x11; 32]);
        assert_eq!(hx([0xab, 0x01]), "ab01");
    }

    #[test]
    #[should_panic(expected = "must be lower-case")]
    fn upper_case_hex_is_refused() {
        bytes(&json!({"h": "00FF"}), "h");
    }

    #[test]
    #[should_panic(expected = "is not 64 bytes")]
    fn a_short_signature_is_refused() {
        b64(&json!({"sig": "11".repeat(32)}), "sig");
    }
}

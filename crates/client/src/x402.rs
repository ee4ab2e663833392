//! The HTTP 402 headers of the `paychan-channel` scheme, in the x402 v2 shape: each header is
//! standard padded base64 of a JSON object. PROTOCOL.md § "HTTP 402 payments" is the
//! reference; this module is pure (no I/O), shared by the gateway and the paying client.
//!
//! - `PAYMENT-REQUIRED` ([`PaymentRequired`]): the resource and one accepted way to pay.
//! - `PAYMENT-SIGNATURE` ([`PaymentPayload`]): one signed balance proof with its one payment,
//!   whose reference is [`request_reference`] of the request.
//! - `PAYMENT-RESPONSE` ([`PaymentResponse`]): the outcome.

use base64::Engine as _;
use paychan_protocol::channel::BalanceProof;
use paychan_protocol::wire::PayItem;
use paychan_protocol::{ChannelId, Direction, Hash32, Payment, Signature, SignedProof};
use serde::{Deserialize, Serialize};

/// The x402 version of these headers.
pub const X402_VERSION: u32 = 2;
/// The scheme name.
pub const SCHEME: &str = "paychan-channel";
/// The asset name: the ledger's one unit.
pub const ASSET: &str = "paychan";
/// Header names.
pub const HEADER_REQUIRED: &str = "payment-required";
/// The client's payment.
pub const HEADER_SIGNATURE: &str = "payment-signature";
/// The gateway's outcome.
pub const HEADER_RESPONSE: &str = "payment-response";
/// Largest header value accepted (base64 text), before any decoding.
pub const HEADER_BYTES_MAX: usize = 8 * 1024;
/// Longest nonce a client may send (hex characters).
pub const NONCE_HEX_MAX: usize = 64;

/// Errors decoding a header.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum X402Error {
    /// Larger than [`HEADER_BYTES_MAX`].
    #[error("header larger than {HEADER_BYTES_MAX} bytes")]
    TooLarge,
    /// Not base64.
    #[error("header is not base64: {0}")]
    Base64(String),
    /// Not the JSON expected.
    #[error("header is not the expected JSON: {0}")]
    Json(String),
    /// A field has a bad value.
    #[error("bad field {field}: {why}")]
    Field {
        /// The field.
        field: &'static str,
        /// Why.
        why: String,
    },
}

/// The network id of a chain: `paychan:` and the first 32 hex digits of the chain id.
pub fn network_id(chain_id: &Hash32) -> String {
    format!("paychan:{}", &chain_id.to_hex()[..32])
}

/// The reference a request's payment carries:
/// `H("paychan/v1/memo-text" || 0x00 || "http " || METHOD || " " || PATH || " " || NONCE)`,
/// with PATH the request target's path and query as sent, NONCE the client's nonce (hex).
pub fn request_reference(method: &str, path: &str, nonce: &str) -> Hash32 {
    Payment::text_reference(&format!("http {method} {path} {nonce}"))
}

/// `resource` of a requirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// The resource's URL (path and query as requested).
    pub url: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The upstream's content type, when known.
    #[serde(default)]
    pub mime_type: String,
}

/// `extra` of the `paychan-channel` requirement: how to reach the payee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extra {
    /// The payee node's libp2p peer id.
    pub peer_id: String,
    /// Its p2p addresses, each ending in `/p2p/<peer id>`.
    pub p2p_addrs: Vec<String>,
    /// The full chain id (hex).
    pub chain_id: String,
    /// The price of each KiB of the body (decimal; "0" when only the request is priced).
    #[serde(default)]
    pub price_per_kib: String,
    /// An account (hex) that takes donations for this resource, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub donate_to: Option<String>,
}

/// One entry of `accepts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Requirements {
    /// [`SCHEME`].
    pub scheme: String,
    /// [`network_id`].
    pub network: String,
    /// The price of the request (decimal string, as x402 writes amounts).
    pub amount: String,
    /// [`ASSET`].
    pub asset: String,
    /// The payee's account (hex ed25519 key).
    pub pay_to: String,
    /// How long a payment for this request stays good.
    pub max_timeout_seconds: u64,
    /// How to reach the payee.
    pub extra: Extra,
}

impl Requirements {
    /// The price of a request.
    pub fn price(&self) -> Result<u64, X402Error> {
        parse_amount(&self.amount, "amount")
    }
}

/// `PAYMENT-REQUIRED`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// [`X402_VERSION`].
    pub x402_version: u32,
    /// Why the request was not served, when a payment was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The resource.
    pub resource: Resource,
    /// One entry, of scheme [`SCHEME`].
    pub accepts: Vec<Requirements>,
}

impl PaymentRequired {
    /// The `paychan-channel` entry.
    pub fn paychan(&self) -> Option<&Requirements> {
        self.accepts.iter().find(|r| r.scheme == SCHEME)
    }
}

/// A balance proof as JSON: every body field, then the signature (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofJson {
    /// Chain id (64 hex).
    pub chain_id: String,
    /// Channel id (64 hex).
    pub channel_id: String,
    /// `"a_to_b"` or `"b_to_a"`.
    pub direction: String,
    /// Sequence number.
    pub seq: u64,
    /// Cumulative amount (decimal string).
    pub transferred: String,
    /// Hash of the previous proof (64 hex).
    pub prev: String,
    /// Memo hash (64 hex).
    pub memo_hash: String,
    /// Signature (128 hex).
    pub signature: String,
}

/// One payment as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentJson {
    /// Amount (decimal string).
    pub amount: String,
    /// Reference (64 hex).
    pub reference: String,
}

/// `payload` of the `paychan-channel` scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelPayload {
    /// The client's nonce (hex, at most [`NONCE_HEX_MAX`] characters) that the reference binds.
    pub nonce: String,
    /// The signed proof.
    pub proof: ProofJson,
    /// The payments it adds: exactly one.
    pub payments: Vec<PaymentJson>,
}

/// `PAYMENT-SIGNATURE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    /// [`X402_VERSION`].
    pub x402_version: u32,
    /// The requirement paid (as the gateway sent it).
    pub accepted: Requirements,
    /// The proof.
    pub payload: ChannelPayload,
}

/// `PAYMENT-RESPONSE`, and the JSON body of a refused payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResponse {
    /// Whether the payment was taken.
    pub success: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// The payer's account (hex), when known.
    #[serde(default)]
    pub payer: String,
    /// The channel and seq of the proof taken (`<channel id hex>:<seq>`), when taken.
    #[serde(default)]
    pub transaction: String,
    /// [`network_id`].
    pub network: String,
    /// With a refusal: the newest proof of this payer the gateway holds, to resynchronise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<ProofJson>,
}

fn hex32(s: &str, field: &'static str) -> Result<Hash32, X402Error> {
    Hash32::from_hex(s).map_err(|e| X402Error::Field {
        field,
        why: e.to_string(),
    })
}

fn parse_amount(s: &str, field: &'static str) -> Result<u64, X402Error> {
    // Decimal digits only: no sign, no spaces, no leading "+".
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(X402Error::Field {
            field,
            why: "not a decimal amount".into(),
        });
    }
    s.parse().map_err(|_| X402Error::Field {
        field,
        why: "amount out of range".into(),
    })
}

impl ProofJson {
    /// The JSON of `p`.
    pub fn of(p: &SignedProof) -> ProofJson {
        let b = &p.proof;
        ProofJson {
            chain_id: b.chain_id.to_hex(),
            channel_id: b.channel_id.0.to_hex(),
            direction: match b.direction {
                Direction::AToB => "a_to_b",
                Direction::BToA => "b_to_a",
            }
            .into(),
            seq: b.seq,
            transferred: b.transferred.to_string(),
            prev: b.prev.to_hex(),
            memo_hash: b.memo_hash.to_hex(),
            signature: p.signature.to_hex(),
        }
    }

    /// The proof (its signature is not checked here).
    pub fn to_proof(&self) -> Result<SignedProof, X402Error> {
        let direction = match self.direction.as_str() {
            "a_to_b" => Direction::AToB,
            "b_to_a" => Direction::BToA,
            _ => {
                return Err(X402Error::Field {
                    field: "proof.direction",
                    why: "not a_to_b or b_to_a".into(),
                })
            }
        };
        let mut sig = [0u8; 64];
        hex::decode_to_slice(&self.signature, &mut sig).map_err(|e| X402Error::Field {
            field: "proof.signature",
            why: e.to_string(),
        })?;
        Ok(SignedProof {
            proof: BalanceProof {
                chain_id: hex32(&self.chain_id, "proof.chainId")?,
                channel_id: ChannelId(hex32(&self.channel_id, "proof.channelId")?),
                direction,
                seq: self.seq,
                transferred: parse_amount(&self.transferred, "proof.transferred")?,
                prev: hex32(&self.prev, "proof.prev")?,
                memo_hash: hex32(&self.memo_hash, "proof.memoHash")?,
            },
            signature: Signature(sig),
        })
    }
}

impl ChannelPayload {
    /// The payload of `item` for a request with `nonce`.
    pub fn of(item: &PayItem, nonce: &str) -> ChannelPayload {
        ChannelPayload {
            nonce: nonce.into(),
            proof: ProofJson::of(&item.proof),
            payments: item
                .payments
                .iter()
                .map(|p| PaymentJson {
                    amount: p.amount.to_string(),
                    reference: p.reference.to_hex(),
                })
                .collect(),
        }
    }

    /// The proof and its payments; the nonce is checked for length and hex.
    pub fn to_item(&self) -> Result<PayItem, X402Error> {
        if self.nonce.is_empty()
            || self.nonce.len() > NONCE_HEX_MAX
            || !self.nonce.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(X402Error::Field {
                field: "payload.nonce",
                why: format!("1 to {NONCE_HEX_MAX} hex characters"),
            });
        }
        if self.payments.len() != 1 {
            return Err(X402Error::Field {
                field: "payload.payments",
                why: "exactly one payment".into(),
            });
        }
        let payments = self
            .payments
            .iter()
            .map(|p| {
                Ok(Payment {
                    amount: parse_amount(&p.amount, "payload.payments.amount")?,
                    reference: hex32(&p.reference, "payload.payments.reference")?,
                })
            })
            .collect::<Result<Vec<_>, X402Error>>()?;
        Ok(PayItem {
            proof: self.proof.to_proof()?,
            payments,
        })
    }
}

/// Base64 of the JSON of `v`.
pub fn encode_header<T: Serialize>(v: &T) -> String {
    let json = serde_json::to_vec(v).expect("these types always serialise");
    base64::engine::general_purpose::STANDARD.encode(json)
}

/// `T` from a header value: size checked first, then base64, then JSON.
pub fn decode_header<T: for<'de> Deserialize<'de>>(value: &[u8]) -> Result<T, X402Error> {
    if value.len() > HEADER_BYTES_MAX {
        return Err(X402Error::TooLarge);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|e| X402Error::Base64(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| X402Error::Json(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use paychan_protocol::Keypair;

    fn item() -> PayItem {
        let k = Keypair::from_seed([7; 32]);
        let payments = vec![Payment {
            amount: 5,
            reference: request_reference("GET", "/a?b=1", "00ff"),
        }];
        let body = BalanceProof {
            chain_id: Hash32([1; 32]),
            channel_id: ChannelId(Hash32([2; 32])),
            direction: Direction::BToA,
            seq: 3,
            transferred: 15,
            prev: Hash32([4; 32]),
            memo_hash: paychan_protocol::channel::memo_hash(&payments),
        };
        PayItem {
            proof: body.sign(&k),
            payments,
        }
    }

    #[test]
    fn a_payload_round_trips_through_its_header() {
        let item = item();
        let p = ChannelPayload::of(&item, "00ff");
        let header = encode_header(&p);
        let back: ChannelPayload = decode_header(header.as_bytes()).unwrap();
        assert_eq!(back.to_item().unwrap(), item);
    }

    #[test]
    fn bad_headers_are_typed_errors() {
        assert_eq!(
            decode_header::<ChannelPayload>(&vec![b'A'; HEADER_BYTES_MAX + 1]),
            Err(X402Error::TooLarge)
        );
        assert!(matches!(
            decode_header::<ChannelPayload>(b"@@@"),
            Err(X402Error::Base64(_))
        ));
        let not_json = base64::engine::general_purpose::STANDARD.encode(b"{\"nonce\":1}");
        assert!(matches!(
            decode_header::<ChannelPayload>(not_json.as_bytes()),
            Err(X402Error::Json(_))
        ));
        let mut p = ChannelPayload::of(&item(), "00ff");
        p.proof.transferred = "-1".into();
        assert!(matches!(
            p.to_item(),
            Err(X402Error::Field {
                field: "proof.transferred",
                ..
            })
        ));
        let mut p = ChannelPayload::of(&item(), "zz");
        assert!(matches!(
            p.to_item(),
            Err(X402Error::Field {
                field: "payload.nonce",
                ..
            })
        ));
        p.nonce = "01".into();
        p.payments.clear();
        assert!(matches!(
            p.to_item(),
            Err(X402Error::Field {
                field: "payload.payments",
                ..
            })
        ));
    }

    #[test]
    fn the_network_id_is_the_chain_id_cut_to_32_hex_digits() {
        let n = network_id(&Hash32([0xab; 32]));
        assert_eq!(n, format!("paychan:{}", "ab".repeat(16)));
    }
}

//! Buffered proofs against real node processes (a 2-node testnet on 127.0.0.1): a pay job with
//! 64 payments per signed proof goes through the CLI; the payee lists each payment, with the
//! memo's amount and reference, from its store, and still lists every one of them after a
//! SIGKILL and a restart. The channel lists show proofs and payments.

mod common;

use common::*;
use paychan_protocol::Payment;
use serde_json::Value;

#[test]
fn a_buffered_job_is_listed_payment_by_payment_by_the_payee_across_a_restart() {
    let net = Testnet::up(2);
    let id = open_cli(&net, 1, 0, 1_000_000, 0);
    const COUNT: u64 = 1_000;
    const PER_PROOF: u64 = 64;
    let paid = cli_json_ok(&[
        "channel",
        "pay",
        &id,
        "--amount",
        "3",
        "--count",
        &COUNT.to_string(),
        "--per-proof",
        &PER_PROOF.to_string(),
        "--memo",
        "article 7",
        "--data-dir",
        &dir_str(&net, 1),
        "--json",
    ]);
    assert_eq!(paid["count"], COUNT, "{paid}");
    assert_eq!(paid["amount_total"], 3 * COUNT, "{paid}");

    let proofs = COUNT.div_ceil(PER_PROOF);
    let payer = channel_view(&net.api(1), &id).unwrap();
    assert_eq!(payer["payments_sent"], COUNT, "{payer}");
    assert_eq!(payer["newest_seq_sent"], proofs, "{payer}");
    let reference = Payment::text_reference("article 7").to_string();
    let check = |list: &Value| {
        let list = list.as_array().expect("a list");
        assert_eq!(list.len() as u64, COUNT);
        for (n, p) in list.iter().enumerate() {
            let n = n as u64;
            assert_eq!(p["seq"], n / PER_PROOF + 1, "{p}");
            assert_eq!(p["index"], n % PER_PROOF, "{p}");
            assert_eq!(p["amount"], 3, "{p}");
            assert_eq!(p["reference"], reference.as_str(), "{p}");
        }
    };
    let path = format!("/v1/channels/{id}/payments?limit=10000");
    check(&net.api(0).get(&path).unwrap());
    let payee = channel_view(&net.api(0), &id).unwrap();
    assert_eq!(payee["payments_received"], COUNT, "{payee}");
    assert_eq!(payee["newest_seq_received"], proofs, "{payee}");
    assert_eq!(payee["received"], 3 * COUNT, "{payee}");

    // A page from a later proof, through the CLI.
    let page = cli_json_ok(&[
        "channel",
        "payments",
        &id,
        "--from-seq",
        "16",
        "--limit",
        "5",
        "--data-dir",
        &dir_str(&net, 0),
        "--json",
    ]);
    let seqs: Vec<(u64, u64)> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["seq"].as_u64().unwrap(), p["index"].as_u64().unwrap()))
        .collect();
    assert_eq!(seqs, vec![(16, 0), (16, 1), (16, 2), (16, 3), (16, 4)]);

    // Bad requests are refused and change nothing.
    let (code, v) = net
        .api(1)
        .post(
            &format!("/v1/channels/{id}/pay"),
            &serde_json::json!({"amount": 1, "count": 5, "per_proof": 65}),
        )
        .unwrap();
    assert_eq!(code, 400, "{v}");
    let (code, _) = net
        .api(0)
        .get_raw(&format!("/v1/channels/{id}/payments?limit=x"))
        .unwrap();
    assert_eq!(code, 400);

    // Every acknowledged payment survives a SIGKILL of the payee.
    net.kill9(0);
    net.restart(0);
    check(&net.api(0).get(&path).unwrap());
}

//! A sequencer that signs two checkpoints for one log size is caught: no witness cosigns the
//! second, every node reports the split view with both signed notes, witnesses cosign nothing
//! from then on, and the evidence survives a restart.

mod common;

use std::time::Duration;

use common::*;
use paychan_protocol::note::parse_checkpoint_note;
use serde_json::Value;

/// The split views node `i` reports (waits until there is one).
fn split_views(net: &Testnet, i: usize) -> Vec<Value> {
    wait_until(
        &format!("node-{i} reports a split view"),
        Duration::from_secs(20),
        || {
            let a = net.api(i).get("/v1/alarms")?;
            match a["split_views"].as_array() {
                Some(v) if !v.is_empty() => Ok(v.clone()),
                _ => Err(format!("no split view yet: {a}")),
            }
        },
    )
}

#[test]
fn an_equivocating_sequencer_is_caught_by_every_node() {
    let net = Testnet::up_with(4, &["--test-equivocate"]);
    let genesis = net.genesis();
    assert_eq!(genesis.witnesses.len(), 3);

    let mut fake_root = None;
    let mut height = 0;
    for i in 0..4 {
        let views = split_views(&net, i);
        let v = &views[0];
        let (a, b) = (&v["first"], &v["second"]);
        // The sequencer signed two roots for one log size (at one height or at two).
        assert_eq!(a["log_size"], b["log_size"], "node-{i}: {v}");
        assert_ne!(a["log_root"], b["log_root"], "node-{i}: {v}");
        // Both notes are checkpoints of this chain signed by the genesis sequencer.
        for c in [a, b] {
            let note = c["note"].as_str().expect("note text");
            let parsed = parse_checkpoint_note(note, &genesis).expect("a valid signed note");
            assert_eq!(Some(parsed.checkpoint.height), c["height"].as_u64());
        }
        // The fake one is the one whose root is not that of its block.
        let mut fakes = Vec::new();
        for c in [a, b] {
            let h = c["height"].as_u64().expect("height");
            height = height.max(h);
            let block = &net.api(i).blocks(h).expect("blocks")[h as usize - 1];
            if c["log_root"] != block["log_root"] {
                fakes.push(c["log_root"].clone());
            }
        }
        assert_eq!(
            fakes.len(),
            1,
            "node-{i}: exactly one of the two is the fake: {v}"
        );
        match &fake_root {
            None => fake_root = Some(fakes[0].clone()),
            Some(r) => assert_eq!(*r, fakes[0], "node-{i} saw the same fake"),
        }
    }
    let fake_root = fake_root.expect("a fake root");
    println!("split view at height {height}");

    // No witness cosigned the fake, and none cosigns anything after the split view.
    let cosigned_height = |i: usize| {
        let a = net.api(i).get("/v1/alarms").expect("alarms");
        assert_ne!(
            a["cosigned"]["log_root"], fake_root,
            "node-{i} cosigned the fake: {a}"
        );
        a["cosigned"]["height"].as_u64().unwrap_or(0)
    };
    let before: Vec<u64> = (1..4).map(cosigned_height).collect();
    for (k, h) in before.iter().enumerate() {
        assert!(*h <= height, "node-{} cosigned past the split view: {h}", k + 1);
    }

    // `paychan audit consistency` with the two notes reports the split view (exit 1).
    {
        let v = &split_views(&net, 1)[0];
        let work = tempfile::tempdir().expect("temp dir");
        let (a, b) = (work.path().join("first.note"), work.path().join("second.note"));
        let (first, second) = (&v["first"], &v["second"]);
        // The older note first (by height), as the command expects.
        let (older, newer) = if first["height"].as_u64() <= second["height"].as_u64() {
            (first, second)
        } else {
            (second, first)
        };
        std::fs::write(&a, older["note"].as_str().unwrap()).unwrap();
        std::fs::write(&b, newer["note"].as_str().unwrap()).unwrap();
        let url = format!(
            "http://{}",
            std::fs::read_to_string(net.dir(1).join("public.addr"))
                .unwrap()
                .trim()
        );
        let chain_id = genesis.chain_id().to_hex();
        let mut cmd = paychan();
        cmd.args([
            "audit",
            "consistency",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--url",
            &url,
            "--chain-id",
            &chain_id,
        ]);
        let out = run_bounded(cmd, Duration::from_secs(60));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("split view"), "{text}");

        // `paychan audit` of an export with each note: the true one agrees with the verified
        // log, the fake one is a split view printed with both notes.
        let export = work.path().join("ledger.export");
        let mut cmd = paychan();
        cmd.args([
            "ledger",
            "export",
            "--out",
            export.to_str().unwrap(),
            "--data-dir",
        ])
        .arg(net.dir(1));
        let out = run_bounded(cmd, Duration::from_secs(60));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        for (path, c) in [(&a, older), (&b, newer)] {
            let fake = c["log_root"] == fake_root;
            let mut cmd = paychan();
            cmd.args(["audit", "--file", export.to_str().unwrap(), "--note"])
                .arg(path)
                .args(["--chain-id", &chain_id]);
            let out = run_bounded(cmd, Duration::from_secs(60));
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if fake {
                assert_eq!(out.status.code(), Some(1), "{text}");
                assert!(text.contains("SPLIT VIEW"), "{text}");
                assert!(text.contains(c["note"].as_str().unwrap().trim_end()), "{text}");
            } else {
                assert_eq!(out.status.code(), Some(0), "{text}");
                assert!(text.contains("agrees with"), "{text}");
            }
        }
    }

    // The evidence survives a restart of a witness.
    let kept = split_views(&net, 1);
    net.kill9(1);
    net.restart(1);
    let after_restart = split_views(&net, 1);
    assert_eq!(after_restart[0]["first"], kept[0]["first"]);
    assert_eq!(after_restart[0]["second"], kept[0]["second"]);

    // A few blocks later, still nothing cosigned beyond the split view.
    wait_until("three more blocks", Duration::from_secs(15), || {
        let h = net.api(0).height()?;
        if h >= height + 3 {
            Ok(())
        } else {
            Err(format!("height {h}"))
        }
    });
    let after: Vec<u64> = (1..4).map(cosigned_height).collect();
    assert_eq!(after, before, "witnesses stop cosigning after a split view");
    let cp = net.api(0).get("/v1/ledger/checkpoint").expect("checkpoint");
    assert_eq!(cp["witnessed"], false, "{cp}");
    let note = cp["note"].as_str().expect("the checkpoint's note");
    assert!(parse_checkpoint_note(note, &genesis).is_ok(), "{note}");
}

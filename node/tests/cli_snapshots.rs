//! Snapshot files of every command's text and `--json` output against a real testnet, failures
//! included (`tests/snapshots/cli_snapshots__*.snap`, reviewed like code).
//!
//! A run's ids, keys, ports, heights and times differ every time: before a transcript is compared
//! they are replaced by named placeholders (`[peer node-0]`, `[account client-0]`, `[channel-1]`,
//! `[tx-1]`, `[port]`, `[date]`, `[height]`, ...), so a snapshot shows which party appears where
//! and every word, unit and exit code of the output. Each `--json` output, success or failure,
//! must also parse as one JSON value, and a failure must be one `error` object with a code and a
//! message. After a deliberate change of the CLI's output, run
//! `INSTA_UPDATE=always cargo test -p paychan --test cli_snapshots` and review the diff.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use regex::Regex;
use serde_json::Value;

/// One command run: what was asked and what it printed.
struct Run {
    args: Vec<String>,
    json: bool,
    out: Output,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    fn code(&self) -> i32 {
        self.out.status.code().expect("an exit code")
    }

    /// The `--json` output as a value (the run must have asked for it).
    fn value(&self) -> Value {
        assert!(self.json);
        serde_json::from_str(self.stdout().trim()).expect("checked when run")
    }
}

/// The testnet under test and the placeholders for what this run made.
struct Snapshots<'a> {
    net: &'a Testnet,
    /// Exact strings and their placeholders, longest first when applied.
    known: Vec<(String, String)>,
    /// Heights the test passes (`--from H`, `--to H`), shown as placeholders.
    arg_names: Vec<(String, String)>,
    channels: usize,
    txs: usize,
    /// Scratch files (export, keys, a data dir of one's own), beside the testnet.
    scratch: PathBuf,
}

impl<'a> Snapshots<'a> {
    fn new(net: &'a Testnet) -> Snapshots<'a> {
        let scratch = net.root.parent().expect("a parent").join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let mut s = Snapshots {
            net,
            known: Vec::new(),
            arg_names: Vec::new(),
            channels: 0,
            txs: 0,
            scratch,
        };
        s.name(net.root_str(), "[testnet]");
        let scratch = s.scratch.to_str().unwrap().to_owned();
        s.name(&scratch, "[scratch]");
        for i in 0..net.n {
            s.name(&net.peer_id(i).to_string(), &format!("[peer node-{i}]"));
            s.name(&net.node_key(i).public().to_hex(), &format!("[account node-{i}]"));
        }
        for k in 0..3 {
            s.name(
                &net.client_key(k).public().to_hex(),
                &format!("[account client-{k}]"),
            );
        }
        let chain = net.genesis().chain_id().to_hex();
        s.name(&chain, "[chain-id]");
        s
    }

    fn name(&mut self, value: &str, placeholder: &str) {
        self.known.push((value.to_owned(), placeholder.to_owned()));
    }

    /// Names a channel id (and the 16-character prefix the CLI prints) `[channel-N]`.
    fn channel(&mut self, id: &str) -> String {
        self.channels += 1;
        let p = format!("[channel-{}]", self.channels);
        self.name(id, &p);
        for prefix in [16, 12] {
            self.name(&id[..prefix], &p);
        }
        id.to_owned()
    }

    /// Names a transaction id `[tx-N]`.
    fn tx(&mut self, id: &str) -> String {
        self.txs += 1;
        let p = format!("[tx-{}]", self.txs);
        self.name(id, &p);
        id.to_owned()
    }

    fn d(&self, i: usize) -> String {
        dir_str(self.net, i)
    }

    /// Runs `paychan LINE` (split at spaces; with `--json` if `json`). A `--json` output must be
    /// one JSON value; a failing one an `error` object with a code and a message.
    fn run(&self, line: &str, json: bool) -> Run {
        let args: Vec<&str> = line.split_whitespace().collect();
        let mut cmd = paychan();
        cmd.args(&args);
        if json {
            cmd.arg("--json");
        }
        let out = run_bounded(cmd, CLI_TIMEOUT);
        let run = Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            json,
            out,
        };
        if json {
            let v: Value = serde_json::from_str(run.stdout().trim()).unwrap_or_else(|e| {
                panic!(
                    "paychan {args:?} --json printed no JSON ({e}):\n{}\nstderr: {}",
                    run.stdout(),
                    String::from_utf8_lossy(&run.out.stderr)
                )
            });
            if run.code() != 0 {
                let e = &v["error"];
                assert!(
                    e["code"].is_string() && e["message"].is_string(),
                    "paychan {args:?}: a failure is an error object: {v}"
                );
            }
        }
        run
    }

    /// Runs `line` as text, then with `--json`.
    fn both(&self, line: &str) -> Vec<Run> {
        vec![self.run(line, false), self.run(line, true)]
    }

    /// Compares the transcript of `runs` with the snapshot `name`.
    fn check(&self, name: &str, runs: &[Run]) {
        let mut text = String::new();
        for r in runs {
            let args: Vec<&str> = r
                .args
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let height_flag = i > 0 && ["--from", "--to"].contains(&r.args[i - 1].as_str());
                    self.arg_names
                        .iter()
                        .find(|(v, _)| height_flag && v == a)
                        .map_or(a.as_str(), |(_, p)| p.as_str())
                })
                .collect();
            let mut line = format!("$ paychan {}", args.join(" "));
            if r.json {
                line.push_str(" --json");
            }
            text.push_str(&line);
            text.push_str(&format!("\nexit {}\n", r.code()));
            for (what, bytes) in [("stdout", &r.out.stdout), ("stderr", &r.out.stderr)] {
                let s = String::from_utf8_lossy(bytes);
                if !s.trim().is_empty() {
                    text.push_str(&format!("--- {what}\n{}\n", s.trim_end()));
                }
            }
            text.push('\n');
        }
        let text = self.normalise(&text);
        insta::with_settings!({prepend_module_to_snapshot => true, omit_expression => true}, {
            insta::assert_snapshot!(name, text);
        });
    }

    /// Replaces what differs between runs by placeholders.
    fn normalise(&self, text: &str) -> String {
        let mut known = self.known.clone();
        known.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
        let mut t = text.to_owned();
        for (v, p) in &known {
            t = t.replace(v.as_str(), p);
        }
        let rules: &[(&str, &str)] = &[
            // C2SP note keys: name+key id+base64 key.
            (r"\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}", "+[key id]+[key]"),
            // Peer ids of keys made during the run.
            (r"\b12D3KooW[1-9A-HJ-NP-Za-km-z]{44}\b", "[peer]"),
            (r"\b[0-9a-f]{64}\b", "[hash]"),
            (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
            (r"/tcp/\d+", "/tcp/[port]"),
            (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", "[date]"),
            (r#""(\w+_ms)": [\d.e+]+"#, r#""$1": [ms]"#),
            (r#""(\w*height)": \d+"#, r#""$1": [height]"#),
            (r#""pid": \d+"#, r#""pid": [pid]"#),
            (
                r#""(payments_per_second|txs_per_s)": [\d.e+]+"#,
                r#""$1": [rate]"#,
            ),
            (r#""version": "[^"]+""#, r#""version": "[version]""#),
            (r"(?m)^(version:\s+)\S+", "${1}[version]"),
            (r"[\d,]+(\.\d+)? payments/s", "[rate] payments/s"),
            (
                r"\d+ tx/s \([\d.]+ ms verifying\)",
                "[rate] tx/s ([duration] verifying)",
            ),
            (r"\(in [^)]*\)", "(in [duration])"),
            // Which record of the export a flipped byte hits depends on the layout of the run.
            (
                r"record at export byte \d+: [^(]*\(",
                "record at export byte [n]: [what failed] (",
            ),
            (r"\b(height|block) \d+", "$1 [height]"),
            // How many blocks a run took (several transactions may share one, heartbeats
            // add empty ones).
            (r"\d+ verified, \d+ matched", "[n] verified, [n] matched"),
            (r"\b\d+ (blocks|checkpoints)\b", "[n] $1"),
            (
                r#""(blocks|checkpoints|checkpoints_matched)": \d+"#,
                r#""$1": [n]"#,
            ),
            (r"(?m)^(blocks|checkpoints):(\s+)\d+", "$1:$2[n]"),
            // Table columns of heights: a block's (before its hash), a node's (before its
            // address).
            (r"(?m)^(\s*)\d+(\s+\[hash\])", "$1[height]$2"),
            (r"(\[port\]\s+)\d+(\s+/ip4)", "$1[height]$2"),
            // Column widths follow the values replaced: a run of spaces inside a line is one
            // gap (indentation is kept).
            (r"(\S) {2,}", "$1  "),
            (r"(?m) +$", ""),
        ];
        for (re, with) in rules {
            t = Regex::new(re).unwrap().replace_all(&t, *with).into_owned();
        }
        t
    }
}

/// Waits until `id` is open at both ends.
fn wait_open(net: &Testnet, id: &str) {
    wait_status(&net.api(0), id, "open");
    wait_status(&net.api(1), id, "open");
}

/// The channel ids node `i` has that are not in `seen`.
fn new_channels(net: &Testnet, i: usize, seen: &[String]) -> Vec<String> {
    let list = net.api(i).get("/v1/channels").unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .filter(|id| !seen.contains(id))
        .collect()
}

fn flip_a_byte(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn every_command_prints_what_its_snapshot_shows() {
    let net = Testnet::up(2);
    let mut s = Snapshots::new(&net);
    let (d0, d1, root) = (s.d(0), s.d(1), net.root_str().to_owned());

    // Who and where.
    s.check("testnet_status", &s.both(&format!("testnet status --dir {root}")));
    s.check("info", &s.both(&format!("info --data-dir {d1}")));
    s.check("peers", &s.both(&format!("peers --data-dir {d1}")));
    s.check("ledger_keys", &s.both(&format!("ledger keys --data-dir {d1}")));
    s.check(
        "ledger_balance",
        &s.both(&format!("ledger balance --data-dir {d1}")),
    );

    // A transfer waited for, and where it is.
    let transfer = format!("ledger transfer --to client-0 --amount 5 --wait --data-dir {d1}");
    let j = s.run(&transfer, true);
    let tx = s.tx(j.value()["tx_id"].as_str().unwrap());
    let height = j.value()["height"].as_u64().unwrap().to_string();
    s.arg_names.push((height.clone(), "[height]".into()));
    let h = s.run(&transfer, false);
    s.check("ledger_transfer_wait", &[h, j]);
    s.check("ledger_tx", &s.both(&format!("ledger tx {tx} --data-dir {d1}")));
    s.check(
        "ledger_blocks",
        &s.both(&format!(
            "ledger blocks --from {height} --limit 1 --data-dir {d1}"
        )),
    );
    s.check(
        "ledger_balance_of_a_name",
        &s.both(&format!("ledger balance client-0 --data-dir {d1}")),
    );
    let unknown = "cd".repeat(32);
    s.check(
        "ledger_tx_failures",
        &[
            s.run(&format!("ledger tx {unknown} --data-dir {d1}"), false),
            s.run(&format!("ledger tx {unknown} --data-dir {d1}"), true),
            s.run(&format!("ledger tx zz --data-dir {d1}"), true),
        ],
    );
    s.check(
        "ledger_transfer_failures",
        &[
            s.run(
                &format!("ledger transfer --to nope --amount 1 --data-dir {d1}"),
                false,
            ),
            s.run(
                &format!("ledger transfer --to nope --amount 1 --data-dir {d1}"),
                true,
            ),
            s.run(
                &format!("ledger transfer --to ab --amount 1 --data-dir {d1}"),
                true,
            ),
            s.run(
                &format!("ledger transfer --to client-1 --amount 999999999999 --data-dir {d1}"),
                true,
            ),
        ],
    );

    // Channels: open (JSON, then text), list, pay, payments.
    let open = |deposit: u64| format!("channel open --peer node-0 --deposit {deposit} --data-dir {d1}");
    let j = s.run(&open(10_000), true);
    let ch1 = s.channel(j.value()["channel_id"].as_str().unwrap());
    wait_open(&net, &ch1);
    // (Listed while there is one channel: a list is in the order of the ids, which differ.)
    let list = s.both(&format!("channel list --data-dir {d1}"));
    let h = s.run(&open(1_000), false);
    let ch2 = new_channels(&net, 1, std::slice::from_ref(&ch1))
        .pop()
        .expect("the second channel");
    let ch2 = s.channel(&ch2);
    wait_open(&net, &ch2);
    s.check("channel_open", &[j, h]);
    s.check("channel_list", &list);
    s.check(
        "channel_pay",
        &s.both(&format!(
            "channel pay {} --amount 2 --count 50 --data-dir {d1}",
            &ch1[..12]
        )),
    );
    s.check(
        "channel_payments",
        &s.both(&format!("channel payments {ch1} --limit 3 --data-dir {d0}")),
    );
    // 400 payments of 3 from a deposit of 1,000: 333 go through, then none.
    let pay = format!("channel pay {ch2} --amount 3 --count 400 --data-dir {d1}");
    s.check(
        "channel_pay_out_of_funds",
        &[s.run(&pay, false), s.run(&pay, true)],
    );
    let unknown = "ab".repeat(32);
    s.check(
        "channel_failures",
        &[
            s.run(
                &format!("channel pay {unknown} --amount 1 --data-dir {d1}"),
                false,
            ),
            s.run(&format!("channel pay {unknown} --amount 1 --data-dir {d1}"), true),
            s.run(&format!("channel pay ffff0000 --amount 1 --data-dir {d1}"), true),
            s.run(
                &format!("channel open --peer node-9 --deposit 1 --data-dir {d1}"),
                true,
            ),
            s.run("channel pay", false),
            s.run("channel pay", true),
        ],
    );
    s.check("info_with_channels", &s.both(&format!("info --data-dir {d1}")));

    // Credit: node-0 (the payee of ch1) grants node-1 a line, then raises it; the list, a
    // score, and the failures.
    let grant = |limit: u64| {
        format!(
            "credit grant --channel {} --limit {limit} --data-dir {d0}",
            &ch1[..12]
        )
    };
    s.check(
        "credit_grant",
        &[s.run(&grant(500), false), s.run(&grant(700), true)],
    );
    wait_until("the raised line on the ledger", STEP, || {
        let v = net.api(0).get("/v1/credit")?;
        let limit = v["lines"]
            .as_array()
            .and_then(|l| l.first())
            .map(|l| l["limit"].clone());
        (limit == Some(700.into())).then_some(()).ok_or(format!("{v}"))
    });
    s.check("credit_list", &s.both(&format!("credit list --data-dir {d0}")));
    s.check(
        "credit_score",
        &s.both(&format!("credit score node-1 --data-dir {d0}")),
    );
    s.check(
        "credit_failures",
        &[
            s.run(
                &format!("credit grant --channel {unknown} --limit 5 --data-dir {d0}"),
                true,
            ),
            s.run(
                &format!("credit grant --channel {ch1} --limit 5 --expiry-ms 10 --due-ms 5 --data-dir {d0}"),
                true,
            ),
            s.run(&format!("credit repay --channel {ch1} --data-dir {d1}"), false),
            s.run(&format!("credit repay --channel {ch1} --data-dir {d1}"), true),
            s.run(&format!("credit score nobody --data-dir {d0}"), true),
        ],
    );

    // Closes: cooperative (text, then JSON), and unilateral without waiting.
    s.check(
        "channel_close",
        &[
            s.run(&format!("channel close {ch1} --data-dir {d1}"), false),
            s.run(&format!("channel close {ch2} --data-dir {d1}"), true),
        ],
    );
    let j = s.run(&open(100), true);
    let ch3 = s.channel(j.value()["channel_id"].as_str().unwrap());
    let j = s.run(&open(100), true);
    let ch4 = s.channel(j.value()["channel_id"].as_str().unwrap());
    wait_open(&net, &ch3);
    wait_open(&net, &ch4);
    let force = |ch: &str| format!("channel close {ch} --force --no-wait --data-dir {d1}");
    s.check(
        "channel_close_force_no_wait",
        &[s.run(&force(&ch3), false), s.run(&force(&ch4), true)],
    );
    // Both unilateral closes in a block before the ledger is exported below.
    for ch in [&ch3, &ch4] {
        wait_until("the unilateral close in a block", STEP, || {
            let v = channel_view(&net.api(1), ch)?;
            v["window_end_ms"].as_u64().ok_or(format!("{v}"))
        });
    }

    // Connecting at run time.
    let addr = net.p2p_addr(0).to_string();
    s.check(
        "connect",
        &[
            s.run(&format!("connect {addr} --data-dir {d1}"), false),
            s.run(&format!("connect {addr} --data-dir {d1}"), true),
            s.run(&format!("connect /ip4/127.0.0.1/tcp/1 --data-dir {d1}"), false),
            s.run(&format!("connect not-an-address --data-dir {d1}"), true),
        ],
    );

    // Export and audit, clean and tampered.
    let scratch = s.scratch.to_str().unwrap().to_owned();
    let (export, tampered) = (
        format!("{scratch}/ledger.export"),
        format!("{scratch}/tampered.export"),
    );
    let to = s.run(&format!("ledger status --data-dir {d1}"), true).value()["height"]
        .as_u64()
        .unwrap()
        .to_string();
    s.arg_names.push((to.clone(), "[height]".into()));
    let export_cmd = format!("ledger export --out {export} --to {to} --data-dir {d1}");
    s.check(
        "ledger_export",
        &[s.run(&export_cmd, false), s.run(&export_cmd, true)],
    );
    std::fs::copy(&export, &tampered).unwrap();
    flip_a_byte(Path::new(&tampered));
    let chain = net.genesis().chain_id().to_hex();
    let audit = |file: &str| format!("audit --file {file} --chain-id {chain}");
    s.check(
        "audit",
        &[s.run(&audit(&export), false), s.run(&audit(&export), true)],
    );
    let unpinned = format!("audit --file {export}");
    s.check(
        "audit_failures",
        &[
            s.run(&audit(&tampered), false),
            s.run(&audit(&tampered), true),
            s.run(&unpinned, false),
            s.run(&unpinned, true),
        ],
    );

    // Keys and a data dir of one's own.
    let key = format!("{scratch}/k.key");
    s.check(
        "key_new_out",
        &[
            s.run(&format!("key new --out {key}"), false),
            s.run(&format!("key new --out {key}"), false),
            s.run(&format!("key new --out {key}"), true),
            s.run(&format!("key new --data-dir {d1}"), true),
        ],
    );
    let (own, own_json) = (format!("{scratch}/own"), format!("{scratch}/own-json"));
    let runs = [
        s.run(&format!("init --data-dir {own}"), false),
        s.run(&format!("init --data-dir {own_json}"), true),
        s.run(&format!("init --data-dir {own}"), true),
    ];
    for dir in [&own, &own_json] {
        let me = paychan::config::DataDir::new(PathBuf::from(dir))
            .keypair()
            .unwrap()
            .public();
        s.name(
            &paychan_net::peer_id_from_public_key(&me).unwrap().to_string(),
            "[peer own]",
        );
        s.name(&me.to_hex(), "[account own]");
    }
    s.check("init", &runs);

    // Commands that take no data dir, and a testnet that exists.
    let up = format!("testnet up --nodes 2 --dir {root}");
    s.check(
        "testnet_and_client_failures",
        &[
            s.run(&up, false),
            s.run(&up, true),
            s.run(&format!("testnet status --dir {root} --data-dir {d1}"), true),
            s.run(&format!("client --key {key} --node {addr}"), true),
        ],
    );

    // A stopped node: the commands that need it say so; the ledger reads from its store.
    s.check(
        "testnet_down",
        &[s.run(&format!("testnet down --dir {root}"), false)],
    );
    s.check(
        "stopped_node",
        &[
            s.run(&format!("info --data-dir {d1}"), false),
            s.run(&format!("info --data-dir {d1}"), true),
            s.run(&format!("ledger balance --data-dir {d1}"), false),
            s.run(&format!("ledger status --data-dir {d1}"), true),
        ],
    );
}

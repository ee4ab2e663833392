//! README.md's "Using it" commands, read from README.md itself and run as written against a
//! fresh testnet, so that README cannot drift from the CLI.
//!
//! The block is the first `sh` block under `## Using it`. Each `paychan` line runs in a fresh
//! temporary directory (so `tn` is a new testnet) with comments and optional `[...]` parts
//! dropped; `CHANNEL` and `TXID` are the ids that the lines before printed. The build line is
//! not run (the test runs the binary cargo built) and neither is `testnet demo` (its own test,
//! `demo.rs`, runs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;

/// The `paychan` lines of README's "Using it" block, as written.
fn using_it_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
        .expect("read README.md");
    let section = readme
        .split("\n## Using it")
        .nth(1)
        .expect("README has a `## Using it` section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("an sh block in `Using it`");
    block
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("paychan "))
        .map(str::to_owned)
        .collect()
}

/// A line without its comment and its optional `[...]` parts, split into arguments.
fn args_of(line: &str) -> Vec<String> {
    let line = line.split(" #").next().unwrap_or(line);
    let mut out = String::new();
    let mut depth = 0usize;
    for ch in line.chars() {
        match ch {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(ch),
            _ => {}
        }
    }
    out.split_whitespace().skip(1).map(str::to_owned).collect()
}

/// The first 64-hex-digit word of a text.
fn hex_id(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .find(|w| w.len() == 64)
        .map(str::to_owned)
}

/// Stops the README's testnet whatever happens: `testnet down`, then SIGKILL of any node pid
/// still alive.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let tn = self.0.join("tn");
        let mut down = paychan();
        down.args(["testnet", "down", "--dir"]).arg(&tn);
        // `testnet down` bounds its own wait for each node; the kill below is the backstop.
        let _ = down.stdin(Stdio::null()).output();
        for i in 0..16 {
            let Ok(pid) = std::fs::read_to_string(tn.join(format!("node-{i}/node.pid"))) else {
                continue;
            };
            if let Ok(pid) = pid.trim().parse::<i32>() {
                if alive(pid as u32) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

#[test]
fn readme_using_it_runs_as_written() {
    let lines = using_it_lines();
    assert!(lines.len() >= 10, "the block has its commands: {lines:?}");
    let tmp = tempfile::Builder::new()
        .prefix("paychan-readme-")
        .tempdir()
        .unwrap();
    let _cleanup = Cleanup(tmp.path().to_owned());
    let (mut channel, mut txid) = (None::<String>, None::<String>);
    let mut ran = 0;
    for line in &lines {
        let mut args = args_of(line);
        if args.first().map(String::as_str) == Some("testnet")
            && args.get(1).map(String::as_str) == Some("demo")
        {
            continue;
        }
        for a in args.iter_mut() {
            match a.as_str() {
                "CHANNEL" => {
                    *a = channel
                        .clone()
                        .unwrap_or_else(|| panic!("{line}: no channel opened before"))
                }
                "TXID" => {
                    *a = txid
                        .clone()
                        .unwrap_or_else(|| panic!("{line}: no transaction before"))
                }
                _ => {}
            }
        }
        let mut cmd = paychan();
        cmd.args(&args).current_dir(tmp.path());
        let out = run_bounded(cmd, CLI_TIMEOUT);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "README line `{line}` failed ({}):\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
        let head: Vec<&str> = args.iter().take(2).map(String::as_str).collect();
        match head.as_slice() {
            ["channel", "open"] => {
                assert!(stdout.contains("is open"), "{line}: {stdout}");
                channel = hex_id(&stdout);
            }
            ["ledger", "transfer"] => {
                assert!(stdout.contains("witnessed"), "{line}: {stdout}");
                txid = hex_id(&stdout);
            }
            ["ledger", "tx"] => assert!(stdout.contains("witnessed"), "{line}: {stdout}"),
            ["channel", "pay"] => {
                let count = args
                    .iter()
                    .skip_while(|a| *a != "--count")
                    .nth(1)
                    .and_then(|c| c.parse::<u64>().ok())
                    .expect("a pay line names its count");
                let grouped = count
                    .to_string()
                    .as_bytes()
                    .rchunks(3)
                    .rev()
                    .map(|c| std::str::from_utf8(c).unwrap())
                    .collect::<Vec<_>>()
                    .join(",");
                let want = format!("in {grouped} payments");
                assert!(
                    stdout.contains(&want) && stdout.contains("all acknowledged"),
                    "{line}: {stdout}"
                )
            }
            ["channel", "payments"] => {
                assert!(stdout.starts_with("         SEQ  INDEX"), "{line}: {stdout}");
                assert_eq!(
                    stdout.lines().count(),
                    6,
                    "{line}: a header and five payments: {stdout}"
                );
            }
            ["channel", "close"] => assert!(stdout.contains("closed and paid out"), "{line}: {stdout}"),
            ["info", ..] => {
                for want in [
                    "peer id:",
                    "role:        witness",
                    "peers:       3 connected",
                    " cr on the ledger",
                ] {
                    assert!(stdout.contains(want), "{line}: {want:?} in {stdout}");
                }
            }
            ["ledger", "status"] => {
                assert!(
                    stdout.contains("unit:       credit (cr)") && stdout.contains(" UTC"),
                    "{line}: {stdout}"
                )
            }
            ["ledger", "balance"] => assert!(stdout.contains(" cr  nonce"), "{line}: {stdout}"),
            // The counterparty by its testnet name, the capacity with its unit.
            ["channel", "list"] => {
                assert!(
                    stdout.contains("node-2") && stdout.contains("150,000 cr"),
                    "{line}: {stdout}"
                )
            }
            _ => {}
        }
    }
    assert!(ran >= 10, "ran {ran} README lines");
}

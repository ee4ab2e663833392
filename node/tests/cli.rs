//! Runs the real `paychan` binary.

use std::process::Command;

fn paychan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_paychan"))
}

#[test]
fn version_prints_the_crate_version() {
    let out = paychan().arg("--version").output().expect("run paychan");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("paychan {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn key_new_prints_a_consistent_fresh_key() {
    let run = || {
        let out = paychan()
            .args(["key", "new", "--json"])
            .output()
            .expect("run paychan");
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json output");
        let public = v["public_key"].as_str().expect("public_key").to_owned();
        let secret = v["secret_key"].as_str().expect("secret_key").to_owned();
        (public, secret)
    };
    let (public, secret) = run();
    let seed: [u8; 32] = hex::decode(&secret).expect("hex").try_into().expect("32 bytes");
    assert_eq!(
        paychan_protocol::Keypair::from_seed(seed).public().to_hex(),
        public
    );
    assert_ne!(run().1, secret, "two runs give two different keys");
}

#[test]
fn unknown_subcommand_is_a_clear_error() {
    let out = paychan().arg("frobnicate").output().expect("run paychan");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
}

//! Architecture invariant: the pure crates depend on no runtime, network or storage crate.

use std::process::Command;

const PURE: &[&str] = &["paychan-protocol", "paychan-channel", "paychan-ledger"];
const FORBIDDEN: &[&str] = &["tokio", "libp2p", "sled", "async-std", "mio"];

#[test]
fn pure_crates_have_no_io_dependencies() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    for krate in PURE {
        let out = Command::new(&cargo)
            .current_dir(root)
            .args(["tree", "-e", "normal", "--prefix", "none", "-p", krate])
            .output()
            .expect("run cargo tree");
        assert!(
            out.status.success(),
            "cargo tree -p {krate}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8_lossy(&out.stdout);
        assert!(tree.lines().count() > 1, "cargo tree printed nothing for {krate}");
        for line in tree.lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            assert!(!FORBIDDEN.contains(&name), "{krate} depends on {name}");
        }
    }
}

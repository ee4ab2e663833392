//! Architecture invariant: the manager core does no I/O of its own. It never awaits, spawns,
//! reads a clock or draws OS randomness; the driver does all of that.

const CORE: &str = include_str!("../src/manager/core.rs");
const FORBIDDEN: &[&str] = &[
    "tokio",
    "async ",
    ".await",
    "spawn",
    "Instant",
    "SystemTime",
    "OsRng",
    "thread_rng",
    "std::thread",
    "Mutex",
];

#[test]
fn the_core_does_no_io() {
    for word in FORBIDDEN {
        let uses: Vec<(usize, &str)> = CORE
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim_start().starts_with("//"))
            .filter(|(_, l)| l.contains(word))
            .collect();
        assert!(uses.is_empty(), "core.rs uses `{word}`: {uses:?}");
    }
}

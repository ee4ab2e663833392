//! Architecture invariant: the manager core does no I/O of its own. It never awaits, spawns,
//! reads a clock or draws OS randomness; the driver does all of that.

/// The core's files: the core itself and its HTTP payments part.
const CORE: &[(&str, &str)] = &[
    ("core.rs", include_str!("../src/manager/core.rs")),
    ("core_http.rs", include_str!("../src/manager/core_http.rs")),
];
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
    for (file, text) in CORE {
        for word in FORBIDDEN {
            let uses: Vec<(usize, &str)> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim_start().starts_with("//"))
                .filter(|(_, l)| l.contains(word))
                .collect();
            assert!(uses.is_empty(), "{file} uses `{word}`: {uses:?}");
        }
    }
}

//! Crash points for the crash tests: `SLUICE_CRASH_AT=<name>` makes the process abort (as
//! kill -9 would stop it: no flush, no cleanup) when it reaches the point of that name. Unset,
//! a point costs one load of a cached environment lookup.

use std::sync::OnceLock;

fn armed_point() -> Option<&'static str> {
    static POINT: OnceLock<Option<String>> = OnceLock::new();
    POINT
        .get_or_init(|| {
            std::env::var("SLUICE_CRASH_AT")
                .ok()
                .filter(|p| !p.is_empty())
        })
        .as_deref()
}

/// Whether `SLUICE_CRASH_AT` names this point.
pub fn armed(name: &str) -> bool {
    armed_point() == Some(name)
}

/// Aborts the process if `SLUICE_CRASH_AT` names this point.
pub fn hit(name: &str) {
    if armed(name) {
        eprintln!("sluice: crash point {name} reached (SLUICE_CRASH_AT); aborting");
        std::process::abort();
    }
}

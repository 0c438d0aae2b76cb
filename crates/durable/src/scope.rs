//! Where a process's PID means something: its host, that host's boot and its PID namespace.
//!
//! Cells of one plan may run on several machines (Slurm on a shared file system) or in
//! containers on one machine, all writing into one `OUT`. A PID read from a lock or a temporary's
//! name says whether its writer lives only when the reader shares the writer's scope; anywhere
//! else repsim goes by a lease: a file that has not changed for [`lease`] is taken as left
//! behind.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// The default [`lease`]: ten minutes.
const DEFAULT_LEASE_SECONDS: u64 = 600;

/// The writer of a temporary, as its name records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemporaryOwner {
    /// The writer's [`process_scope`]; `None` for names of repsim versions that did not record
    /// it.
    pub scope: Option<String>,
    /// The writer's process id (in its own PID namespace).
    pub pid: u32,
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `HOSTNAME`, else `unknown`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// 16 hex digits naming this process's host, the host's boot (Linux's `boot_id`) and its PID
/// namespace (`/proc/self/ns/pid`): two processes with the same scope see the same PIDs. The
/// same for every call of one process.
pub fn process_scope() -> String {
    static SCOPE: OnceLock<String> = OnceLock::new();
    SCOPE
        .get_or_init(|| {
            let boot =
                std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
            let namespace = std::fs::read_link(Path::new("/proc/self/ns/pid"))
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            fnv1a64(&[host_name(), boot.trim().to_string(), namespace])
        })
        .clone()
}

/// How long a lock's heartbeat or a temporary may stay unchanged before repsim takes its
/// writer for gone, where the writer's PID cannot be checked (another machine or PID
/// namespace): `REPSIM_LEASE_SECONDS`, ten minutes by default.
pub fn lease() -> Duration {
    let seconds = std::env::var("REPSIM_LEASE_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_LEASE_SECONDS);
    Duration::from_secs(seconds)
}

/// FNV-1a over `parts`, each followed by a separator (0xff, never in UTF-8), as 16 hex digits:
/// a short fingerprint of a list of strings (not a defence against forgery).
pub fn fnv1a64(parts: &[String]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_is_stable_and_sixteen_hex_digits() {
        let scope = process_scope();
        assert_eq!(scope.len(), 16);
        assert!(scope.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(scope, process_scope());
    }

    #[test]
    fn the_scope_depends_on_every_part() {
        let base = fnv1a64(&["h".into(), "b".into(), "pid:[1]".into()]);
        assert_ne!(base, fnv1a64(&["h".into(), "b".into(), "pid:[2]".into()]));
        assert_ne!(base, fnv1a64(&["h2".into(), "b".into(), "pid:[1]".into()]));
        assert_ne!(base, fnv1a64(&["hb".into(), "".into(), "pid:[1]".into()]));
    }
}

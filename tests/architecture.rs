//! The house rules that cargo does not check, read from the sources:
//! - no import circles between the modules of any crate of the workspace (a module that names
//!   another through `crate::`, `super::` or a child's path imports it; doc comments aside);
//! - the experiments are a crate of their own (`crates/experiments`), below the command line,
//!   which they cannot import;
//! - `results` (the measures' names and parameters, matrices, results files; serde only)
//!   depends on no repsim crate; `model` and `data` only on `repsim-durable`, the std-only
//!   atomic writer; `similarity` on those two; `viz` only on `results` and `durable`, and on no
//!   burn crate (it draws results without compiling burn); the library builds without clap,
//!   ctrlc and mimalloc (they are optional, behind the `cli` feature).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The checkout under test (its sources, not the ones this binary was built from).
fn root() -> PathBuf {
    common::checkout()
}

/// Every `.rs` file under `dir`, with its module path relative to the crate root (`lib.rs`,
/// `main.rs` and `mod.rs` name their folder's module).
fn modules(src: &Path) -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, prefix: &[String], out: &mut Vec<(String, PathBuf)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                let mut p = prefix.to_vec();
                p.push(name);
                walk(&path, &p, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut p = prefix.to_vec();
                if !matches!(stem, "lib" | "main" | "mod") {
                    p.push(stem.to_string());
                }
                out.push((p.join("::"), path));
            }
        }
    }
    let mut out = Vec::new();
    walk(src, &[], &mut out);
    out
}

/// The modules `file` (module `module`) refers to, among `known`, outside comments. Inside an
/// inline module of the file (`mod tests { use super::*; }`), `super` is the file's module.
fn references(module: &str, file: &Path, known: &BTreeSet<String>) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let parent: Vec<&str> = if module.is_empty() {
        Vec::new()
    } else {
        let mut p: Vec<&str> = module.split("::").collect();
        p.pop();
        p
    };
    let own: Vec<&str> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").collect()
    };
    let children: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect();
    let resolve = |path: Vec<String>| -> Option<String> {
        // The longest prefix of `path` that is a module.
        (1..=path.len())
            .rev()
            .map(|k| path[..k].join("::"))
            .find(|p| known.contains(p))
    };
    let mut found = BTreeSet::new();
    let mut inline_module = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if line.starts_with("mod ") && line.trim_end().ends_with('{')
            || line.starts_with("pub mod ") && line.trim_end().ends_with('{')
        {
            inline_module = true;
        }
        let code = trimmed.split("//").next().unwrap_or("");
        let tokens: Vec<&str> = code
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .filter(|t| t.contains("::"))
            .collect();
        for token in tokens {
            let parts: Vec<String> = token
                .split("::")
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            let Some(first) = parts.first() else {
                continue;
            };
            let absolute: Option<Vec<String>> = match first.as_str() {
                "crate" => Some(parts[1..].to_vec()),
                "super" if inline_module && line.starts_with(' ') => None,
                "super" => {
                    let mut p: Vec<String> = parent.iter().map(|s| s.to_string()).collect();
                    p.extend(parts[1..].iter().cloned());
                    Some(p)
                }
                "self" => {
                    let mut p: Vec<String> = own.iter().map(|s| s.to_string()).collect();
                    p.extend(parts[1..].iter().cloned());
                    Some(p)
                }
                child if children.iter().any(|c| c == child) => {
                    let mut p: Vec<String> = own.iter().map(|s| s.to_string()).collect();
                    p.extend(parts.iter().cloned());
                    Some(p)
                }
                _ => None,
            };
            if let Some(target) = absolute.and_then(resolve) {
                if target != module && !target.is_empty() {
                    found.insert(target);
                }
            }
        }
    }
    found
}

/// The import graph of the crate whose sources are in `src`.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules(src);
    let known: BTreeSet<String> = mods.iter().map(|(m, _)| m.clone()).collect();
    mods.iter()
        .map(|(m, f)| (m.clone(), references(m, f, &known)))
        .collect()
}

/// A cycle of `graph`, if there is one (depth-first search).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = stack.iter().position(|s| s == next).unwrap();
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(node, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// The graph with every module folded into its top-level module.
fn top_level(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let top = |m: &str| m.split("::").next().unwrap_or("").to_string();
    let mut folded: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, refs) in graph {
        let entry = folded.entry(top(m)).or_default();
        for r in refs {
            if top(r) != top(m) {
                entry.insert(top(r));
            }
        }
    }
    folded
}

fn crate_sources() -> Vec<PathBuf> {
    let mut srcs = vec![root().join("src")];
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    crates.sort();
    srcs.extend(crates);
    srcs
}

#[test]
fn no_two_modules_import_each_other_in_any_crate() {
    for src in crate_sources() {
        let g = graph(&src);
        assert!(!g.is_empty(), "{}: no modules found", src.display());
        if let Some(cycle) = find_cycle(&g) {
            panic!("{}: import circle {}", src.display(), cycle.join(" -> "));
        }
        if let Some(cycle) = find_cycle(&top_level(&g)) {
            panic!(
                "{}: import circle between top-level modules {}",
                src.display(),
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn the_module_walker_sees_the_crates() {
    let g = graph(&root().join("crates/similarity/src"));
    for module in [
        "measures::cca",
        "measures::cca::params",
        "measures::cca::example_space",
        "measures::cka::minibatch",
        "measures::neighbours::cknna",
        "io::files",
        "stream::shard",
        "measure",
    ] {
        assert!(
            g.contains_key(module),
            "{module} missing from {:?}",
            g.keys()
        );
    }
    assert!(g["measures::cca::example_space"].contains("measures::cca::params"));
    assert!(g["measures::cca"].contains("measures::cca::example_space"));
    assert!(!g["measures::cca::example_space"].contains("measures::cca"));
    assert!(g["measures::neighbours::cknna"].contains("measures::neighbours"));
}

#[test]
fn the_cycle_finder_finds_a_planted_circle() {
    // The checker itself: two modules naming each other, and a parent and child doing so.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\npub mod c;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::x;\n/// [`crate::c`]\n").unwrap();
    std::fs::write(src.join("b.rs"), "pub fn x() { crate::a::y() }\n").unwrap();
    std::fs::create_dir(src.join("c")).unwrap();
    std::fs::write(src.join("c/mod.rs"), "mod d;\nuse d::z;\n").unwrap();
    std::fs::write(
        src.join("c/d.rs"),
        "use super::w;\nmod tests {\n    use super::*;\n}\n",
    )
    .unwrap();
    let g = graph(src);
    assert_eq!(
        g["a"],
        BTreeSet::from(["b".to_string()]),
        "doc links are not imports"
    );
    assert!(find_cycle(&g).is_some());
    assert_eq!(g["c::d"], BTreeSet::from(["c".to_string()]));
    assert_eq!(g["c"], BTreeSet::from(["c::d".to_string()]));
    std::fs::write(src.join("b.rs"), "pub fn x() {}\n").unwrap();
    let g = graph(src);
    let cycle = find_cycle(&g).unwrap();
    assert!(cycle.contains(&"c".to_string()), "{cycle:?}");
}

/// The `[dependencies]` table of a Cargo.toml, as (name, line).
fn dependencies(manifest: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && !line.is_empty() && !line.starts_with('#') {
            if let Some((name, _)) = line.split_once('=') {
                deps.push((name.trim().to_string(), line.to_string()));
            }
        }
    }
    deps
}

#[test]
fn dependencies_point_one_way() {
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("durable", &[][..]),
        ("results", &[][..]),
        ("similarity", &["repsim-durable", "repsim-results"][..]),
        ("model", &["repsim-durable"][..]),
        ("data", &["repsim-durable"][..]),
        ("viz", &["repsim-durable", "repsim-results"][..]),
        (
            "train",
            &[
                "repsim-durable",
                "repsim-model",
                "repsim-data",
                "repsim-similarity",
            ][..],
        ),
        (
            "experiments",
            &[
                "repsim-durable",
                "repsim-results",
                "repsim-similarity",
                "repsim-model",
                "repsim-data",
                "repsim-viz",
                "repsim-train",
            ][..],
        ),
    ]);
    for (krate, ok) in &allowed {
        let manifest = root().join("crates").join(krate).join("Cargo.toml");
        for (name, _) in dependencies(&manifest) {
            if name.starts_with("repsim") {
                assert!(
                    ok.contains(&name.as_str()),
                    "crates/{krate} depends on {name}"
                );
            }
        }
    }
    // The drawings and the results vocabulary compile no burn crate.
    for krate in ["viz", "results"] {
        let manifest = root().join("crates").join(krate).join("Cargo.toml");
        for (name, _) in dependencies(&manifest) {
            assert!(
                !name.starts_with("burn") && !name.starts_with("cubecl"),
                "crates/{krate} depends on {name}"
            );
        }
    }
    // The command line's crates are optional in the root crate, behind the `cli` feature.
    for (name, line) in dependencies(&root().join("Cargo.toml")) {
        if ["clap", "ctrlc", "mimalloc"].contains(&name.as_str()) {
            assert!(line.contains("optional = true"), "{line}");
        }
    }
}

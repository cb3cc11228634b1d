//! Capability: source hygiene the compiler does not check.
//!
//! Method: walk `src/` and `tests/` and fail on any `.rs` file that does not open with a `//!`
//! doc comment saying what lives there (STYLE.md §3), and on any module of `src/` whose code
//! names a module ARCHITECTURE.md's dependency invariants keep it from importing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches"] {
        let dir = root.join(dir);
        if dir.exists() {
            rust_files(&dir, &mut files);
        }
    }
    assert!(files.len() > 5, "found only {} files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` opening doc: {missing:?}"
    );
}

/// The crate's top-level modules each file of `module` (its directory or its file) names in
/// code (`crate::name`, `use crate::{a, b}`), and `axum` when it names `axum::`; comment lines
/// are skipped.
fn crate_modules_named(root: &Path, module: &str) -> BTreeSet<String> {
    let mut files = Vec::new();
    let dir = root.join("src").join(module);
    if dir.is_dir() {
        rust_files(&dir, &mut files);
    }
    let file = root.join("src").join(format!("{module}.rs"));
    if file.exists() {
        files.push(file);
    }
    assert!(!files.is_empty(), "no source for module {module}");
    let mut named = BTreeSet::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            if line.contains("axum::") {
                named.insert("axum".to_owned());
            }
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let names = match rest.strip_prefix('{') {
                    Some(group) => group.split('}').next().unwrap_or_default(),
                    None => rest,
                };
                for name in names.split(',') {
                    let name: String = name
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != module {
                        named.insert(name);
                    }
                }
            }
        }
    }
    named
}

/// ARCHITECTURE.md: dependencies point one way — `api` → `engine` → `config` → {`pipeline`,
/// `realtime`} → {`log`, `cache`, `history`, `transform`} → {`clock`, `shutdown`, `files`,
/// `metrics`}, and the four engines never import one another nor axum.
#[test]
fn modules_import_only_below_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let above_engines = [
        "api", "server", "bench", "loadgen", "cli", "engine", "config", "pipeline", "realtime",
    ];
    let leaves = ["clock", "shutdown", "files", "metrics"];
    let engines = ["log", "cache", "history", "transform"];
    let mut rules: Vec<(&str, Vec<&str>)> = Vec::new();
    for engine in engines {
        let mut forbidden: Vec<&str> = above_engines.to_vec();
        forbidden.extend(engines.iter().filter(|e| **e != engine));
        forbidden.push("axum");
        rules.push((engine, forbidden));
    }
    for wiring in ["pipeline", "realtime"] {
        rules.push((wiring, above_engines[..7].to_vec()));
    }
    rules.push(("config", above_engines[..6].to_vec()));
    rules.push(("engine", above_engines[..5].to_vec()));
    for leaf in leaves {
        let mut forbidden: Vec<&str> = above_engines.to_vec();
        forbidden.extend(engines);
        forbidden.extend(leaves.iter().filter(|l| **l != leaf));
        rules.push((leaf, forbidden));
    }
    let mut broken = Vec::new();
    for (module, forbidden) in rules {
        let named = crate_modules_named(root, module);
        for name in forbidden {
            if named.contains(name) {
                broken.push(format!("{module} names {name}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports against ARCHITECTURE.md: {broken:?}"
    );
}

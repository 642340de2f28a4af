//! The source's layering holds: the parts import only what they may (the
//! admin never the proxy, the proxy never the admin, the domain neither the
//! store nor the web, the store no configuration) and no modules import each
//! other in a cycle. Read from the files themselves, so a new `use` that
//! breaks a rule fails here, with the two modules named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each part may never import. Parts are top-level modules of the crate.
const NEVER: &[(&str, &[&str])] = &[
    ("admin", &["proxy"]),
    ("proxy", &["admin"]),
    ("domain", &["store", "state", "proxy", "admin", "upstream", "runtime", "key_cache", "tokens", "config"]),
    ("store", &["config", "state", "proxy", "admin", "upstream", "runtime"]),
    ("config", &["proxy", "admin", "state", "upstream", "runtime"]),
    ("state", &["proxy", "admin"]),
    ("runtime", &["proxy", "admin"]),
    ("upstream", &["proxy", "admin", "state"]),
    ("key_cache", &["proxy", "admin"]),
    ("tokens", &["proxy", "admin", "store"]),
    ("usage_log", &["proxy", "admin"]),
    ("metrics", &["proxy", "admin", "state", "store", "runtime"]),
    ("telemetry", &["proxy", "admin", "store", "state"]),
    ("alerts", &["proxy", "admin"]),
];

/// `src/a/b.rs` and `src/a/b/mod.rs` are the module `a::b`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts.join("::")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code outside `#[cfg(test)] mod tests`, which may reach anywhere.
fn without_unit_tests(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests").map_or(text, |i| &text[..i])
}

/// Every `crate::a::b::…` path a file names, also inside `use crate::{a, b::c}`.
fn crate_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find("};").unwrap_or(group.len());
            for item in split_top_level(&group[..end]) {
                let item: String = item.chars().filter(|c| !c.is_whitespace()).collect();
                paths.push(item.split("::{").next().unwrap_or_default().to_owned());
            }
        } else {
            let end =
                rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
            paths.push(rest[..end].trim_end_matches(':').to_owned());
        }
    }
    paths
}

/// `a, b::{c, d}` → `a`, `b::{c, d}`: commas inside braces stay.
fn split_top_level(list: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&list[start..]);
    items
}

/// Every `super::a::…` path a file names (its siblings' items).
fn super_paths(text: &str) -> Vec<String> {
    text.match_indices("super::")
        .map(|(i, _)| {
            let rest = &text[i + "super::".len()..];
            let end =
                rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
            rest[..end].trim_end_matches(':').to_owned()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// The longest known module a path starts with.
fn resolve(modules: &BTreeSet<String>, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split("::").collect();
    (1..=segments.len()).rev().map(|n| segments[..n].join("::")).find(|m| modules.contains(m))
}

fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let modules: BTreeSet<String> = all.iter().map(|f| module_of(&src, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &all {
        let module = module_of(&src, file);
        let text = std::fs::read_to_string(file).unwrap();
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        let code = without_unit_tests(&text);
        let sibling_paths = super_paths(code).into_iter().map(|p| format!("{parent}::{p}"));
        let targets: BTreeSet<String> = crate_paths(code)
            .into_iter()
            .chain(sibling_paths)
            .collect::<Vec<_>>()
            .iter()
            .filter_map(|p| resolve(&modules, p))
            .filter(|t| *t != module && !module.starts_with(&format!("{t}::")))
            .collect();
        graph.insert(module, targets);
    }
    graph
}

fn part(module: &str) -> &str {
    module.split("::").next().unwrap_or_default()
}

#[test]
fn each_part_imports_only_what_it_may() {
    let mut broken = Vec::new();
    for (from, targets) in import_graph() {
        let Some((_, never)) = NEVER.iter().find(|(p, _)| *p == part(&from)) else { continue };
        for to in targets.iter().filter(|t| never.contains(&part(t))) {
            broken.push(format!("{from} imports {to}"));
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn no_modules_import_each_other_in_a_cycle() {
    let graph = import_graph();
    // Depth-first search; a module met again while still on the path closes a cycle.
    fn visit<'a>(
        m: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|p| *p == m) {
            cycles.push(format!("{} -> {m}", path[at..].join(" -> ")));
            return;
        }
        if !done.insert(m) {
            return;
        }
        path.push(m);
        for next in graph.get(m).into_iter().flatten() {
            visit(next, graph, path, done, cycles);
        }
        path.pop();
    }
    let (mut done, mut cycles) = (BTreeSet::new(), Vec::new());
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_reader_finds_grouped_and_nested_imports() {
    let text = "use crate::{a::b, c::{d, e}};\nlet x = crate::f::g(1);";
    assert_eq!(crate_paths(text), ["a::b", "c", "f::g"]);
}

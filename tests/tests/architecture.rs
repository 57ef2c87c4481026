//! The code's own map (issue 32): inside each filter crate and the
//! command, module dependencies flow one way. A module's dependencies are
//! the `crate::<module>` paths in its code (comments and test modules
//! aside); `lib.rs` and `main.rs`, the roots that wire everything, are not
//! nodes. A cycle fails with the modules on it.

use integration_tests::{files_under, repo_root};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The top-level modules of the crate under `src` and what each uses.
fn graph(src: &Path) -> Graph {
    let mut g = Graph::new();
    for file in files_under(src, "rs") {
        let rel = file.strip_prefix(src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a name")
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let uses = g.entry(top.clone()).or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if !name.is_empty() && name != top {
                    uses.insert(name);
                }
            }
        }
    }
    g
}

/// A dependency cycle, if there is one.
fn cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        node: &str,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut found = stack[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in g
            .get(node)
            .into_iter()
            .flatten()
            .filter(|n| g.contains_key(*n))
        {
            if let Some(found) = visit(g, next, stack, done) {
                return Some(found);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(g, n, &mut Vec::new(), &mut done))
}

#[test]
fn module_dependencies_flow_one_way_in_every_crate() {
    let root = repo_root();
    let mut crates: Vec<_> = std::fs::read_dir(root.join("filters"))
        .expect("filters")
        .flatten()
        .map(|e| e.path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    crates.push(root.join("tools/envoy-faas/src"));
    assert!(crates.len() >= 6, "{crates:?}");
    let mut modules = 0;
    for src in crates {
        let g = graph(&src);
        modules += g.len();
        if let Some(found) = cycle(&g) {
            panic!(
                "{}: a dependency cycle: {}",
                src.display(),
                found.join(" -> ")
            );
        }
    }
    assert!(modules > 40, "the crates' modules were found: {modules}");
}

#[test]
fn the_checker_finds_a_cycle_when_there_is_one() {
    let mut g = Graph::new();
    for (from, to) in [
        ("config", "observe"),
        ("observe", "host"),
        ("host", "request"),
        ("request", "config"),
    ] {
        g.entry(from.into()).or_default().insert(to.into());
    }
    g.entry("fields".into()).or_default();
    assert_eq!(
        cycle(&g).map(|c| c.join(" -> ")).as_deref(),
        Some("config -> observe -> host -> request -> config")
    );
    g.get_mut("request").expect("request").remove("config");
    assert_eq!(cycle(&g), None);
}

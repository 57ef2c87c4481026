//! The docs cannot drift from the code (issue 32, first part): every
//! config field the filters read is documented, every error code of the
//! registry has its troubleshooting row (with the registry's statuses and
//! faults), and every link to a heading of the README resolves. The book
//! to come will take these checks over.

use faas_core::outcome::Failure;
use integration_tests::repo_root;
use std::collections::{BTreeMap, BTreeSet};

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).expect("README.md")
}

/// The field names the filters' config compilers read (non-test code):
/// `fields.string("name")` and the other `Fields` readers, and the
/// `choice(fields, "name", …)` helper.
fn fields_read() -> BTreeSet<String> {
    let mut files = Vec::new();
    let mut dirs = vec![repo_root().join("filters")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let readers = [
        ".string(\"",
        ".required_string(\"",
        ".non_empty_string(\"",
        ".header_value(\"",
        ".bool(\"",
        ".integer(\"",
        ".object(\"",
        ".take(\"",
        ".has(\"",
        "choice(fields, \"",
        "cluster(\"",
    ];
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let code: String = code.split_whitespace().collect::<Vec<_>>().join(" ");
        let code = code.replace("( \"", "(\"");
        for reader in readers {
            for (at, _) in code.match_indices(reader) {
                let name: String = code[at + reader.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        }
    }
    names
}

/// Every word inside a backtick span of `text` (a dotted path counts for
/// each of its parts).
fn backticked_words(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|span| {
            span.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_config_field_the_filters_read_is_documented() {
    let read = fields_read();
    assert!(read.len() > 60, "the readers were found: {read:?}");
    assert!(read.contains("function_uri") && read.contains("credentials_file_refresh_seconds"));
    let documented = backticked_words(&readme());
    let missing: Vec<&String> = read.iter().filter(|n| !documented.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "fields read by the filters but not documented: {missing:?}"
    );
}

/// The troubleshooting table's rows: code → (status cell, fault cell).
fn troubleshooting_rows(readme: &str) -> BTreeMap<String, (String, String)> {
    let section = readme
        .split("## Troubleshooting by error code")
        .nth(1)
        .expect("the troubleshooting section")
        .split("\n## ")
        .next()
        .unwrap_or("");
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            (code != "error").then(|| {
                (
                    code.to_string(),
                    (cells[2].to_string(), cells[3].to_string()),
                )
            })
        })
        .collect()
}

#[test]
fn every_error_code_has_its_troubleshooting_row_with_the_registrys_status_and_fault() {
    let rows = troubleshooting_rows(&readme());
    let mut expected: BTreeMap<&str, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for f in Failure::ALL {
        let entry = expected.entry(f.code()).or_default();
        entry.0.insert(f.status().to_string());
        entry.1.insert(f.fault().label().to_string());
    }
    let codes: BTreeSet<&str> = rows.keys().map(String::as_str).collect();
    assert_eq!(
        codes,
        expected.keys().copied().collect(),
        "one row per code, no stale rows"
    );
    for (code, (statuses, faults)) in expected {
        let (status_cell, fault_cell) = &rows[code];
        let cell =
            |text: &str| -> BTreeSet<String> { text.split(", ").map(str::to_string).collect() };
        assert_eq!(cell(status_cell), statuses, "{code}: statuses");
        assert_eq!(cell(fault_cell), faults, "{code}: faults");
    }
}

/// GitHub's anchor for a heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_link_to_a_readme_heading_resolves() {
    let text = readme();
    let mut anchors = BTreeSet::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with('#') {
            anchors.insert(slug(line.trim_start_matches('#')));
        }
        // Explicit anchors: `<a id="name"></a>`.
        for (at, _) in line.match_indices("<a id=\"") {
            if let Some(id) = line[at + 7..].split('"').next() {
                anchors.insert(id.to_string());
            }
        }
    }
    let links: Vec<&str> = text
        .match_indices("](#")
        .filter_map(|(at, _)| text[at + 3..].split(')').next())
        .collect();
    assert!(links.len() > 10, "{links:?}");
    let broken: Vec<&&str> = links.iter().filter(|l| !anchors.contains(**l)).collect();
    assert!(broken.is_empty(), "links to no heading: {broken:?}");
    assert_eq!(
        slug(" Moving from Envoy's `aws_lambda` or from an ALB"),
        "moving-from-envoys-aws_lambda-or-from-an-alb"
    );
}

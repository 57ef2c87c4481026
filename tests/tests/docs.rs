//! The docs cannot drift from the code (issue 32). The book (`docs/src`,
//! built by `make docs` into `dist/docs`) and the README are held to:
//! - every config field a filter's compiler reads has a row in that
//!   filter's field tables, and every row names a field its compiler knows
//!   (asked of the compiler itself, the one `envoy-faas check` links);
//! - every error code of the registry has its troubleshooting row, with
//!   the registry's statuses and faults;
//! - every link and anchor resolves, in the built pages and in the
//!   Markdown a reader opens on GitHub;
//! - every plugin config shown passes `envoy-faas check`, and every whole
//!   bootstrap `envoy --mode validate`;
//! - the architecture chapter names every module there is.

use envoy_faas::filters::{compile, Filter, VM_ENVIRONMENT};
use faas_core::outcome::Failure;
use faas_core::ConfigError;
use integration_tests::{envoy_faas_bin, envoy_validate, files_under, repo_root, verdict_of};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A Markdown page: its path (relative to the repository) and its text,
/// with mdBook's `{{#include}}` resolved as the book renders it.
struct Page {
    path: PathBuf,
    text: String,
}

fn book_pages() -> Vec<Page> {
    let root = repo_root();
    let pages: Vec<Page> = files_under(&root.join("docs/src"), "md")
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).expect("read");
            let text = resolve_includes(&file, &text);
            Page {
                path: file.strip_prefix(&root).expect("in repo").to_path_buf(),
                text,
            }
        })
        .collect();
    assert!(pages.len() > 20, "the book's pages were found");
    pages
}

fn resolve_includes(file: &Path, text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        match line
            .trim()
            .strip_prefix("{{#include ")
            .and_then(|l| l.strip_suffix("}}"))
        {
            Some(target) => {
                let path = file.parent().expect("dir").join(target.trim());
                out.push_str(&std::fs::read_to_string(&path).expect("included file"));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn readme() -> Page {
    Page {
        path: PathBuf::from("README.md"),
        text: std::fs::read_to_string(repo_root().join("README.md")).expect("README.md"),
    }
}

fn page<'a>(pages: &'a [Page], path: &str) -> &'a Page {
    pages
        .iter()
        .find(|p| p.path == Path::new(path))
        .unwrap_or_else(|| panic!("{path} is a page of the book"))
}

/// The lines of `text` outside fenced code blocks, with their numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut in_code = false;
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            lines.push((n + 1, line));
        }
    }
    lines
}

/// The `<!-- name: value -->` comment on the last non-empty line before
/// line `at` (0-based index into `lines`).
fn marker_before(lines: &[&str], at: usize, name: &str) -> Option<String> {
    let previous = lines[..at].iter().rev().find(|l| !l.trim().is_empty())?;
    let inner = previous
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    let value = inner.strip_prefix(name)?;
    Some(value.trim_start_matches(':').trim().to_string())
}

// ---------------------------------------------------------------------------
// Field tables

/// A table whose first header cell is `field`, and the filter its
/// `<!-- fields: NAME -->` marker names (`common`: every filter).
struct FieldTable {
    page: PathBuf,
    line: usize,
    filter: Option<String>,
    /// The documented paths, row by row: dotted (`authorization.iam.accesskey`).
    paths: Vec<String>,
    /// Every word of the first column.
    words: BTreeSet<String>,
    /// Each row's paths and its other cells.
    rows: Vec<(Vec<String>, Vec<String>)>,
}

fn cells(line: &str) -> Vec<String> {
    line.trim()
        .trim_start_matches('|')
        .trim_end_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

/// The backticked names of a first cell, expanded to paths: `….x` continues
/// the row before's first path, and a bare name after a dotted one in the
/// same cell is its sibling (`a.b`, `c` means `a.b` and `a.c`).
fn cell_paths(cell: &str, previous: Option<&str>) -> Vec<String> {
    let names: Vec<&str> = cell.split('`').skip(1).step_by(2).collect();
    let mut paths: Vec<String> = Vec::new();
    for name in names {
        let path = if let Some(rest) = name.strip_prefix("….") {
            format!("{}.{rest}", previous.unwrap_or(""))
        } else if !name.contains('.') {
            match paths.first().and_then(|p| p.rsplit_once('.')) {
                Some((parent, _)) => format!("{parent}.{name}"),
                None => name.to_string(),
            }
        } else {
            name.to_string()
        };
        paths.push(path);
    }
    paths
}

fn field_tables(pages: &[Page]) -> Vec<FieldTable> {
    let mut tables = Vec::new();
    for page in pages {
        let lines: Vec<&str> = page.text.lines().collect();
        let mut n = 0;
        while n < lines.len() {
            let header = cells(lines[n]);
            if lines[n].starts_with('|') && header.first().is_some_and(|c| c == "field") {
                let mut table = FieldTable {
                    page: page.path.clone(),
                    line: n + 1,
                    filter: marker_before(&lines, n, "fields"),
                    paths: Vec::new(),
                    words: BTreeSet::new(),
                    rows: Vec::new(),
                };
                let mut previous: Option<String> = None;
                n += 2;
                while n < lines.len() && lines[n].starts_with('|') {
                    let row = cells(lines[n]);
                    let first = row.first().cloned().unwrap_or_default();
                    let paths = cell_paths(&first, previous.as_deref());
                    table
                        .rows
                        .push((paths.clone(), row.get(1..).unwrap_or_default().to_vec()));
                    for path in &paths {
                        table
                            .words
                            .extend(path.split('.').map(str::to_string).collect::<Vec<_>>());
                    }
                    // `….x` rows continue the last row that was not one.
                    if !first.contains("`….") {
                        previous = paths.first().cloned();
                    }
                    table.paths.extend(paths);
                    n += 1;
                }
                tables.push(table);
            }
            n += 1;
        }
    }
    tables
}

fn filter_named(name: &str) -> Filter {
    Filter::parse(name).unwrap_or_else(|| panic!("a field table names filter {name:?}"))
}

/// The tables that document `filter`: its own and the common ones.
fn tables_of(tables: &[FieldTable], filter: Filter) -> Vec<&FieldTable> {
    tables
        .iter()
        .filter(|t| match t.filter.as_deref() {
            Some("common") => true,
            Some(name) => filter_named(name) == filter,
            None => false,
        })
        .collect()
}

#[test]
fn every_field_table_says_which_filter_it_documents() {
    let tables = field_tables(&book_pages());
    assert!(tables.len() >= 10, "the field tables were found");
    for t in &tables {
        let filter = t.filter.as_deref().unwrap_or_else(|| {
            panic!(
                "{}:{}: a field table needs <!-- fields: FILTER --> (or common) before it",
                t.page.display(),
                t.line
            )
        });
        if filter != "common" {
            filter_named(filter);
        }
        assert!(!t.paths.is_empty(), "{}:{}", t.page.display(), t.line);
    }
}

/// The field names a crate's config compilers read (non-test code):
/// `fields.string("name")` and the other `Fields` readers, and the
/// `choice(fields, "name", …)` and `cluster("name")` helpers.
fn fields_read(crate_dir: &str) -> BTreeSet<String> {
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
        "read_function_uri(fields, \"",
    ];
    let mut names = BTreeSet::new();
    for file in files_under(&repo_root().join("filters").join(crate_dir), "rs") {
        let text = std::fs::read_to_string(&file).expect("read");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let code: String = code.split_whitespace().collect::<Vec<_>>().join(" ");
        let code = code.replace("( ", "(");
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

fn crate_dir(filter: Filter) -> &'static str {
    match filter {
        Filter::AwsLambda => "aws-lambda",
        Filter::AzureFunctions => "azure-functions",
        Filter::GcpFunctions => "gcp-functions",
        Filter::OpenFunction => "openfunction",
    }
}

#[test]
fn every_config_field_a_filter_reads_has_a_row_in_its_field_tables() {
    let tables = field_tables(&book_pages());
    let core = fields_read("core");
    assert!(core.contains("timeout") && core.contains("forwarding"));
    let mut missing = Vec::new();
    for filter in Filter::ALL {
        let documented: BTreeSet<&String> = tables_of(&tables, filter)
            .into_iter()
            .flat_map(|t| t.words.iter())
            .collect();
        let read: BTreeSet<String> = core
            .union(&fields_read(crate_dir(filter)))
            .cloned()
            .collect();
        for name in read.iter().filter(|n| !documented.contains(n)) {
            missing.push(format!("{filter}: {name}"));
        }
    }
    assert!(
        fields_read("aws-lambda").contains("credentials_file_refresh_seconds"),
        "the readers were found"
    );
    assert!(
        missing.is_empty(),
        "fields the compilers read with no row in the filter's field tables: {missing:?}"
    );
}

/// Plugin configs the compilers accept, one per form, that a documented
/// field is added to.
fn base_configs(filter: Filter) -> Vec<Value> {
    match filter {
        Filter::OpenFunction => vec![json!({"function_uri": "http://fn.local/f"})],
        Filter::AwsLambda => vec![
            json!({"function_uri": "https://abc.lambda-url.eu-west-1.on.aws/"}),
            json!({"function_uri": "https://abc.lambda-url.eu-west-1.on.aws/",
                   "authorization": {"iam": {"accesskey": "AKIDEXAMPLE", "secretkey": "s"}}}),
            json!({"function_name": "f", "aws_key": "AKIDEXAMPLE", "aws_secret": "s"}),
        ],
        Filter::AzureFunctions => vec![
            json!({"function_uri": "https://app.azurewebsites.net/api/f"}),
            json!({"appname": "app", "functionname": "f"}),
            json!({"function_uri": "https://app.azurewebsites.net/api/f",
                   "authorization": {"managed_identity": {"resource": "api://app"}}}),
            json!({"appname": "app", "functionname": "f",
                   "managed_identity": {"resource": "api://app"}}),
        ],
        Filter::GcpFunctions => {
            let account = |source: Value| {
                json!({"function_uri": "https://svc-abc-ew.a.run.app",
                       "authorization": {"id_token": {}},
                       "external_account": {
                           "type": "external_account",
                           "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
                           "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                           "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/gw@p.iam.gserviceaccount.com:generateAccessToken",
                           "credential_source": source}})
            };
            vec![
                json!({"function_uri": "https://svc-abc-ew.a.run.app"}),
                json!({"function_uri": "https://svc-abc-ew.a.run.app",
                       "authorization": {"id_token": {}}}),
                account(json!({"file": "/var/run/secrets/token"})),
                account(
                    json!({"url": "http://169.254.169.254/metadata/identity/oauth2/token",
                               "format": {"type": "json", "subject_token_field_name": "access_token"}}),
                ),
                account(json!({"environment_id": "aws1",
                               "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
                               "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
                               "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"})),
            ]
        }
    }
}

/// `config` with `path` (dotted) set to `value`.
fn with_path(mut config: Value, path: &str, value: Value) -> Value {
    let mut at = &mut config;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let map = at.as_object_mut().expect("an object on the path");
        if i + 1 == parts.len() {
            map.insert(part.to_string(), value);
            break;
        }
        let next = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        at = next;
    }
    config
}

/// What `filter`'s compiler says of `path` when it holds a value of no
/// field's type: known (an error about it, other than "unknown field"),
/// unknown, or nothing about it (another error came first).
#[derive(Debug, PartialEq)]
enum Verdict {
    Known,
    Unknown,
    NotReached,
}

/// `filter`'s compiler on `base` with `path` set to `value`: `None` when it
/// accepts the config, else `Some` of the errors that name `path` (empty
/// when only other fields failed).
fn compile_with(
    filter: Filter,
    base: &Value,
    path: &str,
    value: Value,
) -> Option<Vec<ConfigError>> {
    let config = with_path(base.clone(), path, value);
    compile(filter, &serde_json::to_vec(&config).expect("json"))
        .err()
        .map(|errors| errors.into_iter().filter(|e| e.field == path).collect())
}

fn verdict(filter: Filter, base: &Value, path: &str) -> Verdict {
    match compile_with(filter, base, path, json!([[]])) {
        None => Verdict::Known,
        Some(about) if about.iter().any(|e| e.message == "unknown field") => Verdict::Unknown,
        Some(about) if about.is_empty() => Verdict::NotReached,
        Some(_) => Verdict::Known,
    }
}

#[test]
fn every_documented_field_is_known_to_its_filters_compiler() {
    let tables = field_tables(&book_pages());
    let mut wrong = Vec::new();
    let mut asked = 0;
    for filter in Filter::ALL {
        for base in base_configs(filter) {
            let bytes = serde_json::to_vec(&base).expect("json");
            assert!(compile(filter, &bytes).is_ok(), "{filter}: base {base}");
        }
        for table in tables_of(&tables, filter) {
            for path in &table.paths {
                asked += 1;
                let verdicts: Vec<Verdict> = base_configs(filter)
                    .iter()
                    .map(|base| verdict(filter, base, path))
                    .collect();
                if !verdicts.contains(&Verdict::Known) {
                    wrong.push(format!(
                        "{}:{}: {filter}: `{path}`: {verdicts:?}",
                        table.page.display(),
                        table.line
                    ));
                }
            }
        }
    }
    assert!(asked > 100, "{asked} fields asked");
    assert!(
        wrong.is_empty(),
        "documented fields the compiler does not know (Unknown), or that no base config reaches: {wrong:#?}"
    );
}

/// A documented integer range in a row's cells: `100 – 900000`, or
/// `≥ 1000` (no upper bound).
fn documented_range(cells: &[String]) -> Option<(u64, Option<u64>)> {
    let number = |text: &str| -> Option<u64> {
        let digits: String = text.chars().filter(|c| *c != ',').collect();
        digits.trim().parse().ok()
    };
    for cell in cells {
        for part in cell.split(", ") {
            if let Some((low, high)) = part.split_once(" – ") {
                if let (Some(low), Some(high)) = (number(low), number(high)) {
                    return Some((low, Some(high)));
                }
            }
            if let Some(low) = part.trim().strip_prefix("≥ ").and_then(number) {
                return Some((low, None));
            }
        }
    }
    None
}

/// Whether `filter`'s compiler accepts `path` = `value` on `base`: `Err`
/// with its message when an error names the field.
fn accepts(filter: Filter, base: &Value, path: &str, value: u64) -> Result<(), String> {
    match compile_with(filter, base, path, json!(value)) {
        None => Ok(()),
        Some(about) => match about.first() {
            Some(e) => Err(e.message.clone()),
            None => panic!("{filter}: {path} = {value}: another field failed"),
        },
    }
}

/// Every documented range is the compiler's: its bounds are accepted and
/// one past each is refused, naming the field.
#[test]
fn every_documented_range_is_the_compilers() {
    let tables = field_tables(&book_pages());
    let mut checked = 0;
    let mut wrong = Vec::new();
    for filter in Filter::ALL {
        let base = &base_configs(filter)[0];
        for table in tables_of(&tables, filter) {
            for (paths, cells) in &table.rows {
                let Some((low, high)) = documented_range(cells) else {
                    continue;
                };
                for path in paths {
                    checked += 1;
                    let mut expect = vec![(low, true)];
                    if low > 0 {
                        expect.push((low - 1, false));
                    }
                    if let Some(high) = high {
                        expect.extend([(high, true), (high + 1, false)]);
                    }
                    for (value, accepted) in expect {
                        if accepts(filter, base, path, value).is_ok() != accepted {
                            wrong.push(format!(
                                "{}:{}: {filter}: `{path}` = {value} should be {}",
                                table.page.display(),
                                table.line,
                                if accepted { "accepted" } else { "refused" }
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 5 * Filter::ALL.len(), "{checked} ranges checked");
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The common fields' documented defaults are what the compiler fills in
/// for a config that leaves them out, in every filter.
#[test]
fn the_common_fields_documented_defaults_are_the_compilers() {
    let tables = field_tables(&book_pages());
    let common: BTreeMap<&str, &Vec<String>> = tables
        .iter()
        .filter(|t| t.filter.as_deref() == Some("common"))
        .flat_map(|t| t.rows.iter())
        .filter_map(|(paths, cells)| Some((paths.first()?.as_str(), cells)))
        .collect();
    // The default is the second column's first word (`3000`, `true`, …).
    let documented = |field: &str| -> String {
        let cells = common
            .get(field)
            .unwrap_or_else(|| panic!("{field} has a common row"));
        cells[1].split_whitespace().next().unwrap_or("").to_string()
    };
    for filter in Filter::ALL {
        let base = serde_json::to_vec(&base_configs(filter)[0]).expect("json");
        let compiled = compile(filter, &base).expect("base compiles");
        let route = &compiled.routes[0];
        let hints = &route.cluster_hints;
        let actual = [
            ("timeout", route.timeout.as_millis().to_string()),
            ("max_req_body_size", route.max_req_body_size.to_string()),
            ("max_resp_body_size", route.max_resp_body_size.to_string()),
            ("ssl_verify", hints.ssl_verify.to_string()),
            ("keepalive", hints.keepalive.to_string()),
            ("keepalive_timeout", hints.keepalive_timeout_ms.to_string()),
            ("keepalive_pool", hints.keepalive_pool.to_string()),
        ];
        for (field, value) in actual {
            assert_eq!(documented(field), value, "{filter}: the default of {field}");
        }
    }
}

#[test]
fn the_compiler_probe_tells_an_unknown_field_from_a_known_one() {
    let base = json!({"function_uri": "http://fn.local/f"});
    for (path, expected) in [
        ("timeout", Verdict::Known),
        ("authorization.service_token", Verdict::Known),
        ("time_out", Verdict::Unknown),
        ("authorization.apikey", Verdict::Unknown),
    ] {
        assert_eq!(
            verdict(Filter::OpenFunction, &base, path),
            expected,
            "{path}"
        );
    }
    assert_eq!(
        cell_paths(
            "`authorization.iam.aws_assume_role_arn`, `aws_role_session_name`",
            None
        ),
        [
            "authorization.iam.aws_assume_role_arn",
            "authorization.iam.aws_role_session_name"
        ]
    );
    assert_eq!(
        cell_paths("`….resource`", Some("authorization.managed_identity")),
        ["authorization.managed_identity.resource"]
    );
}

// ---------------------------------------------------------------------------
// Error codes

/// The troubleshooting table's rows: code → (status cell, fault cell).
fn troubleshooting_rows(text: &str) -> BTreeMap<String, (String, String)> {
    text.lines()
        .filter_map(|line| {
            let cells = cells(line);
            let code = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            (code != "error").then(|| {
                (
                    code.to_string(),
                    (cells[1].to_string(), cells[2].to_string()),
                )
            })
        })
        .collect()
}

#[test]
fn every_error_code_has_its_troubleshooting_row_with_the_registrys_status_and_fault() {
    let pages = book_pages();
    let rows = troubleshooting_rows(&page(&pages, "docs/src/operating/troubleshooting.md").text);
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

// ---------------------------------------------------------------------------
// Links and anchors

/// mdBook's (and GitHub's) anchor for a heading.
fn slug(heading: &str) -> String {
    let text: String = heading
        .trim()
        .split('<')
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part
            } else {
                part.split_once('>').map(|(_, t)| t).unwrap_or("")
            }
        })
        .collect();
    text.to_lowercase()
        .chars()
        .filter_map(|c| match c {
            c if c.is_whitespace() => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown text: its headings' and `<a id>`s.
fn markdown_anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        if line.starts_with('#') {
            anchors.insert(slug(line.trim_start_matches('#')));
        }
        for (at, _) in line.match_indices("<a id=\"") {
            if let Some(id) = line[at + 7..].split('"').next() {
                anchors.insert(id.to_string());
            }
        }
    }
    anchors
}

/// The targets of Markdown links `[text](target)` outside code.
fn markdown_links(text: &str) -> Vec<(usize, String)> {
    let mut links = Vec::new();
    for (n, line) in prose_lines(text) {
        let line: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
        for (at, _) in line.match_indices("](") {
            if let Some(target) = line[at + 2..].split(')').next() {
                links.push((n, target.to_string()));
            }
        }
    }
    links
}

fn is_external(target: &str) -> bool {
    target.starts_with("http://") || target.starts_with("https://") || target.starts_with("mailto:")
}

/// The anchors of the files links point to, each file read once.
struct AnchorIndex {
    anchors_of: fn(&Path) -> BTreeSet<String>,
    /// `None` for a path that does not exist.
    seen: BTreeMap<PathBuf, Option<BTreeSet<String>>>,
}

impl AnchorIndex {
    fn new(anchors_of: fn(&Path) -> BTreeSet<String>) -> Self {
        AnchorIndex {
            anchors_of,
            seen: BTreeMap::new(),
        }
    }

    /// Whether `path` exists and, for a non-empty `anchor`, has it.
    fn resolves(&mut self, path: &Path, anchor: &str) -> bool {
        let anchors_of = self.anchors_of;
        let anchors = self
            .seen
            .entry(path.to_path_buf())
            .or_insert_with(|| path.exists().then(|| anchors_of(path)));
        anchors
            .as_ref()
            .is_some_and(|a| anchor.is_empty() || a.contains(anchor))
    }
}

/// Every relative link of the README and of the Markdown a reader opens on
/// GitHub (the book's sources, ARCHITECTURE.md, BENCHMARKS.md) names a file
/// that exists and, for a Markdown file, a heading it has.
#[test]
fn every_link_in_the_readme_and_the_books_sources_resolves() {
    let root = repo_root();
    let mut sources: Vec<Page> = files_under(&root.join("docs/src"), "md")
        .into_iter()
        .map(|file| Page {
            text: std::fs::read_to_string(&file).expect("read"),
            path: file.strip_prefix(&root).expect("in repo").to_path_buf(),
        })
        .collect();
    sources.push(readme());
    for extra in ["ARCHITECTURE.md", "BENCHMARKS.md"] {
        sources.push(Page {
            path: PathBuf::from(extra),
            text: std::fs::read_to_string(root.join(extra)).expect("read"),
        });
    }
    let mut index = AnchorIndex::new(|path| {
        markdown_anchors(&resolve_includes(
            path,
            &std::fs::read_to_string(path).unwrap_or_default(),
        ))
    });
    let mut broken = Vec::new();
    let mut checked = 0;
    for source in &sources {
        for (line, target) in markdown_links(&source.text) {
            if is_external(&target) {
                continue;
            }
            checked += 1;
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let path = if file.is_empty() {
                root.join(&source.path)
            } else {
                root.join(source.path.parent().unwrap_or(Path::new("")))
                    .join(file)
            };
            if !index.resolves(&path, anchor) {
                broken.push(format!("{}:{line}: {target}", source.path.display()));
            }
        }
    }
    assert!(checked > 150, "{checked} links checked");
    assert!(broken.is_empty(), "links to nothing: {broken:#?}");
}

/// The built book (`make docs`): every relative `href` and `src` names a
/// file that exists and an `id` in it.
#[test]
fn every_link_and_anchor_in_the_built_book_resolves() {
    let book = repo_root().join("dist/docs");
    assert!(
        book.join("index.html").exists(),
        "{} is missing: run `make docs` first",
        book.display()
    );
    let pages = files_under(&book, "html");
    let mut index = AnchorIndex::new(|path| {
        let html = std::fs::read_to_string(path).unwrap_or_default();
        html.match_indices(" id=\"")
            .filter_map(|(at, _)| html[at + 5..].split('"').next().map(str::to_string))
            .collect()
    });
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &pages {
        let html = std::fs::read_to_string(file).expect("read");
        for attribute in [" href=\"", " src=\""] {
            for (at, _) in html.match_indices(attribute) {
                let target = html[at + attribute.len()..].split('"').next().unwrap_or("");
                if is_external(target) || target.starts_with("javascript:") || target.is_empty() {
                    continue;
                }
                checked += 1;
                let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
                let path = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().expect("dir").join(path)
                };
                if !index.resolves(&path, anchor) {
                    broken.push(format!(
                        "{}: {target}",
                        file.strip_prefix(&book).expect("in book").display()
                    ));
                }
            }
        }
    }
    assert!(checked > 1000, "{checked} links checked");
    broken.sort();
    broken.dedup();
    assert!(broken.is_empty(), "links to nothing: {broken:#?}");
}

#[test]
fn anchors_are_computed_as_mdbook_and_github_compute_them() {
    assert_eq!(
        slug(" Moving from Envoy's `aws_lambda` or from an ALB"),
        "moving-from-envoys-aws_lambda-or-from-an-alb"
    );
    assert_eq!(
        slug("Checking a config offline: `envoy-faas check`"),
        "checking-a-config-offline-envoy-faas-check"
    );
}

// ---------------------------------------------------------------------------
// Snippets

struct Snippet {
    page: PathBuf,
    line: usize,
    info: String,
    body: String,
    check: Option<String>,
    exempt: bool,
}

fn snippets(page: &Page) -> Vec<Snippet> {
    let lines: Vec<&str> = page.text.lines().collect();
    let mut found = Vec::new();
    let mut n = 0;
    while n < lines.len() {
        let line = lines[n].trim_start();
        if let Some(info) = line.strip_prefix("```") {
            let start = n;
            let mut body = String::new();
            n += 1;
            while n < lines.len() && !lines[n].trim_start().starts_with("```") {
                body.push_str(lines[n]);
                body.push('\n');
                n += 1;
            }
            found.push(Snippet {
                page: page.path.clone(),
                line: start + 1,
                info: info.trim().to_string(),
                body,
                check: marker_before(&lines, start, "check"),
                exempt: marker_before(&lines, start, "not-a-plugin-config").is_some(),
            });
        }
        n += 1;
    }
    found
}

fn snippet_file(line: usize, what: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "envoy-faas-docs-{}-{line}-{what}.yaml",
        std::process::id()
    ))
}

/// `envoy --mode validate` on a bootstrap whose module paths are relative
/// to the repository, where the book says to run it.
fn validate_bootstrap(body: &str, line: usize) -> Result<String, String> {
    let dist = repo_root().join("dist");
    let body = body.replace("filename: dist/", &format!("filename: {}/", dist.display()));
    let file = snippet_file(line, "bootstrap");
    std::fs::write(&file, body).expect("write");
    let verdict = envoy_validate(&file);
    let _ = std::fs::remove_file(&file);
    verdict
}

/// `envoy-faas import GATEWAY` on a gateway config the book shows, with
/// `--strict` (everything translated), then Envoy's validation of what it
/// wrote.
fn import_and_validate(gateway: &str, snippet: &Snippet) -> Result<String, String> {
    let input = snippet_file(snippet.line, "input");
    let output = snippet_file(snippet.line, "output");
    std::fs::write(&input, &snippet.body).expect("write");
    let imported = Command::new(envoy_faas_bin())
        .arg("import")
        .arg(gateway)
        .arg(&input)
        .arg("--strict")
        .arg("-o")
        .arg(&output)
        .output()
        .expect("envoy-faas");
    let verdict = verdict_of(&imported).and_then(|_| {
        let bootstrap = std::fs::read_to_string(&output).map_err(|e| e.to_string())?;
        validate_bootstrap(&bootstrap, snippet.line)
    });
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    verdict
}

/// `envoy-faas check --filter FILTER -` on `body`, with only the VM
/// variables the marker names (`NAME=value` after the filter).
fn envoy_faas_check(spec: &str, body: &str) -> Result<String, String> {
    let mut words = spec.split_whitespace();
    let filter = words.next().expect("a filter");
    let mut command = Command::new(envoy_faas_bin());
    command
        .args(["check", "--filter", filter, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in VM_ENVIRONMENT {
        command.env_remove(name);
    }
    for pair in words {
        let (name, value) = pair.split_once('=').expect("NAME=value");
        command.env(name, value);
    }
    let mut child = command.spawn().expect("envoy-faas");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write");
    verdict_of(&child.wait_with_output().expect("wait"))
}

#[test]
fn every_config_snippet_passes_envoy_faas_check_and_every_bootstrap_envoys_validation() {
    let mut pages = book_pages();
    pages.push(readme());
    let mut failures = Vec::new();
    let (mut plugin_configs, mut bootstraps, mut imports) = (0, 0, 0);
    for snippet in pages.iter().flat_map(snippets) {
        let at = format!("{}:{}", snippet.page.display(), snippet.line);
        let is_json = snippet.info == "json" || snippet.info == "jsonc";
        let is_bootstrap = snippet.body.contains("static_resources:");
        match snippet.check.as_deref() {
            Some("envoy-bootstrap") => {
                bootstraps += 1;
                if let Err(log) = validate_bootstrap(&snippet.body, snippet.line) {
                    failures.push(format!("{at}: envoy --mode validate: {log}"));
                }
            }
            Some(spec) if spec.starts_with("import ") => {
                imports += 1;
                if let Err(out) = import_and_validate(&spec["import ".len()..], &snippet) {
                    failures.push(format!("{at}: envoy-faas {spec}: {out}"));
                }
            }
            Some(spec) => {
                plugin_configs += 1;
                if let Err(out) = envoy_faas_check(spec, &snippet.body) {
                    failures.push(format!("{at}: envoy-faas check --filter {spec}: {out}"));
                }
            }
            None if is_json && !snippet.exempt => failures.push(format!(
                "{at}: a JSON snippet needs <!-- check: FILTER --> or <!-- not-a-plugin-config -->"
            )),
            None if is_bootstrap => failures.push(format!(
                "{at}: a bootstrap needs <!-- check: envoy-bootstrap -->"
            )),
            None => {}
        }
    }
    assert!(plugin_configs >= 10, "{plugin_configs} plugin configs");
    assert!(bootstraps >= 1, "{bootstraps} bootstraps");
    assert!(imports >= 1, "{imports} imports");
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_refused_snippet_fails_the_check() {
    let refused = envoy_faas_check(
        "openfunction",
        r#"{"function_uri": "http://fn.local/f", "timeout": 50}"#,
    );
    assert!(refused.is_err_and(|out| out.contains("\"timeout\"")));
    let unknown = envoy_faas_check(
        "aws-lambda",
        r#"{"function_uri": "https://a.lambda-url.eu-west-1.on.aws/", "authorization": {"iam": {}}}"#,
    );
    assert!(unknown.is_ok(), "{unknown:?}");
}

// ---------------------------------------------------------------------------
// The architecture chapter

/// The modules of a crate: `mod x;` in its lib.rs, and the files of its
/// module directories.
fn modules(crate_src: &Path) -> BTreeSet<String> {
    let lib = std::fs::read_to_string(crate_src.join("lib.rs")).expect("lib.rs");
    let mut names = BTreeSet::new();
    for line in lib.lines() {
        let line = line.trim();
        if let Some(name) = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "))
            .and_then(|l| l.strip_suffix(';'))
        {
            names.insert(name.to_string());
            let dir = crate_src.join(name);
            if dir.is_dir() {
                for file in files_under(&dir, "rs") {
                    let stem = file
                        .file_stem()
                        .expect("stem")
                        .to_string_lossy()
                        .to_string();
                    if stem != "mod" && stem != "tests" {
                        names.insert(stem);
                    }
                }
            }
        }
    }
    names
}

#[test]
fn the_architecture_chapter_names_every_module_and_no_module_that_is_gone() {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let named: BTreeSet<String> = text
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|span| {
            span.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut missing = Vec::new();
    for krate in [
        "filters/core/src",
        "filters/openfunction/src",
        "filters/aws-lambda/src",
        "filters/azure-functions/src",
        "filters/gcp-functions/src",
        "tools/envoy-faas/src",
    ] {
        for module in modules(&root.join(krate)) {
            if !named.contains(&module) {
                missing.push(format!("{krate}: {module}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "modules ARCHITECTURE.md does not name: {missing:?}"
    );
    // The faas-core table: one row per module, no row for one that is gone.
    let table: BTreeSet<String> = text
        .split("### `faas-core` modules")
        .nth(1)
        .expect("the faas-core module table")
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .filter_map(|l| {
            let first = cells(l).into_iter().next()?;
            Some(first.trim_matches('`').to_string())
        })
        .collect();
    let core: BTreeSet<String> = std::fs::read_to_string(root.join("filters/core/src/lib.rs"))
        .expect("lib.rs")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod ")?.strip_suffix(';'))
        .map(str::to_string)
        .collect();
    assert_eq!(table, core, "the faas-core module table, row for row");
}

// ---------------------------------------------------------------------------
// The README

/// The README stays the front door: short, with the two commands and a way
/// into the book; the rest belongs in a chapter.
#[test]
fn the_readme_stays_a_short_front_door_with_the_two_commands() {
    let text = readme().text;
    let lines = text.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines (at most 250)");
    for needed in ["make run", "make test", "make docs", "docs/src/SUMMARY.md"] {
        assert!(text.contains(needed), "README.md mentions {needed}");
    }
}

/// Every cargo-fuzz target has its row in the contributing chapter's table
/// of what each feeds and checks.
#[test]
fn every_fuzz_target_is_described_in_the_contributing_chapter() {
    let manifest = std::fs::read_to_string(repo_root().join("fuzz/Cargo.toml")).expect("fuzz");
    let targets: Vec<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|bin| bin.split("name = \"").nth(1)?.split('"').next())
        .collect();
    assert!(targets.len() >= 12, "{targets:?}");
    let pages = book_pages();
    let chapter = &page(&pages, "docs/src/contributing.md").text;
    let described: BTreeSet<String> = chapter
        .lines()
        .filter(|l| l.starts_with("| `") && l.matches('|').count() == 4)
        .flat_map(|l| {
            cells(l)[0]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let missing: Vec<&&str> = targets
        .iter()
        .filter(|t| !described.contains(**t))
        .collect();
    assert!(missing.is_empty(), "fuzz targets with no row: {missing:?}");
}

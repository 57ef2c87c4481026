//! Reading Envoy's `/stats/prometheus` (text exposition format 0.0.4) and
//! the shipped observability settings the tests run with.

use crate::gateway::shipped_config;
use serde_json::Value;
use std::collections::BTreeMap;

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape: every sample, and each family's `# TYPE`.
#[derive(Debug, Default)]
pub struct Scrape {
    pub samples: Vec<Sample>,
    pub types: BTreeMap<String, String>,
}

impl Scrape {
    /// Samples of `name` whose labels include every `(label, value)`.
    pub fn find<'a>(&'a self, name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of the one sample of `name` with exactly these labels.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.find(name, labels)
            .into_iter()
            .find(|s| s.labels.len() == labels.len())
            .map(|s| s.value)
    }

    /// The family a sample name belongs to (`_bucket`, `_sum` and `_count`
    /// of a histogram belong to the histogram).
    pub fn family_of<'a>(&self, sample: &'a str) -> &'a str {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = sample.strip_suffix(suffix) {
                if self.types.get(base).map(String::as_str) == Some("histogram") {
                    return base;
                }
            }
        }
        sample
    }
}

/// Parses the text format; a line it cannot read is an error naming it.
pub fn parse(text: &str) -> Result<Scrape, String> {
    let mut scrape = Scrape::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (family, kind) = rest
                .split_once(' ')
                .ok_or_else(|| format!("bad TYPE line: {line}"))?;
            scrape.types.insert(family.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        scrape.samples.push(sample(line)?);
    }
    Ok(scrape)
}

fn sample(line: &str) -> Result<Sample, String> {
    let bad = || format!("bad sample line: {line}");
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return Err(bad()),
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut end = None;
        loop {
            // label name up to '=', or the closing brace
            let mut key = String::new();
            loop {
                match chars.next() {
                    Some((i, '}')) if key.is_empty() => {
                        end = Some(i);
                        break;
                    }
                    Some((_, '=')) => break,
                    Some((_, ',')) if key.is_empty() => {}
                    Some((_, c)) => key.push(c),
                    None => return Err(bad()),
                }
            }
            if end.is_some() {
                break;
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(bad());
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some(c) => value.push(c),
                        None => return Err(bad()),
                    },
                    Some((_, '"')) => break,
                    Some((_, c)) => value.push(c),
                    None => return Err(bad()),
                }
            }
            labels.insert(key, value);
        }
        let end = end.ok_or_else(bad)?;
        body.get(end + 1..).ok_or_else(bad)?
    } else {
        rest
    };
    let value = rest
        .split_whitespace()
        .next()
        .and_then(|v| match v {
            "+Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            "NaN" => Some(f64::NAN),
            v => v.parse().ok(),
        })
        .ok_or_else(bad)?;
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The `stats_config` every shipped config carries (from `envoy/demo.yaml`;
/// `shipped_configs` checks the others match).
pub fn shipped_stats_config() -> Value {
    shipped_config("demo.yaml")["stats_config"].clone()
}

/// The shipped access log (`envoy/demo.yaml`'s gateway), writing to
/// `path` instead of stdout; the format is untouched.
pub fn shipped_access_log_to(path: &std::path::Path) -> Value {
    let mut log = shipped_access_log();
    log["name"] = "envoy.access_loggers.file".into();
    let format = log["typed_config"]["log_format"].clone();
    log["typed_config"] = serde_json::json!({
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": path.display().to_string(),
        "log_format": format,
    });
    log
}

/// The access log entry of `envoy/demo.yaml`'s gateway HCM.
pub fn shipped_access_log() -> Value {
    gateway_hcm(&shipped_config("demo.yaml"))["access_log"][0].clone()
}

/// The HCM of a shipped config's first listener.
pub fn gateway_hcm(config: &Value) -> &Value {
    &config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_types_labels_escapes_and_special_values() {
        let text = "# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"\\\\\\n,}\"} 3\n\
                    # TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum{} 1.5\nplain 7\n";
        let s = parse(text).unwrap();
        assert_eq!(s.samples.len(), 4);
        assert_eq!(s.samples[0].labels["y"], "q\"\\\n,}");
        assert_eq!(
            s.value("a_total", &[("x", "1"), ("y", "q\"\\\n,}")]),
            Some(3.0)
        );
        assert_eq!(s.value("h_sum", &[]), Some(1.5));
        assert_eq!(s.value("plain", &[]), Some(7.0));
        assert_eq!(s.family_of("h_bucket"), "h");
        assert_eq!(s.family_of("a_total"), "a_total");
        assert!(parse("x{a=1} 2").is_err());
        assert!(parse("x{a=\"1\"} nope").is_err());
    }
}

//! What an import did not translate, changed, or wants the reader to know.
//! Items never carry a config value (values may be secrets): only where
//! (route, plugin, field) and why.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Left out of the output: the gateway would have done something the
    /// output does not.
    NotTranslated,
    /// Translated with a difference the reader should know about.
    Changed,
    /// Informational.
    Note,
}

impl Kind {
    fn heading(self) -> &'static str {
        match self {
            Kind::NotTranslated => "Not translated",
            Kind::Changed => "Translated with a difference",
            Kind::Note => "Notes",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: Kind,
    /// Where in the input: `route "name"`, `plugin_metadata`, ...
    pub source: String,
    pub message: String,
}

#[derive(Debug, Default, Clone)]
pub struct Report {
    items: Vec<Item>,
}

impl Report {
    pub fn add(&mut self, kind: Kind, source: impl Into<String>, message: impl Into<String>) {
        let item = Item {
            kind,
            source: source.into(),
            message: message.into(),
        };
        // The same remark about the same place once.
        if !self.items.contains(&item) {
            self.items.push(item);
        }
    }

    pub fn not_translated(&mut self, source: impl Into<String>, message: impl Into<String>) {
        self.add(Kind::NotTranslated, source, message);
    }

    pub fn changed(&mut self, source: impl Into<String>, message: impl Into<String>) {
        self.add(Kind::Changed, source, message);
    }

    pub fn note(&mut self, source: impl Into<String>, message: impl Into<String>) {
        self.add(Kind::Note, source, message);
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// How many items leave something out.
    pub fn untranslated(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.kind == Kind::NotTranslated)
            .count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for kind in [Kind::NotTranslated, Kind::Changed, Kind::Note] {
            let items: Vec<&Item> = self.items.iter().filter(|i| i.kind == kind).collect();
            if items.is_empty() {
                continue;
            }
            writeln!(f, "{}:", kind.heading())?;
            for item in items {
                writeln!(f, "- {}: {}", item.source, item.message)?;
            }
        }
        if self.items.is_empty() {
            writeln!(f, "Everything was translated.")?;
        }
        Ok(())
    }
}

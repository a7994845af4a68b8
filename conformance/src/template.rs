//! Turning the XML of a step into elements for one run against one server.
//!
//! Scenarios are written for the domain `localhost` with accounts such as `romeo@localhost`. At
//! run time every JID-shaped attribute value or text whose domain is the scenario domain is
//! rewritten to the target domain, and the localparts of the scenario's own accounts get the
//! run's unique suffix, so the same file runs against any server and reruns never collide.
//! Then `${...}` placeholders (client JIDs, captures) are filled in. Both happen on the parsed
//! tree, never on the text, so a value can never inject markup.

use std::collections::HashMap;
use std::str::FromStr;

use minidom::Element;

/// Namespace bound to the `scansion:` prefix inside scenario XML (as the scansion tool does).
pub const SCANSION_NS: &str = "https://matthewwild.co.uk/projects/scansion";

/// Errors while instantiating a step's XML.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TemplateError {
    #[error("{0}")]
    Xml(String),
    #[error("unknown placeholder ${{{0}}} (client not connected yet, or capture not made)")]
    UnknownPlaceholder(String),
}

/// Everything needed to instantiate XML for one scenario run.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    /// Domain the scenario is written for (`localhost`).
    pub scenario_domain: String,
    /// Domain of the server under test.
    pub domain: String,
    /// Scenario localpart -> localpart used in this run.
    pub localparts: HashMap<String, String>,
    /// Placeholder values: `Romeo's JID`, `Romeo's full JID`, captures.
    pub vars: HashMap<String, String>,
}

impl Bindings {
    /// Maps a JID written in the scenario to the JID used in this run; other values unchanged.
    pub fn rewrite_jid(&self, value: &str) -> Option<String> {
        if value.is_empty() || value.contains(char::is_whitespace) {
            return None;
        }
        let (bare, resource) = match value.split_once('/') {
            Some((b, r)) => (b, Some(r)),
            None => (value, None),
        };
        let (local, domain) = match bare.split_once('@') {
            Some((l, d)) => (Some(l), d),
            None => (None, bare),
        };
        if !domain.eq_ignore_ascii_case(&self.scenario_domain) {
            return None;
        }
        let mut out = String::new();
        if let Some(l) = local {
            out.push_str(self.localparts.get(l).map(String::as_str).unwrap_or(l));
            out.push('@');
        }
        out.push_str(&self.domain);
        if let Some(r) = resource {
            out.push('/');
            out.push_str(r);
        }
        Some(out)
    }

    /// Replaces every `${name}` in `text`.
    pub fn substitute(&self, text: &str) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return Ok(out);
            };
            let name = &after[..end];
            let value = self.vars.get(name).ok_or_else(|| TemplateError::UnknownPlaceholder(name.to_string()))?;
            out.push_str(value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Rewrites JIDs and fills placeholders in one element tree, in place.
    pub fn apply(&self, el: &mut Element) -> Result<(), TemplateError> {
        for ((ns, _), value) in el.attrs_mut().iter_mut() {
            if ns.as_str() == SCANSION_NS {
                continue;
            }
            if let Some(v) = self.rewrite_jid(value) {
                *value = v;
            }
            *value = self.substitute(value)?;
        }
        for text in el.texts_mut() {
            let trimmed = text.trim();
            if let Some(v) = self.rewrite_jid(trimmed) {
                *text = text.replacen(trimmed, &v, 1);
            }
            *text = self.substitute(text)?;
        }
        for child in el.children_mut() {
            self.apply(child)?;
        }
        Ok(())
    }
}

/// Parses a step's XML block into its top-level elements, without applying bindings.
pub fn parse_block(xml: &str) -> Result<Vec<Element>, TemplateError> {
    let wrapped =
        format!("<scansion-block xmlns='jabber:client' xmlns:scansion='{SCANSION_NS}'>{xml}</scansion-block>");
    let root = Element::from_str(&wrapped).map_err(|e| TemplateError::Xml(e.to_string()))?;
    Ok(root.children().cloned().collect())
}

/// Checks that a step's XML is well-formed and holds at least one element.
pub fn check_well_formed(xml: &str) -> Result<(), TemplateError> {
    if parse_block(xml)?.is_empty() {
        return Err(TemplateError::Xml("no element in the block".into()));
    }
    Ok(())
}

/// Parses a step's XML and applies the run's bindings; one element per stanza in the block.
#[cfg(test)]
pub fn instantiate(xml: &str, bindings: &Bindings) -> Result<Vec<Element>, TemplateError> {
    let mut elements = parse_block(xml)?;
    for el in &mut elements {
        bindings.apply(el)?;
    }
    Ok(elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bindings() -> Bindings {
        let mut b =
            Bindings { scenario_domain: "localhost".into(), domain: "example.org".into(), ..Default::default() };
        b.localparts.insert("romeo".into(), "romeo-x1".into());
        b.vars.insert("Romeo's JID".into(), "romeo-x1@example.org".into());
        b.vars.insert("Romeo's full JID".into(), "romeo-x1@example.org/r".into());
        b
    }

    #[test]
    fn rewrites_domain_and_account_localparts() {
        let b = bindings();
        assert_eq!(b.rewrite_jid("localhost").as_deref(), Some("example.org"));
        assert_eq!(b.rewrite_jid("romeo@localhost/x").as_deref(), Some("romeo-x1@example.org/x"));
        assert_eq!(b.rewrite_jid("nurse@localhost").as_deref(), Some("nurse@example.org"));
        assert_eq!(b.rewrite_jid("romeo@elsewhere"), None);
        assert_eq!(b.rewrite_jid("{scansion:any}"), None);
        assert_eq!(b.rewrite_jid("http://localhost/x"), None);
    }

    #[test]
    fn instantiates_placeholders_in_attributes_and_text() {
        let xml = "\t<message to='${Romeo&apos;s full JID}' from='localhost'>\n\
            \t\t<body>${Romeo's JID}</body><jid> romeo@localhost </jid></message>\n\t<presence/>";
        let els = instantiate(xml, &bindings()).unwrap();
        assert_eq!(els.len(), 2);
        assert_eq!(els[0].attr("to"), Some("romeo-x1@example.org/r"));
        assert_eq!(els[0].attr("from"), Some("example.org"));
        let body = els[0].get_child("body", "jabber:client").unwrap();
        assert_eq!(body.text(), "romeo-x1@example.org");
        let jid = els[0].get_child("jid", "jabber:client").unwrap();
        assert_eq!(jid.text().trim(), "romeo-x1@example.org");
        assert!(els[1].is("presence", "jabber:client"));
    }

    #[test]
    fn unknown_placeholder_is_an_error() {
        let e = instantiate("<presence to='${Juliet&apos;s JID}'/>", &bindings()).unwrap_err();
        assert_eq!(e, TemplateError::UnknownPlaceholder("Juliet's JID".into()));
        assert!(check_well_formed("<iq>").is_err());
        assert!(check_well_formed("<iq scansion:strict='true'/>").is_ok());
    }
}

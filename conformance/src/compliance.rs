//! XEP-0479 (XMPP Compliance Suites 2023): which server requirements a DOAP file claims.
//!
//! Reads the project's `doap.xml` (XEP-0453 format) and, for each category (Core, Web, IM,
//! Mobile, A/V) and level (Server, Advanced Server), lists the requirements with their
//! providers and whether every provider is implemented (status other than "planned").

use std::collections::BTreeMap;
use std::path::Path;

use minidom::Element;

/// Where a requirement applies on the server side.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Required for Server and Advanced Server.
    Both,
    /// Required for Advanced Server only.
    Advanced,
}

struct Requirement {
    category: &'static str,
    feature: &'static str,
    level: Level,
    /// All must be implemented, except that `any_of` requirements need one.
    providers: &'static [&'static str],
    any_of: bool,
}

const fn req(
    category: &'static str,
    feature: &'static str,
    level: Level,
    providers: &'static [&'static str],
) -> Requirement {
    Requirement { category, feature, level, providers, any_of: false }
}

/// The server columns of XEP-0479 version 0.1.0, section 2.
const REQUIREMENTS: &[Requirement] = &[
    req("Core", "Core features", Level::Both, &["RFC 6120"]),
    req("Core", "TLS", Level::Both, &["RFC 7590"]),
    req("Core", "Direct TLS", Level::Advanced, &["XEP-0368"]),
    req("Core", "Feature discovery", Level::Both, &["XEP-0030"]),
    req("Core", "Feature broadcasts", Level::Advanced, &["XEP-0115"]),
    req("Core", "Server extensibility", Level::Both, &["XEP-0114"]),
    req("Core", "Event publishing", Level::Advanced, &["XEP-0163"]),
    Requirement {
        category: "Web",
        feature: "Web connection mechanisms",
        level: Level::Both,
        providers: &["RFC 7395", "XEP-0206"],
        any_of: true,
    },
    req("IM", "Core features", Level::Both, &["RFC 6121"]),
    req("IM", "User avatar compatibility", Level::Advanced, &["XEP-0398", "XEP-0153"]),
    req("IM", "vcard-temp", Level::Both, &["XEP-0054"]),
    req("IM", "Outbound message synchronization", Level::Both, &["XEP-0280"]),
    req("IM", "User blocking", Level::Advanced, &["XEP-0191"]),
    req("IM", "Group chat", Level::Both, &["XEP-0045", "XEP-0249"]),
    req("IM", "Advanced group chat", Level::Advanced, &["XEP-0048", "XEP-0313", "XEP-0402", "XEP-0410"]),
    req("IM", "Persistent storage of private data via PubSub", Level::Advanced, &["XEP-0223"]),
    req("IM", "Private XML storage", Level::Advanced, &["XEP-0049"]),
    req("IM", "Stream management", Level::Advanced, &["XEP-0198"]),
    req("IM", "History storage / retrieval", Level::Advanced, &["XEP-0313"]),
    req("IM", "File upload", Level::Both, &["XEP-0363"]),
    req("Mobile", "Stream management", Level::Both, &["XEP-0198"]),
    req("Mobile", "Client state indication", Level::Both, &["XEP-0352"]),
    req("Mobile", "Third party push notifications", Level::Advanced, &["XEP-0357"]),
    req("A/V", "STUN/TURN server discovery", Level::Both, &["XEP-0215"]),
];

/// Specs listed in the DOAP, with their status ("complete", "partial", ...; RFCs "complete").
pub fn read_doap(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let root: Element = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
    const RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
    let mut out = BTreeMap::new();
    let mut stack = vec![&root];
    while let Some(el) = stack.pop() {
        match el.name() {
            "implements" => {
                if let Some(url) = el.attr_ns(RDF, "resource") {
                    if let Some(n) = url.rsplit("rfc").next().and_then(|s| s.strip_suffix(".html")) {
                        out.insert(format!("RFC {n}"), "complete".to_string());
                    }
                }
            }
            "SupportedXep" => {
                let xep = el.children().find(|c| c.name() == "xep").and_then(|x| x.attr_ns(RDF, "resource"));
                let status = el.children().find(|c| c.name() == "status").map(|s| s.text()).unwrap_or_default();
                if let Some(n) = xep.and_then(|u| u.rsplit("xep-").next()).and_then(|s| s.strip_suffix(".html")) {
                    out.insert(format!("XEP-{n}"), status);
                }
            }
            _ => {}
        }
        stack.extend(el.children());
    }
    Ok(out)
}

fn implemented(doap: &BTreeMap<String, String>, spec: &str) -> bool {
    // TLS (RFC 7590) is implied by a complete RFC 6120 with TLS 1.2+ only.
    let spec = if spec == "RFC 7590" { "RFC 6120" } else { spec };
    doap.get(spec).is_some_and(|s| s != "planned" && s != "deprecated" && s != "removed")
}

/// Print the report; returns the (category, level) pairs fully met.
pub fn report(doap: &BTreeMap<String, String>) -> Vec<String> {
    let mut met = Vec::new();
    for category in ["Core", "Web", "IM", "Mobile", "A/V"] {
        println!("\n{category}");
        let mut server_ok = true;
        let mut advanced_ok = true;
        for r in REQUIREMENTS.iter().filter(|r| r.category == category) {
            let have: Vec<bool> = r.providers.iter().map(|p| implemented(doap, p)).collect();
            let ok = if r.any_of { have.iter().any(|h| *h) } else { have.iter().all(|h| *h) };
            let marks: Vec<String> = r
                .providers
                .iter()
                .zip(&have)
                .map(|(p, h)| format!("{p}{}", if *h { "" } else { " (missing)" }))
                .collect();
            let level = if r.level == Level::Both { "Server+Advanced" } else { "Advanced" };
            println!("  [{}] {:<48} {:<16} {}", if ok { "x" } else { " " }, r.feature, level, marks.join(", "));
            advanced_ok &= ok;
            if r.level == Level::Both {
                server_ok &= ok;
            }
        }
        // Every category also requires the Core category at the same level.
        let core = |adv: bool| {
            REQUIREMENTS.iter().filter(|r| r.category == "Core" && (adv || r.level == Level::Both)).all(|r| {
                let have: Vec<bool> = r.providers.iter().map(|p| implemented(doap, p)).collect();
                if r.any_of {
                    have.iter().any(|h| *h)
                } else {
                    have.iter().all(|h| *h)
                }
            })
        };
        let server = server_ok && core(false);
        let advanced = advanced_ok && core(true);
        println!(
            "  => {category} Server: {}   {category} Advanced Server: {}",
            if server { "compliant" } else { "not yet" },
            if advanced { "compliant" } else { "not yet" }
        );
        if server {
            met.push(format!("{category} Server"));
        }
        if advanced {
            met.push(format!("{category} Advanced Server"));
        }
    }
    met
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_follow_the_doap() {
        let mut doap = BTreeMap::new();
        for s in ["RFC 6120", "XEP-0030", "XEP-0114", "RFC 7395"] {
            doap.insert(s.to_string(), "complete".to_string());
        }
        let met = report(&doap);
        assert!(met.contains(&"Core Server".to_string()));
        assert!(met.contains(&"Web Server".to_string()));
        assert!(!met.contains(&"Core Advanced Server".to_string()));
        doap.insert("XEP-0114".into(), "planned".into());
        assert!(!report(&doap).contains(&"Core Server".to_string()));
    }
}

//! Matching a received stanza against the expected one from the scenario.
//!
//! Rules (scansion's, with subset matching as the default for every element):
//! - name and namespace must be equal;
//! - every expected attribute must be present with an equal value; extra attributes are
//!   ignored unless the element (or an ancestor) says `scansion:strict='true'`;
//! - every expected child must match a distinct received child, in any order; extra children
//!   are ignored. In strict mode the children must correspond one to one, in order;
//! - expected text (trimmed) must equal the received text (trimmed); in strict mode an element
//!   expected without text must have none;
//! - the value `{scansion:any}` matches any value of a present attribute or any text, and
//!   `{scansion:capture:NAME}` does too while recording the value for later `${NAME}` use.
//!
//! `scansion:strict='false'` switches a subtree back to subset matching.

use std::collections::HashMap;

use minidom::Element;

use crate::template::SCANSION_NS;

const ANY: &str = "{scansion:any}";

/// Upper bound on child assignments tried, so a pathological scenario cannot hang the run.
const SEARCH_BUDGET: usize = 200_000;

/// Where and why a stanza did not match.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Path of the expected element, e.g. `/iq/query/item[2]`.
    pub path: String,
    pub reason: String,
}

/// Values captured by `{scansion:capture:NAME}`.
pub type Captures = HashMap<String, String>;

/// Matches `actual` against `expected`; on success the captures made are added to `captures`.
pub fn match_stanza(expected: &Element, actual: &Element, captures: &mut Captures) -> Result<(), Mismatch> {
    let mut budget = SEARCH_BUDGET;
    let mut trial = captures.clone();
    let path = format!("/{}", expected.name());
    match_element(expected, actual, false, &path, &mut trial, &mut budget)?;
    *captures = trial;
    Ok(())
}

fn match_value(expected: &str, actual: &str, captures: &mut Captures) -> bool {
    if expected == ANY {
        return true;
    }
    if let Some(name) = expected.strip_prefix("{scansion:capture:").and_then(|r| r.strip_suffix('}')) {
        captures.insert(name.to_string(), actual.to_string());
        return true;
    }
    expected == actual
}

fn mismatch(path: &str, reason: String) -> Mismatch {
    Mismatch { path: path.to_string(), reason }
}

fn match_element(
    exp: &Element,
    act: &Element,
    inherited_strict: bool,
    path: &str,
    captures: &mut Captures,
    budget: &mut usize,
) -> Result<(), Mismatch> {
    if *budget == 0 {
        return Err(mismatch(path, "matching gave up: too many candidate children".into()));
    }
    *budget -= 1;
    let strict = match exp.attr_ns(SCANSION_NS, "strict") {
        Some("true") => true,
        Some("false") => false,
        _ => inherited_strict,
    };
    if exp.name() != act.name() || exp.ns() != act.ns() {
        return Err(mismatch(
            path,
            format!("expected element <{}/> in {}, got <{}/> in {}", exp.name(), exp.ns(), act.name(), act.ns()),
        ));
    }
    for ((ns, name), value) in exp.attrs().iter() {
        if ns.as_str() == SCANSION_NS {
            continue;
        }
        match act.attrs().get(ns, name) {
            None => return Err(mismatch(path, format!("missing attribute {name}='{value}'"))),
            Some(got) if !match_value(value, got, captures) => {
                return Err(mismatch(path, format!("attribute {name}: expected '{value}', got '{got}'")))
            }
            Some(_) => {}
        }
    }
    if strict {
        for ((ns, name), value) in act.attrs().iter() {
            if exp.attrs().get(ns, name).is_none() {
                return Err(mismatch(path, format!("unexpected attribute {name}='{value}'")));
            }
        }
    }
    let exp_text = exp.text();
    let act_text = act.text();
    let (exp_text, act_text) = (exp_text.trim(), act_text.trim());
    if !exp_text.is_empty() && !match_value(exp_text, act_text, captures) {
        return Err(mismatch(path, format!("expected text {exp_text:?}, got {act_text:?}")));
    }
    if exp_text.is_empty() && strict && !act_text.is_empty() {
        return Err(mismatch(path, format!("unexpected text {act_text:?}")));
    }
    let exp_children: Vec<&Element> = exp.children().collect();
    let act_children: Vec<&Element> = act.children().collect();
    if strict {
        if exp_children.len() != act_children.len() {
            return Err(mismatch(
                path,
                format!("strict: expected {} child elements, got {}", exp_children.len(), act_children.len()),
            ));
        }
        for (i, (e, a)) in exp_children.iter().zip(&act_children).enumerate() {
            let child_path = format!("{path}/{}[{}]", e.name(), i + 1);
            match_element(e, a, true, &child_path, captures, budget)?;
        }
        return Ok(());
    }
    let mut used = vec![false; act_children.len()];
    assign(&exp_children, 0, &act_children, &mut used, path, captures, budget)
}

/// Finds distinct received children for `exp[index..]`, backtracking when an early choice
/// starves a later expected child.
fn assign(
    exp: &[&Element],
    index: usize,
    act: &[&Element],
    used: &mut [bool],
    path: &str,
    captures: &mut Captures,
    budget: &mut usize,
) -> Result<(), Mismatch> {
    let Some(want) = exp.get(index) else {
        return Ok(());
    };
    let child_path = format!("{path}/{}[{}]", want.name(), index + 1);
    let mut first_error = None;
    for (i, candidate) in act.iter().enumerate() {
        if used[i] {
            continue;
        }
        let mut trial = captures.clone();
        match match_element(want, candidate, false, &child_path, &mut trial, budget) {
            Ok(()) => {
                used[i] = true;
                match assign(exp, index + 1, act, used, path, &mut trial, budget) {
                    Ok(()) => {
                        *captures = trial;
                        return Ok(());
                    }
                    Err(e) => {
                        used[i] = false;
                        first_error.get_or_insert(e);
                    }
                }
            }
            Err(e) => {
                // Report the closest candidate: one with the same name and namespace.
                if candidate.name() == want.name() && candidate.ns() == want.ns() {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    Err(first_error
        .unwrap_or_else(|| mismatch(&child_path, format!("no <{}/> child in {} was received", want.name(), want.ns()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{instantiate, Bindings};

    fn el(xml: &str) -> Element {
        let b = Bindings { scenario_domain: "localhost".into(), domain: "localhost".into(), ..Default::default() };
        instantiate(xml, &b).unwrap().remove(0)
    }

    fn check(exp: &str, act: &str) -> Result<Captures, Mismatch> {
        let mut caps = Captures::new();
        match_stanza(&el(exp), &el(act), &mut caps).map(|()| caps)
    }

    #[test]
    fn subset_matching_ignores_extra_attributes_and_children() {
        let exp = "<iq type='result' id='r1'>\n\t<query xmlns='jabber:iq:roster'/>\n</iq>";
        let act = "<iq type='result' id='r1' from='x' xml:lang='en'><query xmlns='jabber:iq:roster' \
                   ver='3'><item jid='a@b'/></query><extra xmlns='urn:x'/></iq>";
        assert!(check(exp, act).is_ok());
    }

    #[test]
    fn attribute_and_name_mismatches_are_reported_with_paths() {
        let e = check("<iq type='result'/>", "<iq type='error'/>").unwrap_err();
        assert_eq!(e.path, "/iq");
        assert!(e.reason.contains("expected 'result', got 'error'"), "{e:?}");
        let e = check("<iq id='1'/>", "<iq/>").unwrap_err();
        assert!(e.reason.contains("missing attribute id"));
        let e = check("<iq/>", "<message/>").unwrap_err();
        assert!(e.reason.contains("got <message/>"));
        let e = check(
            "<iq><query xmlns='q'><item jid='b'/></query></iq>",
            "<iq><query xmlns='q'><item jid='a'/></query></iq>",
        )
        .unwrap_err();
        assert_eq!(e.path, "/iq/query[1]/item[1]");
    }

    #[test]
    fn children_match_in_any_order_and_distinctly() {
        let exp = "<q xmlns='d'><f var='b'/><f var='a'/></q>";
        assert!(check(exp, "<q xmlns='d'><f var='a'/><x/><f var='b'/></q>").is_ok());
        assert!(check(exp, "<q xmlns='d'><f var='a'/></q>").is_err());
        // Needs backtracking: the generic <f/> must not steal the only var='a'.
        let exp = "<q xmlns='d'><f/><f var='a'/></q>";
        assert!(check(exp, "<q xmlns='d'><f var='a'/><f var='b'/></q>").is_ok());
        let exp = "<q xmlns='d'><f/><f/></q>";
        assert!(check(exp, "<q xmlns='d'><f var='a'/></q>").is_err());
    }

    #[test]
    fn strict_mode_requires_exact_attributes_children_and_order() {
        let exp = "<iq scansion:strict='true' type='result'><a/><b/></iq>";
        assert!(check(exp, "<iq type='result'><a/><b/></iq>").is_ok());
        assert!(check(exp, "<iq type='result' id='x'><a/><b/></iq>").is_err());
        assert!(check(exp, "<iq type='result'><b/><a/></iq>").is_err());
        assert!(check(exp, "<iq type='result'><a/><b/><c/></iq>").is_err());
        // scansion:strict='false' relaxes a subtree again.
        let exp = "<iq scansion:strict='true'><a scansion:strict='false'/></iq>";
        assert!(check(exp, "<iq><a x='1'><c/></a></iq>").is_ok());
        assert!(check(exp, "<iq z='1'><a/></iq>").is_err());
        // Strict mode: text where none was expected fails.
        assert!(check("<a scansion:strict='true'/>", "<a>text</a>").is_err());
    }

    #[test]
    fn wildcards_and_captures() {
        let exp = "<iq id='{scansion:any}'><v>{scansion:any}</v></iq>";
        assert!(check(exp, "<iq id='77'><v>anything</v></iq>").is_ok());
        assert!(check(exp, "<iq><v>x</v></iq>").is_err(), "any still requires the attribute");
        let exp = "<iq id='{scansion:capture:push}'><v>{scansion:capture:ver}</v></iq>";
        let caps = check(exp, "<iq id='p9'><v> 12 </v></iq>").unwrap();
        assert_eq!(caps.get("push").map(String::as_str), Some("p9"));
        assert_eq!(caps.get("ver").map(String::as_str), Some("12"));
        // A failed match makes no captures.
        let exp = "<iq id='{scansion:capture:push}' type='set'/>";
        let mut caps = Captures::new();
        assert!(match_stanza(&el(exp), &el("<iq id='1' type='get'/>"), &mut caps).is_err());
        assert!(caps.is_empty());
    }

    #[test]
    fn text_is_compared_trimmed() {
        assert!(check("<m><body>\n  hi\n</body></m>", "<m><body>hi</body></m>").is_ok());
        let e = check("<m><body>hi</body></m>", "<m><body>ho</body></m>").unwrap_err();
        assert!(e.reason.contains("\"hi\""));
    }
}

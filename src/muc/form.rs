//! XEP-0004 data forms, as far as the rooms need them: build a form, read submitted values.

use minidom::Element;
use std::collections::BTreeMap;

use crate::xml::{ns, AttrExt};

/// One field of a form we send.
pub struct Field {
    var: String,
    kind: &'static str,
    label: String,
    values: Vec<String>,
    options: Vec<(String, String)>,
}

impl Field {
    fn new(var: &str, kind: &'static str, label: &str, values: Vec<String>) -> Field {
        Field { var: var.into(), kind, label: label.into(), values, options: Vec::new() }
    }
    pub fn hidden(var: &str, value: &str) -> Field {
        Field::new(var, "hidden", "", vec![value.into()])
    }
    pub fn text(var: &str, label: &str, value: &str) -> Field {
        Field::new(var, "text-single", label, vec![value.into()])
    }
    pub fn private(var: &str, label: &str, value: &str) -> Field {
        Field::new(var, "text-private", label, vec![value.into()])
    }
    pub fn boolean(var: &str, label: &str, value: bool) -> Field {
        Field::new(var, "boolean", label, vec![if value { "1" } else { "0" }.into()])
    }
    pub fn jid_multi(var: &str, label: &str, values: &[String]) -> Field {
        Field::new(var, "jid-multi", label, values.to_vec())
    }
    pub fn text_multi(var: &str, label: &str, values: &[String]) -> Field {
        Field::new(var, "text-multi", label, values.to_vec())
    }
    pub fn jid(var: &str, label: &str, value: &str) -> Field {
        Field::new(var, "jid-single", label, vec![value.into()])
    }
    pub fn list(var: &str, label: &str, value: &str, options: &[(&str, &str)]) -> Field {
        let mut f = Field::new(var, "list-single", label, vec![value.into()]);
        f.options = options.iter().map(|(v, l)| (v.to_string(), l.to_string())).collect();
        f
    }
    pub fn list_multi(var: &str, label: &str, values: &[String], options: &[(&str, &str)]) -> Field {
        let mut f = Field::new(var, "list-multi", label, values.to_vec());
        f.options = options.iter().map(|(v, l)| (v.to_string(), l.to_string())).collect();
        f
    }
    /// A field in a `result` form: no type, just var and values.
    pub fn value(var: &str, label: &str, value: &str) -> Field {
        Field::new(var, "", label, vec![value.into()])
    }

    fn to_element(&self) -> Element {
        let mut b = Element::builder("field", ns::DATA_FORMS).a("var", self.var.as_str());
        if !self.kind.is_empty() {
            b = b.a("type", self.kind);
        }
        if !self.label.is_empty() {
            b = b.a("label", self.label.as_str());
        }
        for (value, label) in &self.options {
            b = b.append(
                Element::builder("option", ns::DATA_FORMS)
                    .a("label", label.as_str())
                    .append(Element::builder("value", ns::DATA_FORMS).append(value.as_str()).build())
                    .build(),
            );
        }
        for v in &self.values {
            b = b.append(Element::builder("value", ns::DATA_FORMS).append(v.as_str()).build());
        }
        b.build()
    }
}

/// `<x xmlns='jabber:x:data' type=...>` with an optional title.
pub fn build(kind: &str, title: Option<&str>, fields: Vec<Field>) -> Element {
    let mut b = Element::builder("x", ns::DATA_FORMS).a("type", kind);
    if let Some(t) = title {
        b = b.append(Element::builder("title", ns::DATA_FORMS).append(t).build());
    }
    for f in &fields {
        b = b.append(f.to_element());
    }
    b.build()
}

/// Submitted values by field name (a form is small; the order of fields does not matter).
pub fn values(x: &Element) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for f in x.children().filter(|c| c.is("field", ns::DATA_FORMS)) {
        if let Some(var) = f.attr("var") {
            let vals = f.children().filter(|v| v.is("value", ns::DATA_FORMS)).map(|v| v.text()).collect();
            out.insert(var.to_string(), vals);
        }
    }
    out
}

/// The first value of a field.
pub fn value(x: &Element, var: &str) -> Option<String> {
    values(x).remove(var).and_then(|v| v.into_iter().next())
}

/// The FORM_TYPE of a form.
pub fn form_type(x: &Element) -> Option<String> {
    value(x, "FORM_TYPE")
}

/// XEP-0004 booleans: "1"/"true" and "0"/"false".
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

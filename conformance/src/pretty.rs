//! Stable, indented rendering of elements and a line diff, for failure reports.
//!
//! Attributes are sorted and whitespace-only text is dropped so that two renderings differ
//! only where the stanzas differ; the diff then points straight at the difference.

use minidom::Element;

use crate::template::SCANSION_NS;

/// Renders an element as indented XML (two spaces per level).
pub fn pretty(el: &Element) -> String {
    let mut out = String::new();
    write_element(el, None, 0, &mut out);
    out
}

fn escape(text: &str, attr: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' if attr => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

fn write_element(el: &Element, parent_ns: Option<&str>, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let ns = el.ns();
    out.push_str(&pad);
    out.push('<');
    out.push_str(el.name());
    if parent_ns != Some(ns.as_str()) {
        out.push_str(&format!(" xmlns='{}'", escape(&ns, true)));
    }
    let mut attrs: Vec<(String, &str)> = el
        .attrs()
        .iter()
        .map(|((ans, name), value)| {
            let key = match ans.as_str() {
                "" => name.to_string(),
                "http://www.w3.org/XML/1998/namespace" => format!("xml:{name}"),
                SCANSION_NS => format!("scansion:{name}"),
                other => format!("{{{other}}}{name}"),
            };
            (key, value.as_str())
        })
        .collect();
    attrs.sort();
    for (key, value) in attrs {
        out.push_str(&format!(" {key}='{}'", escape(value, true)));
    }
    let text = el.text();
    let text = text.trim();
    let has_children = el.children().next().is_some();
    match (has_children, text.is_empty()) {
        (false, true) => out.push_str("/>\n"),
        (false, false) => {
            out.push_str(&format!(">{}</{}>\n", escape(text, false), el.name()));
        }
        (true, _) => {
            out.push_str(">\n");
            if !text.is_empty() {
                out.push_str(&format!("{pad}  {}\n", escape(text, false)));
            }
            for child in el.children() {
                write_element(child, Some(&ns), depth + 1, out);
            }
            out.push_str(&format!("{pad}</{}>\n", el.name()));
        }
    }
}

/// Line diff of two texts: `-` lines only in `old`, `+` lines only in `new`, `  ` common lines.
pub fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Longest common subsequence table, filled from the end.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sorted_attributes_and_nested_namespaces() {
        let el: Element = "<iq xmlns='jabber:client' type='result' id='1'>\n  \
            <query xmlns='jabber:iq:roster'><item jid='a&amp;b@x'/></query><x>t</x></iq>"
            .parse()
            .unwrap();
        assert_eq!(
            pretty(&el),
            "<iq xmlns='jabber:client' id='1' type='result'>\n  \
             <query xmlns='jabber:iq:roster'>\n    <item jid='a&amp;b@x'/>\n  </query>\n  \
             <x>t</x>\n</iq>\n"
        );
    }

    #[test]
    fn diff_marks_changed_lines() {
        let d = diff("a\nb\nc\n", "a\nx\nc\n");
        assert_eq!(d, "  a\n- b\n+ x\n  c\n");
        assert_eq!(diff("a\n", "a\n"), "  a\n");
        assert_eq!(diff("", "z\n"), "+ z\n");
    }
}

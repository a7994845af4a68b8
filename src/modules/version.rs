//! XEP-0092: Software Version of the server (no OS: it would only help attackers).
use minidom::Element;

use crate::xml::ns;

pub const FEATURES: &[&str] = &[ns::VERSION];

pub fn query() -> Element {
    Element::builder("query", ns::VERSION)
        .append(Element::builder("name", ns::VERSION).append("amphi").build())
        .append(Element::builder("version", ns::VERSION).append(env!("CARGO_PKG_VERSION")).build())
        .build()
}

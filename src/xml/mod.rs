//! XML on the wire: the incremental framer (bytes in, stream events out) and the writer.

pub mod framer;
pub mod ns;
pub mod write;

pub use framer::{FrameError, Framer, FramerEvent, Limits};

use minidom::{Element, ElementBuilder};
use rxml::NcName;

/// Attribute helpers taking plain `&str` names. Names are the protocol's own literals;
/// an invalid name (never the case for the literals we pass) leaves the element unchanged.
pub trait AttrExt {
    fn a(self, name: &str, value: impl Into<String>) -> Self;
}

impl AttrExt for ElementBuilder {
    fn a(self, name: &str, value: impl Into<String>) -> Self {
        match NcName::try_from(name) {
            Ok(n) => self.attr(n, value.into()),
            Err(_) => self,
        }
    }
}

/// Set or remove attributes on an existing element.
pub trait ElementExt {
    fn set(&mut self, name: &str, value: impl Into<String>);
    fn unset(&mut self, name: &str);
}

impl ElementExt for Element {
    fn set(&mut self, name: &str, value: impl Into<String>) {
        if let Ok(n) = NcName::try_from(name) {
            self.attrs_mut().insert(rxml::Namespace::NONE, n, value.into());
        }
    }

    fn unset(&mut self, name: &str) {
        self.attrs_mut().remove(&rxml::Namespace::NONE, name);
    }
}

/// `xml:lang` of an element, if any.
pub fn lang(el: &Element) -> Option<&str> {
    el.attr_ns(rxml::Namespace::xml(), "lang")
}

/// Build an element with `xml:lang`.
pub fn with_lang(b: ElementBuilder, lang: &str) -> ElementBuilder {
    match NcName::try_from("lang") {
        Ok(n) => b.attr_ns(rxml::Namespace::xml().clone(), n, lang.to_string()),
        Err(_) => b,
    }
}

/// A builder for `<stream:NAME/>` written with the conventional `stream:` prefix, as
/// every client expects for `<stream:features/>` and `<stream:error/>`.
pub fn stream_element(name: &str) -> ElementBuilder {
    let b = Element::builder(name, ns::STREAM);
    match Element::builder(name, ns::STREAM).prefix(Some("stream".to_string()), ns::STREAM) {
        Ok(prefixed) => prefixed,
        Err(_) => b,
    }
}

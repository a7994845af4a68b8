//! Errors that reach the wire: stream errors (RFC 6120 §4.9) and stanza errors (§8.3).
//! Every layer maps its own failures onto these two types in one place, so a condition
//! name is written once.

use minidom::Element;

use crate::xml::{ns, with_lang, AttrExt};

/// A stream error condition with a human-readable text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    pub condition: StreamCondition,
    pub text: String,
}

/// The subset of RFC 6120 §4.9.3 conditions the server emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamCondition {
    BadFormat,
    Conflict,
    ConnectionTimeout,
    HostUnknown,
    InternalServerError,
    InvalidFrom,
    InvalidNamespace,
    NotAuthorized,
    NotWellFormed,
    PolicyViolation,
    ResourceConstraint,
    RestrictedXml,
    SystemShutdown,
    UndefinedCondition,
    UnsupportedStanzaType,
    UnsupportedVersion,
}

impl StreamCondition {
    pub fn name(self) -> &'static str {
        use StreamCondition::*;
        match self {
            BadFormat => "bad-format",
            Conflict => "conflict",
            ConnectionTimeout => "connection-timeout",
            HostUnknown => "host-unknown",
            InternalServerError => "internal-server-error",
            InvalidFrom => "invalid-from",
            InvalidNamespace => "invalid-namespace",
            NotAuthorized => "not-authorized",
            NotWellFormed => "not-well-formed",
            PolicyViolation => "policy-violation",
            ResourceConstraint => "resource-constraint",
            RestrictedXml => "restricted-xml",
            SystemShutdown => "system-shutdown",
            UndefinedCondition => "undefined-condition",
            UnsupportedStanzaType => "unsupported-stanza-type",
            UnsupportedVersion => "unsupported-version",
        }
    }
}

impl StreamError {
    pub fn new(condition: StreamCondition, text: impl Into<String>) -> Self {
        StreamError { condition, text: text.into() }
    }

    pub fn to_element(&self) -> Element {
        crate::xml::stream_element("error")
            .append(Element::bare(self.condition.name(), ns::STREAMS_ERR))
            .append(with_lang(Element::builder("text", ns::STREAMS_ERR), "en").append(self.text.as_str()).build())
            .build()
    }
}

impl From<crate::xml::FrameError> for StreamError {
    fn from(err: crate::xml::FrameError) -> Self {
        use crate::xml::FrameError::*;
        match err {
            NotWellFormed(t) => StreamError::new(StreamCondition::NotWellFormed, t),
            RestrictedXml(t) => StreamError::new(
                StreamCondition::RestrictedXml,
                format!("{t}; XMPP forbids comments, processing instructions, DTDs and entity declarations"),
            ),
            InvalidNamespace(t) => StreamError::new(StreamCondition::InvalidNamespace, t),
            TooLarge(n) => {
                StreamError::new(StreamCondition::PolicyViolation, format!("stanza larger than the limit of {n} bytes"))
            }
            TooDeep(n) => StreamError::new(
                StreamCondition::PolicyViolation,
                format!("elements nested deeper than the limit of {n}"),
            ),
        }
    }
}

/// RFC 6120 §8.3.2 error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    Auth,
    Cancel,
    Continue,
    Modify,
    Wait,
}

impl ErrorType {
    fn name(self) -> &'static str {
        match self {
            ErrorType::Auth => "auth",
            ErrorType::Cancel => "cancel",
            ErrorType::Continue => "continue",
            ErrorType::Modify => "modify",
            ErrorType::Wait => "wait",
        }
    }
}

/// A stanza error condition (RFC 6120 §8.3.3) with the type the RFC recommends for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaError {
    pub condition: &'static str,
    pub kind: ErrorType,
    pub text: Option<String>,
}

macro_rules! conditions {
    ($($fn:ident => $name:literal, $kind:ident;)*) => {
        impl StanzaError {
            $(pub fn $fn() -> Self {
                StanzaError { condition: $name, kind: ErrorType::$kind, text: None }
            })*
        }
    };
}

conditions! {
    bad_request => "bad-request", Modify;
    conflict => "conflict", Cancel;
    feature_not_implemented => "feature-not-implemented", Cancel;
    forbidden => "forbidden", Auth;
    internal_server_error => "internal-server-error", Cancel;
    item_not_found => "item-not-found", Cancel;
    jid_malformed => "jid-malformed", Modify;
    not_acceptable => "not-acceptable", Modify;
    not_allowed => "not-allowed", Cancel;
    not_authorized => "not-authorized", Auth;
    policy_violation => "policy-violation", Modify;
    registration_required => "registration-required", Auth;
    remote_server_not_found => "remote-server-not-found", Cancel;
    resource_constraint => "resource-constraint", Wait;
    service_unavailable => "service-unavailable", Cancel;
    undefined_condition => "undefined-condition", Cancel;
    unexpected_request => "unexpected-request", Wait;
}

impl StanzaError {
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    pub fn with_type(mut self, kind: ErrorType) -> Self {
        self.kind = kind;
        self
    }

    /// The `<error/>` child (RFC 6120 §8.3.2).
    pub fn to_element(&self, by: Option<&str>) -> Element {
        let mut b = Element::builder("error", ns::CLIENT).a("type", self.kind.name());
        if let Some(by) = by {
            b = b.a("by", by);
        }
        b = b.append(Element::bare(self.condition, ns::STANZAS_ERR));
        if let Some(text) = &self.text {
            b = b.append(with_lang(Element::builder("text", ns::STANZAS_ERR), "en").append(text.as_str()).build());
        }
        b.build()
    }
}

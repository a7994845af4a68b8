//! A session-initiate's contents, checked before anything is set up.

use crate::jingle::{Content, RtpDescription};

use super::negotiate;

/// Names of the form `p<digits>r<digits>` are the ones the focus gives forwarded streams.
pub(super) fn is_focus_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('p') else { return false };
    match rest.split_once('r') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// A session-initiate's contents, checked: one BUNDLE transport with credentials and a
/// fingerprint, and an accepted description per content.
pub(super) struct Offer {
    pub(super) ufrag: String,
    pub(super) pwd: String,
    pub(super) fingerprint: crate::jingle::Fingerprint,
    pub(super) candidates: Vec<String>,
    pub(super) contents: Vec<(Content, RtpDescription)>,
}

impl Offer {
    pub(super) fn from_contents(contents: &[Content]) -> Result<Offer, String> {
        let t = contents
            .iter()
            .filter_map(|c| c.transport.as_ref())
            .find(|t| t.ufrag.is_some() && t.pwd.is_some() && t.fingerprint.is_some())
            .ok_or(
                "the offer needs an ICE-UDP transport with ufrag, pwd and a DTLS fingerprint (XEP-0176, XEP-0320)",
            )?;
        let mut candidates: Vec<String> = Vec::new();
        for c in contents.iter().filter_map(|c| c.transport.as_ref()).flat_map(|t| &t.candidates) {
            let line = c.to_sdp();
            if c.component == 1 && !candidates.contains(&line) {
                candidates.push(line);
            }
        }
        let mut accepted = Vec::new();
        for (i, c) in contents.iter().enumerate() {
            if is_focus_name(&c.name) {
                return Err(format!("content name {} is reserved for streams the focus adds", c.name));
            }
            if contents[..i].iter().any(|o| o.name == c.name) {
                return Err(format!("content name {} is used twice", c.name));
            }
            let Some(d) = &c.description else { continue };
            accepted.push((c.clone(), negotiate::accept_description(d).map_err(|e| e.0)?));
        }
        if accepted.is_empty() {
            return Err("the offer has no RTP content".into());
        }
        Ok(Offer {
            ufrag: t.ufrag.clone().unwrap_or_default(),
            pwd: t.pwd.clone().unwrap_or_default(),
            fingerprint: t.fingerprint.clone().ok_or("no fingerprint")?,
            candidates,
            contents: accepted,
        })
    }
}

//! One module per protocol. Each declares the disco features it implements
//! (`FEATURES`); [`disco`] advertises exactly the union, and the DOAP test checks it.

pub mod blocking;
pub mod carbons;
pub mod disco;
pub mod extdisco;
pub mod iq;
pub mod last;
pub mod mam;
pub mod message;
pub mod offline;
pub mod ping;
pub mod presence;
pub mod register;
pub mod roster;
pub mod vcard;
pub mod version;

use crate::xml::ns;

/// Features of the server's own JID, gathered from the modules.
pub fn server_features() -> Vec<&'static str> {
    let mut f: Vec<&'static str> = Vec::new();
    for list in [
        disco::FEATURES,
        ping::FEATURES,
        version::FEATURES,
        last::FEATURES,
        vcard::FEATURES,
        register::FEATURES,
        offline::FEATURES,
        roster::FEATURES,
        carbons::FEATURES,
        extdisco::FEATURES,
        blocking::FEATURES,
    ] {
        f.extend_from_slice(list);
    }
    f.sort_unstable();
    f.dedup();
    f
}

/// Features of a user's bare JID (what the server answers on the account's behalf).
/// Blocking is on both: XEP-0191 §2 names the server, clients also look at the account.
pub fn account_features() -> Vec<&'static str> {
    let mut f = vec![ns::DISCO_INFO, ns::DISCO_ITEMS, ns::LAST, ns::VCARD, blocking::NS, mam::NS];
    f.sort_unstable();
    f
}

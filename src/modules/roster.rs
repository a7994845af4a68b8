//! RFC 6121 rosters and subscriptions: the IO shell around the sans-IO `crate::roster`
//! core. This file loads what is stored, asks the core, and carries out its `Outcome`.

use jid::BareJid;
use minidom::Element;
use std::collections::VecDeque;

use crate::c2s::session::Session;
use crate::error::{ErrorType, StanzaError};
use crate::roster::{
    self, Direction, Forward, ItemChange, Outcome, PendingRequest, Policy, PresenceToPeer, Relation, RosterItem,
    RosterSet, SubscriptionKind,
};
use crate::router;
use crate::server::Server;
use crate::store::{pair_key, pair_prefix};
use crate::xml::{ns, AttrExt};

pub const FEATURES: &[&str] = &[];

const POLICY: Policy = Policy { pre_approval: true };

/// Serialise the changes to one account's roster. Two sessions (or two accounts that
/// subscribe to each other at the same moment) would otherwise read the same item, decide
/// separately and overwrite each other's state. Striped locks keep memory constant; only
/// one is ever held at a time, so they cannot deadlock.
async fn lock<'a>(server: &'a Server, user: &str) -> tokio::sync::MutexGuard<'a, ()> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    user.hash(&mut h);
    let stripes = &server.roster_locks;
    stripes[(h.finish() as usize) % stripes.len()].lock().await
}

pub fn load_item(server: &Server, user: &str, contact: &str) -> Option<RosterItem> {
    server.store.roster.get::<RosterItem>(&pair_key(user, contact)).ok().flatten()
}

pub fn items(server: &Server, user: &str) -> Vec<RosterItem> {
    server
        .store
        .roster
        .scan::<RosterItem>(&pair_prefix(user))
        .map(|v| v.into_iter().map(|(_, i)| i).collect())
        .unwrap_or_default()
}

fn relation(server: &Server, user: &str, contact: &str) -> Relation {
    let item = load_item(server, user, contact).map(|i| i.state);
    let request = server.store.subscription_requests.get::<String>(&pair_key(user, contact)).ok().flatten().is_some();
    Relation::load(item, request)
}

/// Whether `user` (a local username) sends its presence to `other` (a bare JID string).
pub fn shares_presence_with(server: &Server, user: &str, other: &str) -> bool {
    if other == format!("{user}@{}", server.domain()) {
        return true;
    }
    load_item(server, user, other).is_some_and(|i| i.state.subscription().from())
}

fn version(server: &Server, user: &str) -> u64 {
    server.store.roster_versions.get::<u64>(user.as_bytes()).ok().flatten().unwrap_or(0)
}

fn bump_version(server: &Server, user: &str) -> u64 {
    let v = version(server, user) + 1;
    let _ = server.store.roster_versions.put(user.as_bytes(), &v);
    v
}

/// Push an item to every interested resource of `user` (RFC 6121 §2.1.6).
fn push(server: &Server, user: &str, item: Element, ver: u64) {
    let bare = format!("{user}@{}", server.domain());
    for r in server.registry.resources(&bare).iter().filter(|r| r.interested) {
        let iq = Element::builder("iq", ns::CLIENT)
            .a("type", "set")
            .a("id", format!("push{ver}"))
            .a("to", format!("{bare}/{}", r.resource))
            .append(Element::builder("query", ns::ROSTER).a("ver", ver.to_string()).append(item.clone()).build())
            .build();
        router::send(r, iq);
    }
}

pub async fn iq(session: &mut Session, iq: &Element, set: bool) {
    let server = session.server.clone();
    let Some(query) = iq.get_child("query", ns::ROSTER) else {
        return;
    };
    let user = session.username.clone();
    if !set {
        if let Err(e) = roster::parse_roster_get(query) {
            return session.bounce(iq, roster_error(&e));
        }
        server.registry.update(&session.bare_str(), session.session_id, |r| r.interested = true);
        let current = version(&server, &user);
        let client_ver = query.attr("ver");
        // Versioning (§2.6): an up-to-date client gets an empty result; any other version
        // gets the whole roster (we keep no removal history to send deltas from).
        let payload = if client_ver.and_then(|v| v.parse::<u64>().ok()) == Some(current) {
            None
        } else {
            let list = items(&server, &user).iter().map(RosterItem::to_element).collect::<Vec<_>>();
            Some(roster::query_element(Some(roster::RosterVersion::new(current)), list))
        };
        return session.send(super::iq::reply_to(session, iq, payload));
    }
    let parsed = match roster::parse_roster_set(query, &roster::Limits::default()) {
        Ok(s) => s,
        Err(e) => return session.bounce(iq, roster_error(&e)),
    };
    let contact = match &parsed {
        RosterSet::Update { jid, .. } | RosterSet::Remove { jid } => jid.to_string(),
    };
    if contact == session.bare_str() {
        return session.bounce(iq, StanzaError::not_allowed().with_text("you cannot add yourself to your roster"));
    }
    // Read-modify-write of this account's roster: one change at a time (see `lock`).
    let guard = lock(&server, &user).await;
    let existing = load_item(&server, &user, &contact);
    let request = server.store.subscription_requests.get::<String>(&pair_key(&user, &contact)).ok().flatten().is_some();
    let len = server.store.roster.count_prefix(&pair_prefix(&user));
    let outcome = match roster::apply_set(existing.as_ref(), request, parsed, len, &roster::Limits::default()) {
        Ok(o) => o,
        Err(e) => return session.bounce(iq, roster_error(&e)),
    };
    let key = pair_key(&user, &contact);
    let stored = match &outcome.item {
        Some(item) => server.store.roster.put(&key, item),
        None => server.store.roster.remove(&key).map(|_| ()),
    };
    if outcome.request == PendingRequest::Discard {
        let _ = server.store.subscription_requests.remove(&key);
    }
    let ver = bump_version(&server, &user);
    let flushed = server.store.flush().await;
    drop(guard);
    if stored.is_err() || flushed.is_err() {
        return session.bounce(iq, StanzaError::internal_server_error());
    }
    let mut queue = VecDeque::new();
    for kind in &outcome.send_to_peer {
        queue.push_back(Step::Subscription(Pending {
            to: contact.clone(),
            from: session.bare_str(),
            kind: *kind,
            stanza: None,
        }));
    }
    if outcome.presence == PresenceToPeer::Unavailable {
        queue.push_back(Step::Presence { user: user.clone(), contact: contact.clone(), available: false });
    }
    session.send(super::iq::reply_to(session, iq, None));
    push(&server, &user, outcome.push_element(), ver);
    run_inbound(&server, queue).await;
}

fn roster_error(e: &roster::RosterError) -> StanzaError {
    let base = match e.condition() {
        "bad-request" => StanzaError::bad_request(),
        "jid-malformed" => StanzaError::jid_malformed(),
        "not-acceptable" => StanzaError::not_acceptable(),
        "policy-violation" => StanzaError::policy_violation(),
        "item-not-found" => StanzaError::item_not_found(),
        "forbidden" => StanzaError::forbidden(),
        _ => StanzaError::bad_request(),
    };
    let kind = match e.error_type() {
        "auth" => ErrorType::Auth,
        "cancel" => ErrorType::Cancel,
        "wait" => ErrorType::Wait,
        _ => ErrorType::Modify,
    };
    base.with_type(kind).with_text(e.to_string())
}

/// What remains to do after a subscription change, in order: a stanza to process at a
/// local account's server side, or presence to send from one account to a contact.
enum Step {
    Subscription(Pending),
    Presence { user: String, contact: String, available: bool },
}

/// A subscription stanza on its way to a local account's server side.
struct Pending {
    /// Bare JID of the recipient.
    to: String,
    /// Bare JID of the sender.
    from: String,
    kind: SubscriptionKind,
    /// The original stanza (status text, extensions), when there is one.
    stanza: Option<Element>,
}

fn subscription_stanza(p: &Pending) -> Element {
    let mut el = p.stanza.clone().unwrap_or_else(|| Element::bare("presence", ns::CLIENT));
    crate::stanza::readdress(&mut el, &p.from, Some(&p.to));
    use crate::xml::ElementExt;
    el.set("type", p.kind.as_str());
    el.unset("id");
    el
}

/// A subscription stanza sent by the session's client (RFC 6121 §3, outbound rules).
pub async fn outbound(session: &mut Session, presence: Element, kind: SubscriptionKind) {
    let server = session.server.clone();
    let Ok(Some(to)) = crate::stanza::to(&presence) else {
        return session.bounce(&presence, StanzaError::bad_request().with_text("a subscription request needs a 'to'"));
    };
    let contact = to.to_bare().to_string();
    if contact == session.bare_str() || to.node().is_none() {
        return;
    }
    let user = session.username.clone();
    let guard = lock(&server, &user).await;
    let before = relation(&server, &user, &contact);
    let outcome = roster::process(Direction::Outbound, kind, before, POLICY);
    let pending = Pending { to: contact.clone(), from: session.bare_str(), kind, stanza: Some(presence) };
    let queue = apply(&server, &user, &contact, &outcome, &pending).await;
    drop(guard);
    run_inbound(&server, queue).await;
}

/// Carry out an outcome for local `user` and peer `contact`: storage and roster push at
/// once; what travels to others is returned as steps, in the order RFC 6121 gives them
/// (the stanza, the server's auto-reply, then the presence it implies).
async fn apply(server: &Server, user: &str, contact: &str, o: &Outcome, p: &Pending) -> VecDeque<Step> {
    let key = pair_key(user, contact);
    let mut out = VecDeque::new();
    match o.item {
        ItemChange::Unchanged => {}
        ItemChange::Created | ItemChange::Updated => {
            if let Some(state) = o.relation.item() {
                let item = match load_item(server, user, contact) {
                    Some(mut i) => {
                        i.state = state;
                        i
                    }
                    None => match BareJid::new(contact) {
                        Ok(j) => RosterItem::new(j, state),
                        Err(_) => return out,
                    },
                };
                let _ = server.store.roster.put(&key, &item);
            }
        }
        ItemChange::Removed => {
            let _ = server.store.roster.remove(&key);
        }
    }
    match o.request {
        PendingRequest::Keep => {}
        PendingRequest::Store => {
            let xml = String::from_utf8_lossy(&crate::xml::write::element_bytes(&subscription_stanza(p))).into_owned();
            let _ = server.store.subscription_requests.put(&key, &xml);
        }
        PendingRequest::Discard => {
            let _ = server.store.subscription_requests.remove(&key);
        }
    }
    let ver = if o.roster_push { Some(bump_version(server, user)) } else { None };
    if let Err(e) = server.store.flush().await {
        tracing::error!("storing a subscription change: {e}");
    }
    let me = format!("{user}@{}", server.domain());
    match o.forward {
        Forward::Drop => {}
        Forward::Route => out.push_back(Step::Subscription(Pending {
            to: contact.to_string(),
            from: me.clone(),
            kind: p.kind,
            stanza: p.stanza.clone(),
        })),
        Forward::Deliver => {
            let el = subscription_stanza(p);
            // RFC 6121 §3.1.3: a request goes to available resources; §3.1.6, §3.2.3,
            // §3.3.3: answers and cancellations go to interested resources too.
            let to_interested = p.kind != SubscriptionKind::Subscribe;
            for r in server.registry.resources(&me).iter().filter(|r| r.available || (to_interested && r.interested)) {
                let mut el = el.clone();
                use crate::xml::ElementExt;
                el.set("to", format!("{me}/{}", r.resource));
                router::send(r, el);
            }
        }
    }
    if let Some(kind) = o.auto_reply {
        out.push_back(Step::Subscription(Pending { to: contact.to_string(), from: me.clone(), kind, stanza: None }));
    }
    match o.presence {
        PresenceToPeer::Nothing => {}
        PresenceToPeer::Available | PresenceToPeer::Unavailable => out.push_back(Step::Presence {
            user: user.to_string(),
            contact: contact.to_string(),
            available: o.presence == PresenceToPeer::Available,
        }),
    }
    if let (Some(ver), true) = (ver, o.roster_push) {
        let item = match load_item(server, user, contact) {
            Some(i) => i.to_element(),
            None => match BareJid::new(contact) {
                Ok(j) => roster::removal_element(&j),
                Err(_) => return out,
            },
        };
        push(server, user, item, ver);
    }
    out
}

/// Carry out the steps in order: subscription stanzas run the inbound rules at their
/// (local) recipient, whose own steps join the queue.
async fn run_inbound(server: &Server, mut queue: VecDeque<Step>) {
    // Each hop can cause at most an auto-reply back; a small bound guards the loop anyway.
    let mut budget = 32;
    while let Some(step) = queue.pop_front() {
        budget -= 1;
        if budget == 0 {
            break;
        }
        let p = match step {
            Step::Subscription(p) => p,
            Step::Presence { user, contact, available } => {
                send_presence(server, &user, &contact, available);
                continue;
            }
        };
        let Ok(to) = BareJid::new(&p.to) else { continue };
        if to.domain().as_str() != server.domain() {
            continue; // No federation yet: the stanza cannot leave this server.
        }
        let Some(node) = to.node() else { continue };
        let user = node.to_string();
        if !crate::accounts::exists(&server.store, &user) {
            // RFC 6121 §3.1.3: a request to a non-existent account is denied.
            if p.kind == SubscriptionKind::Subscribe {
                queue.push_back(Step::Subscription(Pending {
                    to: p.from.clone(),
                    from: p.to.clone(),
                    kind: SubscriptionKind::Unsubscribed,
                    stanza: None,
                }));
            }
            continue;
        }
        let guard = lock(server, &user).await;
        let before = relation(server, &user, &p.from);
        let outcome = roster::process(Direction::Inbound, p.kind, before, POLICY);
        let more = apply(server, &user, &p.from, &outcome, &p).await;
        drop(guard);
        queue.extend(more);
    }
}

/// Send `user`'s presence to `contact`: the current presence of each available resource,
/// or (available=false) an unavailable from each.
fn send_presence(server: &Server, user: &str, contact: &str, available: bool) {
    let me = format!("{user}@{}", server.domain());
    let resources: Vec<_> = server.registry.resources(&me).into_iter().filter(|r| r.available).collect();
    let stanzas: Vec<Element> = if available {
        resources.iter().filter_map(|r| r.presence.as_ref().and_then(|p| p.element())).collect()
    } else {
        resources
            .iter()
            .map(|r| {
                Element::builder("presence", ns::CLIENT)
                    .a("from", format!("{me}/{}", r.resource))
                    .a("type", "unavailable")
                    .build()
            })
            .collect()
    };
    for mut el in stanzas {
        use crate::xml::ElementExt;
        el.set("to", contact);
        super::presence::deliver_to_bare(server, contact, &el);
    }
}

/// Stored subscription requests for `user`, to redeliver when it comes online.
pub fn stored_requests(server: &Server, user: &str) -> Vec<Element> {
    server
        .store
        .subscription_requests
        .scan::<String>(&pair_prefix(user))
        .map(|v| v.into_iter().filter_map(|(_, xml)| xml.parse::<Element>().ok()).collect())
        .unwrap_or_default()
}

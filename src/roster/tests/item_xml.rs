//! Roster item XML (RFC 6121 §2.1): building, round trips, roster get and set
//! validation with the §2.3.3 error conditions, and the storage encoding.

use jid::BareJid;
use minidom::Element;

use super::super::item::*;
use super::super::subscription::{ItemState, Subscription as S};
use super::super::{RosterError, RosterVersion, NS_ROSTER};

fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn set(xml: &str) -> Result<RosterSet, RosterError> {
    let el: Element = xml.parse().unwrap();
    parse_roster_set(&el, &Limits::default())
}

const Q: &str = "<query xmlns='jabber:iq:roster'>";

#[test]
fn item_xml_carries_ask_and_approved() {
    let mut item = RosterItem::new(jid("juliet@example.com"), ItemState::plain(S::FromPendingOut));
    item.name = Some("Juliet".into());
    item.groups = vec!["Friends".into(), "Verona".into()];
    let el = item.to_element();
    assert!(el.is("item", NS_ROSTER));
    assert_eq!(el.attr("jid"), Some("juliet@example.com"));
    assert_eq!(el.attr("name"), Some("Juliet"));
    assert_eq!(el.attr("subscription"), Some("from"));
    assert_eq!(el.attr("ask"), Some("subscribe"));
    assert_eq!(el.attr("approved"), None);
    let groups: Vec<String> = el.children().map(Element::text).collect();
    assert_eq!(groups, ["Friends", "Verona"]);

    let pre = RosterItem::new(jid("nurse@example.com"), ItemState::new(S::To, true).unwrap());
    let el = pre.to_element();
    assert_eq!(el.attr("subscription"), Some("to"));
    assert_eq!(el.attr("approved"), Some("true"));
    assert_eq!(el.attr("ask"), None);
    assert_eq!(el.attr("name"), None);
}

#[test]
fn item_xml_round_trips_for_every_wire_visible_state() {
    for s in S::ALL.into_iter().filter(|s| !s.pending_in()) {
        for approved in [false, true] {
            let Some(state) = ItemState::new(s, approved) else {
                continue;
            };
            let mut item = RosterItem::new(jid("romeo@example.net"), state);
            item.name = Some("Romeo & <Montague>".into());
            item.groups = vec!["Ä".into(), "b c".into()];
            let mut text = Vec::new();
            item.to_element().write_to(&mut text).unwrap();
            let parsed: Element = String::from_utf8(text).unwrap().parse().unwrap();
            let back = RosterItem::from_element(&parsed, &Limits::default()).unwrap();
            assert_eq!(back, item, "{s:?} approved={approved}");
        }
    }
}

#[test]
fn pending_in_is_not_on_the_wire() {
    let item = RosterItem::new(jid("a@b"), ItemState::plain(S::ToPendingIn));
    let back = RosterItem::from_element(&item.to_element(), &Limits::default()).unwrap();
    assert_eq!(back.state, ItemState::plain(S::To));
}

#[test]
fn removal_and_query_elements() {
    let el = removal_element(&jid("nurse@example.com"));
    assert_eq!(el.attr("subscription"), Some("remove"));
    assert_eq!(el.attr("jid"), Some("nurse@example.com"));
    let q = query_element(Some(RosterVersion::new(7)), [el]);
    assert!(q.is("query", NS_ROSTER));
    assert_eq!(q.attr("ver"), Some("7"));
    assert_eq!(q.children().count(), 1);
    assert_eq!(query_element(None, []).attr("ver"), None);
}

#[test]
fn roster_get_reads_ver() {
    let el: Element = "<query xmlns='jabber:iq:roster' ver='ver14'/>".parse().unwrap();
    assert_eq!(parse_roster_get(&el).unwrap().ver.as_deref(), Some("ver14"));
    let el: Element = "<query xmlns='jabber:iq:roster'/>".parse().unwrap();
    assert_eq!(parse_roster_get(&el).unwrap().ver, None);
    let el: Element = "<query xmlns='jabber:iq:private'/>".parse().unwrap();
    assert_eq!(parse_roster_get(&el), Err(RosterError::NotRosterQuery));
}

#[test]
fn valid_set_and_remove() {
    let got = set(&format!(
        "{Q}<item jid='Nurse@Example.com' name='Nurse' subscription='both' ask='subscribe' approved='true'>\
         <group>Servants</group><x xmlns='urn:example'/></item></query>"
    ));
    assert_eq!(
        got,
        Ok(RosterSet::Update {
            jid: jid("nurse@example.com"),
            name: Some("Nurse".into()),
            groups: vec!["Servants".into()],
        })
    );
    let got = set(&format!("{Q}<item jid='nurse@example.com' name=''/></query>"));
    assert!(matches!(got, Ok(RosterSet::Update { name: None, .. })));
    let got = set(&format!("{Q}<item jid='nurse@example.com' subscription='remove'/></query>"));
    assert_eq!(got, Ok(RosterSet::Remove { jid: jid("nurse@example.com") }));
}

#[test]
fn set_errors_map_to_rfc_conditions() {
    let long = "x".repeat(1025);
    let cases = [
        ("<query xmlns='jabber:iq:version'/>".to_owned(), RosterError::NotRosterQuery, "bad-request"),
        (format!("{Q}</query>"), RosterError::ItemCount, "bad-request"),
        (format!("{Q}<item jid='a@b'/><item jid='c@d'/></query>"), RosterError::ItemCount, "bad-request"),
        (format!("{Q}<item name='x'/></query>"), RosterError::MissingJid, "bad-request"),
        (format!("{Q}<item jid='@b'/></query>"), RosterError::JidMalformed, "jid-malformed"),
        (format!("{Q}<item jid='a@b/res'/></query>"), RosterError::FullJid, "bad-request"),
        (
            format!("{Q}<item jid='a@b'><group>g</group><group>g</group></item></query>"),
            RosterError::DuplicateGroup,
            "bad-request",
        ),
        (format!("{Q}<item jid='a@b'><group/></item></query>"), RosterError::EmptyGroup, "not-acceptable"),
        (format!("{Q}<item jid='a@b' name='{long}'/></query>"), RosterError::NameTooLong, "not-acceptable"),
        (
            format!("{Q}<item jid='a@b'><group>{long}</group></item></query>"),
            RosterError::GroupTooLong,
            "not-acceptable",
        ),
    ];
    for (xml, err, condition) in cases {
        assert_eq!(set(&xml), Err(err.clone()), "{xml}");
        assert_eq!(err.condition(), condition, "{err:?}");
    }
}

#[test]
fn limits_are_exact() {
    let limits = Limits { max_name_bytes: 3, max_group_bytes: 2, max_groups: 2, max_items: 1 };
    let parse = |xml: String| parse_roster_set(&xml.parse::<Element>().unwrap(), &limits);
    assert!(parse(format!("{Q}<item jid='a@b' name='abc'><group>ab</group><group>c</group></item></query>")).is_ok());
    assert_eq!(parse(format!("{Q}<item jid='a@b' name='abcd'/></query>")), Err(RosterError::NameTooLong));
    assert_eq!(parse(format!("{Q}<item jid='a@b'><group>abc</group></item></query>")), Err(RosterError::GroupTooLong));
    let three = "<group>a</group><group>b</group><group>c</group>";
    assert_eq!(parse(format!("{Q}<item jid='a@b'>{three}</item></query>")), Err(RosterError::TooManyGroups));
}

#[test]
fn storage_round_trip_keeps_jid_and_state() {
    let mut item = RosterItem::new(jid("juliet@example.com"), ItemState::new(S::NonePendingOut, true).unwrap());
    item.groups = vec!["Friends".into()];
    let json = serde_json::to_string(&item).unwrap();
    assert!(json.contains(r#""jid":"juliet@example.com""#), "{json}");
    assert_eq!(serde_json::from_str::<RosterItem>(&json).unwrap(), item);
    let bad = json.replace("juliet@example.com", "@bad");
    assert!(serde_json::from_str::<RosterItem>(&bad).is_err());
}

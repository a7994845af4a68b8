//! Invitation links and space-bound rooms: a participant link to a room reserved to a space's
//! members must not become a guest login (guests never qualify), and the link check says so
//! so the join page can ask the person to sign in instead.

mod support;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::Value;
use support::{http, start_http, Client};

const MUC: &str = "http://jabber.org/protocol/muc";

/// Create `room` as `owner` (instant room) and submit `fields` in its owner form.
async fn create_room(owner: &mut Client, room: &str, fields: &str) {
    owner.send(&format!("<presence to='{room}@conference.localhost/Owner'><x xmlns='{MUC}'/></presence>")).await;
    let me = owner.expect(|e| e.name() == "presence").await;
    assert_ne!(me.attr("type"), Some("error"), "{me:?}");
    owner
        .send(&format!(
            "<iq type='set' id='cfg-{room}' to='{room}@conference.localhost'><query xmlns='{MUC}#owner'>\
             <x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE'><value>{MUC}#roomconfig</value></field>\
             <field var='muc#roomconfig_persistentroom'><value>1</value></field>{fields}</x></query></iq>"
        ))
        .await;
    let id = format!("cfg-{room}");
    let reply = owner.expect(|e| e.name() == "iq" && e.attr("id") == Some(id.as_str())).await;
    assert_eq!(reply.attr("type"), Some("result"), "{reply:?}");
}

/// The room's participant link, as its owner gets it from the API, split into the JSON
/// body the check and join APIs take.
async fn participant_link(web: &str, room: &str) -> Value {
    let basic = format!("Basic {}", B64.encode("owner:pw"));
    let r = http("GET", &format!("http://{web}/api/rooms/{room}/invites"), &[("Authorization", &basic)], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let links: Value = serde_json::from_str(&r.body).unwrap();
    let path = links["participant"].as_str().unwrap().to_string();
    // /meeting/signin/<role>/<room>/hash/<signature>
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    assert_eq!(parts.len(), 6, "{path}");
    serde_json::json!({ "role": parts[2], "room": parts[3], "signature": parts[5] })
}

async fn post(web: &str, path: &str, body: &Value) -> (u16, Value) {
    let r =
        http("POST", &format!("http://{web}{path}"), &[("Content-Type", "application/json")], &body.to_string()).await;
    (r.status, serde_json::from_str(&r.body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_space_bound_room_makes_no_guest_and_the_check_says_why() {
    let (t, web) = start_http("", "").await;
    let mut owner = support::account(&t, "owner", "r").await;

    // An ordinary room: the participant link gives a guest login.
    create_room(&mut owner, "open", "").await;
    let link = participant_link(&web, "open").await;
    let (status, check) = post(&web, "/api/meeting/check", &link).await;
    assert_eq!((status, &check["space"]), (200, &Value::Bool(false)), "{check}");
    let mut join = link.clone();
    join["name"] = "Guest".into();
    let (status, guest) = post(&web, "/api/meeting/join", &join).await;
    assert_eq!(status, 200, "{guest}");
    assert!(guest["jid"].as_str().unwrap().starts_with("guest-"), "{guest}");

    // A room bound to a space (one listed member): no guest login, a clear reason.
    create_room(&mut owner, "bound", "<field var='amphi#space_members'><value>bob@localhost</value></field>").await;
    let link = participant_link(&web, "bound").await;
    let (status, check) = post(&web, "/api/meeting/check", &link).await;
    assert_eq!((status, &check["space"]), (200, &Value::Bool(true)), "{check}");
    let mut join = link.clone();
    join["name"] = "Guest".into();
    let (status, refused) = post(&web, "/api/meeting/join", &join).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"], "space-members-only", "{refused}");
    assert!(refused["text"].as_str().unwrap().contains("sign in"), "{refused}");
}

//! OpenID Connect single sign-on end to end, with a small OpenID provider written here
//! (discovery, keys, authorize → redirect with a code, token endpoint with PKCE and
//! client_secret_basic): /sso/<id>/start → provider → /sso/callback → amphi token → SASL
//! OAUTHBEARER over a real TLS socket → bound; sign-out revokes; replays are refused;
//! `POST /api/meetings` with the bearer token.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use serde_json::{json, Value};
use support::{http, Client, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---- the test provider ----------------------------------------------------------------

/// How the provider misbehaves in the token response.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Normal,
    TamperSignature,
    WrongNonce,
    UnknownKid,
    Expired,
}

/// The parameters of an authorization request, and whether its code was redeemed.
type Grant = (HashMap<String, String>, bool);

struct Provider {
    issuer: String,
    key: RsaKeyPair,
    /// code → (authorize parameters, used)
    codes: Mutex<HashMap<String, Grant>>,
    mode: Mutex<Mode>,
    /// Claims of the user who "logs in" at the next authorize.
    user: Mutex<Value>,
    jwks_fetches: Mutex<u32>,
}

impl Provider {
    fn sign(&self, claims: &Value, kid: &str) -> String {
        let header = json!({"alg": "RS256", "kid": kid, "typ": "JWT"});
        let input = format!("{}.{}", B64URL.encode(header.to_string()), B64URL.encode(claims.to_string()));
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
        format!("{input}.{}", B64URL.encode(sig))
    }

    fn id_token(&self, nonce: &str, mode: Mode) -> String {
        let now = amphi::stanza::now_secs();
        let mut claims = self.user.lock().unwrap().clone();
        claims["iss"] = json!(self.issuer);
        claims["aud"] = json!("amphi");
        claims["iat"] = json!(now);
        claims["exp"] = json!(if mode == Mode::Expired { now - 3600 } else { now + 300 });
        claims["nonce"] = json!(if mode == Mode::WrongNonce { "not-the-nonce" } else { nonce });
        let token = self.sign(&claims, if mode == Mode::UnknownKid { "rotated" } else { "k1" });
        if mode != Mode::TamperSignature {
            return token;
        }
        let parts: Vec<&str> = token.split('.').collect();
        claims["preferred_username"] = json!("admin");
        format!("{}.{}.{}", parts[0], B64URL.encode(claims.to_string()), parts[2])
    }
}

async fn discovery(State(p): State<Arc<Provider>>) -> Response {
    let i = &p.issuer;
    axum::Json(json!({"issuer": i, "authorization_endpoint": format!("{i}/auth"),
        "token_endpoint": format!("{i}/token"), "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"], "id_token_signing_alg_values_supported": ["RS256"]}))
    .into_response()
}

async fn jwks(State(p): State<Arc<Provider>>) -> Response {
    *p.jwks_fetches.lock().unwrap() += 1;
    let pk = p.key.public_key();
    let n = B64URL.encode(pk.modulus().big_endian_without_leading_zero());
    let e = B64URL.encode(pk.exponent().big_endian_without_leading_zero());
    axum::Json(json!({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": n, "e": e}]}))
        .into_response()
}

async fn authorize(State(p): State<Arc<Provider>>, Query(q): Query<HashMap<String, String>>) -> Response {
    assert_eq!(q.get("response_type").map(String::as_str), Some("code"));
    assert_eq!(q.get("code_challenge_method").map(String::as_str), Some("S256"));
    assert!(q.get("scope").unwrap().split(' ').any(|s| s == "openid"));
    let code = B64URL.encode(amphi::sasl::credentials::random_bytes(16));
    let location = format!(
        "{}?code={code}&state={}&iss={}",
        q["redirect_uri"],
        amphi::http::percent_encode(&q["state"]),
        amphi::http::percent_encode(&p.issuer)
    );
    p.codes.lock().unwrap().insert(code, (q, false));
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn token(State(p): State<Arc<Provider>>, headers: HeaderMap, body: String) -> Response {
    let refuse = |e: &str| (StatusCode::BAD_REQUEST, axum::Json(json!({"error": e}))).into_response();
    let basic = format!("Basic {}", B64.encode("amphi:s3cret"));
    if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid_client"}))).into_response();
    }
    let form: HashMap<String, String> = serde_json::from_value(json!(body
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect::<HashMap<_, _>>()))
    .unwrap();
    let mut codes = p.codes.lock().unwrap();
    let Some((auth, used)) = codes.get_mut(form.get("code").map(String::as_str).unwrap_or("")) else {
        return refuse("invalid_grant");
    };
    if *used {
        return refuse("invalid_grant");
    }
    *used = true;
    let challenge =
        B64URL.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, form["code_verifier"].as_bytes()));
    if challenge != auth["code_challenge"] || form["redirect_uri"] != auth["redirect_uri"] {
        return refuse("invalid_grant");
    }
    let mode = *p.mode.lock().unwrap();
    let id_token = p.id_token(&auth["nonce"], mode);
    axum::Json(json!({"access_token": "opaque-at", "token_type": "Bearer", "id_token": id_token})).into_response()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap());
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

async fn start_provider(user: Value) -> Arc<Provider> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let p = Arc::new(Provider {
        issuer,
        key: RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
        codes: Mutex::default(),
        mode: Mutex::new(Mode::Normal),
        user: Mutex::new(user),
        jwks_fetches: Mutex::new(0),
    });
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", axum::routing::get(discovery))
        .route("/jwks", axum::routing::get(jwks))
        .route("/auth", axum::routing::get(authorize))
        .route("/token", axum::routing::post(token))
        .with_state(p.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    p
}

// ---- amphi and a small HTTP client -------------------------------------------------------

/// amphi with an HTTP listener and two issuers (both served by test providers).
async fn start_amphi(agents: &Provider, partners: &Provider) -> (TestServer, String) {
    let issuer = |id: &str, p: &Provider| {
        format!(
            "[[oidc.issuers]]\nid='{id}'\nname='{id} — SSO'\nissuer='{}'\nclient_id='amphi'\nclient_secret='s3cret'\n",
            p.issuer
        )
    };
    support::start_http(
        "max_failures_per_ip=1000",
        &format!("{}{}", issuer("agents", agents), issuer("partners", partners)),
    )
    .await
}

/// Where a browser following the sign-in ends up, plus what it needs to replay steps.
struct Flow {
    /// The final Location from amphi's callback.
    done: String,
    callback_url: String,
    cookie: String,
}

/// A browser: start at amphi, log in at the provider, come back to the callback.
async fn browser_sign_in(amphi: &str, issuer_id: &str) -> Flow {
    let start = http("GET", &format!("http://{amphi}/sso/{issuer_id}/start"), &[], "").await;
    assert_eq!(start.status, 302, "{}", start.body);
    let set_cookie = start.header("set-cookie").expect("a browser-binding cookie");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let at_provider = http("GET", start.header("location").unwrap(), &[], "").await;
    assert_eq!(at_provider.status, 302);
    let callback_url = at_provider.header("location").unwrap().to_string();
    assert!(callback_url.starts_with("http://localhost:"), "redirect_uri derived from the listener: {callback_url}");
    let back = http("GET", &callback_url, &[("Cookie", &cookie)], "").await;
    assert_eq!(back.status, 302);
    Flow { done: back.header("location").unwrap().to_string(), callback_url, cookie }
}

fn fragment(done: &str, key: &str) -> String {
    let frag = done.strip_prefix("/sso/done#").unwrap_or_else(|| panic!("not signed in: {done}"));
    let v = frag.split('&').find_map(|kv| kv.strip_prefix(&format!("{key}="))).unwrap();
    percent_decode(v)
}

fn oauthbearer(authzid: &str, token: &str) -> String {
    let msg = format!("n,{authzid},\x01auth=Bearer {token}\x01\x01");
    format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='OAUTHBEARER'>{}</auth>", B64.encode(msg))
}

/// SASL OAUTHBEARER over `/xmpp-websocket` (RFC 7395); returns the SASL answer's name.
async fn websocket_sign_in(web: &str, token: &str) -> String {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
    let mut req = format!("ws://{web}/xmpp-websocket").into_client_request().unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", "xmpp".parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(web).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
    let open = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";
    ws.send(Message::Text(open.into())).await.unwrap();
    loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else { panic!("closed before the features") };
        if t.contains("<stream:features") || t.contains("features") {
            assert!(t.contains("OAUTHBEARER"), "{t}");
            break;
        }
    }
    ws.send(Message::Text(oauthbearer("", token).into())).await.unwrap();
    loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else { panic!("closed before the SASL answer") };
        for name in ["success", "failure", "challenge"] {
            if t.starts_with(&format!("<{name}")) {
                return name.to_string();
            }
        }
    }
}

fn alice() -> Value {
    json!({"sub": "sub-alice", "preferred_username": "Alice", "name": "Alice Martin",
           "email": "alice@example.org", "groups": ["profs", "staff"]})
}

// ---- the tests -------------------------------------------------------------------------

#[tokio::test]
async fn sign_in_then_xmpp_with_the_token_then_sign_out_revokes_it() {
    let (agents, partners) = (start_provider(alice()).await, start_provider(alice()).await);
    let (t, web) = start_amphi(&agents, &partners).await;

    let list = http("GET", &format!("http://{web}/api/sso/issuers"), &[], "").await;
    let list: Value = serde_json::from_str(&list.body).unwrap();
    assert_eq!(list, json!([{"id": "agents", "name": "agents — SSO"}, {"id": "partners", "name": "partners — SSO"}]));

    let flow = browser_sign_in(&web, "agents").await;
    let (token, jid) = (fragment(&flow.done, "token"), fragment(&flow.done, "jid"));
    assert_eq!(jid, "alice@localhost");
    assert_eq!(token.len(), 43);

    // XMPP over TLS with SASL OAUTHBEARER.
    let mut c = Client::connect_tls(&t, true).await;
    c.send(&oauthbearer("a=alice@localhost", &token)).await;
    assert_eq!(c.next().await.unwrap().name(), "success");
    c.open().await;
    assert!(c.bind("web").await.starts_with("alice@localhost/web"));

    // Who am I, and the directory record rooms read.
    let bearer = format!("Bearer {token}");
    let me = http("GET", &format!("http://{web}/api/me"), &[("Authorization", &bearer)], "").await;
    let me: Value = serde_json::from_str(&me.body).unwrap();
    assert_eq!(
        me,
        json!({"jid": "alice@localhost", "name": "Alice Martin", "email": "alice@example.org",
                          "groups": ["profs", "staff"]})
    );
    assert_eq!(amphi::auth::directory_entry(&t.server.store, "alice").unwrap().groups, ["profs", "staff"]);

    // The web client's way: XMPP over WebSocket (plain HTTP from loopback counts as secure).
    assert_eq!(websocket_sign_in(&web, &token).await, "success");

    // Another user's authzid with alice's token.
    let mut other = Client::connect_tls(&t, true).await;
    other.send(&oauthbearer("a=bob@localhost", &token)).await;
    let f = other.next().await.unwrap();
    assert!(f.name() == "failure" && f.has_child("invalid-authzid", "urn:ietf:params:xml:ns:xmpp-sasl"), "{f:?}");

    // Sign out: the token is revoked; SASL with it gets the RFC 7628 error dance.
    let out = http("POST", &format!("http://{web}/api/sso/signout"), &[("Authorization", &bearer)], "").await;
    assert_eq!(out.status, 204);
    let again = http("POST", &format!("http://{web}/api/sso/signout"), &[("Authorization", &bearer)], "").await;
    assert_eq!(again.status, 401);
    assert!(again.body.contains("\"unauthorized\""), "{}", again.body);
    let mut c = Client::connect_tls(&t, true).await;
    c.send(&oauthbearer("a=alice@localhost", &token)).await;
    let ch = c.next().await.unwrap();
    assert_eq!(ch.name(), "challenge");
    assert_eq!(B64.decode(ch.text()).unwrap(), br#"{"status":"invalid_token"}"#);
    c.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>AQ==</response>").await;
    let f = c.next().await.unwrap();
    assert!(f.name() == "failure" && f.has_child("not-authorized", "urn:ietf:params:xml:ns:xmpp-sasl"));
    let me = http("GET", &format!("http://{web}/api/me"), &[("Authorization", &bearer)], "").await;
    assert_eq!(me.status, 401);

    // OAUTHBEARER is not offered before TLS.
    let mut tcp = tokio::net::TcpStream::connect(t.starttls).await.unwrap();
    tcp.write_all(support::HEADER.as_bytes()).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(!String::from_utf8_lossy(&buf[..n]).contains("OAUTHBEARER"));
}

#[tokio::test]
async fn replays_forgeries_and_other_identities_are_refused() {
    let (agents, partners) = (start_provider(alice()).await, start_provider(alice()).await);
    let (t, web) = start_amphi(&agents, &partners).await;
    let first = browser_sign_in(&web, "agents").await;
    fragment(&first.done, "token");

    // The same callback again (state and code replayed).
    let replay = http("GET", &first.callback_url, &[("Cookie", &first.cookie)], "").await;
    assert_eq!(replay.header("location"), Some("/signin?sso_error=state"));

    // A fresh state with the already used code: the provider refuses the exchange.
    let start = http("GET", &format!("http://{web}/sso/agents/start"), &[], "").await;
    let cookie = start.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    let state =
        start.header("location").unwrap().split("state=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let old_code = first.callback_url.split("code=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let forged = format!("http://{web}/sso/callback?code={old_code}&state={state}");
    let r = http("GET", &forged, &[("Cookie", &cookie)], "").await;
    assert_eq!(r.header("location"), Some("/signin?sso_error=exchange"));

    // A callback URL opened in another browser (no cookie): login CSRF refused.
    let start = http("GET", &format!("http://{web}/sso/agents/start"), &[], "").await;
    let at_provider = http("GET", start.header("location").unwrap(), &[], "").await;
    let r = http("GET", at_provider.header("location").unwrap(), &[], "").await;
    assert_eq!(r.header("location"), Some("/signin?sso_error=state"));

    // The provider says no.
    let start = http("GET", &format!("http://{web}/sso/agents/start"), &[], "").await;
    let cookie = start.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    let state =
        start.header("location").unwrap().split("state=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let denied = format!("http://{web}/sso/callback?error=access_denied&state={state}");
    let r = http("GET", &denied, &[("Cookie", &cookie)], "").await;
    assert_eq!(r.header("location"), Some("/signin?sso_error=provider"));
    let r = http("GET", &format!("http://{web}/sso/callback?code=x&state=unknown"), &[], "").await;
    assert_eq!(r.header("location"), Some("/signin?sso_error=state"));

    for (mode, code) in [
        (Mode::TamperSignature, "id_token"),
        (Mode::WrongNonce, "id_token"),
        (Mode::Expired, "id_token"),
        (Mode::UnknownKid, "id_token"),
    ] {
        *agents.mode.lock().unwrap() = mode;
        let flow = browser_sign_in(&web, "agents").await;
        assert_eq!(flow.done, format!("/signin?sso_error={code}"), "{mode:?}");
    }
    assert_eq!(*agents.jwks_fetches.lock().unwrap(), 2, "an unknown kid fetches the keys once more");
    *agents.mode.lock().unwrap() = Mode::Normal;

    // The same username from the other issuer: bound to the first identity.
    let flow = browser_sign_in(&web, "partners").await;
    assert_eq!(flow.done, "/signin?sso_error=account");
    // An internal password account's name cannot be taken by single sign-on.
    amphi::accounts::create(&t.server.store, "bob", "pw", 4096).await.unwrap();
    *agents.user.lock().unwrap() = json!({"sub": "sub-bob", "preferred_username": "bob"});
    assert_eq!(browser_sign_in(&web, "agents").await.done, "/signin?sso_error=account");
    // No usable username claim.
    *agents.user.lock().unwrap() = json!({"sub": "sub-x", "preferred_username": "a@b"});
    assert_eq!(browser_sign_in(&web, "agents").await.done, "/signin?sso_error=claims");
    // And in-band registration cannot take alice's name now.
    let mut c = Client::connect_tls(&t, true).await;
    let r = c.register("alice", "pw").await;
    assert_eq!(r.attr("type"), Some("error"), "{r:?}");

    let unknown = http("GET", &format!("http://{web}/sso/nobody/start"), &[], "").await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("href=\"/signin\"") && unknown.body.contains("inconnu"));
}

#[tokio::test]
async fn integrations_create_meetings_with_a_bearer_token() {
    let (agents, partners) = (start_provider(alice()).await, start_provider(alice()).await);
    let (t, web) = start_amphi(&agents, &partners).await;
    let url = format!("http://{web}/api/meetings");
    assert_eq!(http("POST", &url, &[], "").await.status, 401);
    assert_eq!(http("POST", &url, &[("Authorization", "Bearer forged")], "").await.status, 401);

    let flow = browser_sign_in(&web, "agents").await;
    let bearer = format!("Bearer {}", fragment(&flow.done, "token"));
    let r = http(
        "POST",
        &url,
        &[("Authorization", &bearer), ("Content-Type", "application/json")],
        r#"{"name":"Conseil"}"#,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let m: Value = serde_json::from_str(&r.body).unwrap();
    let room = m["room"].as_str().unwrap();
    assert!(room.starts_with("meeting-") && room.ends_with("@conference.localhost"), "{room}");
    assert!(m["moderator_link"].as_str().unwrap().starts_with("http://localhost:"));
    assert!(m["participant_link"].as_str().unwrap().contains("/meeting/signin/participant/"));
    let node = room.split('@').next().unwrap();
    let saved: Value = t.server.store.muc_rooms.get(node.as_bytes()).unwrap().unwrap();
    assert_eq!(saved["affiliations"]["alice@localhost"]["affiliation"], "owner");
    assert_eq!(saved["config"]["name"], "Conseil");

    // The owner's invitation links with the same token (no password for SSO users).
    let invites =
        http("GET", &format!("http://{web}/api/rooms/{node}/invites"), &[("Authorization", &bearer)], "").await;
    assert_eq!(invites.status, 200, "{}", invites.body);

    // A provider's own JWT (signed by its keys, aud = our client id), no nonce needed.
    let now = amphi::stanza::now_secs();
    let mut claims = alice();
    claims["iss"] = json!(agents.issuer);
    claims["aud"] = json!("amphi");
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 60);
    let jwt = agents.sign(&claims, "k1");
    let r = http("POST", &url, &[("Authorization", &format!("Bearer {jwt}"))], "").await;
    assert_eq!(r.status, 201, "{}", r.body);
    claims["aud"] = json!("someone-else");
    let r = http("POST", &url, &[("Authorization", &format!("Bearer {}", agents.sign(&claims, "k1")))], "").await;
    assert_eq!(r.status, 401);
}

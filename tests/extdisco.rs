//! XEP-0215 External Service Discovery over a real session: the configured STUN/TURN
//! services, TURN REST credentials checked by recomputing coturn's HMAC, the §3.3
//! credentials request and the disco feature.

mod support;

use aws_lc_rs::hmac;
use base64::Engine;
use minidom::Element;
use support::{start_with, Client};

const NS: &str = "urn:xmpp:extdisco:2";
const SECRET: &str = "a shared secret with coturn";

async fn client() -> (support::TestServer, Client) {
    let t = start_with(
        "",
        &format!(
            "[turn]\nsecret = '{SECRET}'\nttl = '1h'\nservices = [\n\
             {{ type = 'stun', host = '127.0.0.1', port = 3478, transport = 'udp' }},\n\
             {{ type = 'turn', host = '127.0.0.1', port = 3478, transport = 'udp' }},\n\
             {{ type = 'turns', host = 'turn.example.org', port = 5349, transport = 'tcp', \
                username = 'static', password = 'fixed' }},\n]\n"
        ),
    )
    .await;
    let c = support::account(&t, "ada", "r").await;
    (t, c)
}

async fn ask(c: &mut Client, id: &str, payload: &str) -> Element {
    c.send(&format!("<iq type='get' id='{id}' to='localhost'>{payload}</iq>")).await;
    c.expect(|e| e.attr("id") == Some(id)).await
}

/// What coturn does with `use-auth-secret`: recompute the password from the username.
fn coturn_password(username: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, SECRET.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, username.as_bytes()).as_ref())
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn services_with_turn_rest_credentials() {
    let (_t, mut c) = client().await;
    let r = ask(&mut c, "s", &format!("<services xmlns='{NS}'/>")).await;
    assert_eq!(r.attr("type"), Some("result"), "{r:?}");
    let services: Vec<&Element> = r.get_child("services", NS).unwrap().children().collect();
    assert_eq!(services.len(), 3);
    let stun = services[0];
    assert_eq!((stun.attr("type"), stun.attr("port"), stun.attr("username")), (Some("stun"), Some("3478"), None));

    let turn = services[1];
    assert_eq!(turn.attr("type"), Some("turn"));
    assert_eq!(turn.attr("transport"), Some("udp"));
    let username = turn.attr("username").unwrap();
    let (expiry, user) = username.split_once(':').unwrap();
    assert_eq!(user, "ada@localhost", "bound to the bare JID");
    let expiry: u64 = expiry.parse().unwrap();
    assert!((now() + 3590..=now() + 3610).contains(&expiry), "expires after turn.ttl");
    assert_eq!(turn.attr("password"), Some(coturn_password(username).as_str()));
    let stamp = turn.attr("expires").unwrap();
    assert!(stamp.ends_with('Z') && stamp.len() == 20, "{stamp}");

    let static_one = services[2];
    assert_eq!((static_one.attr("username"), static_one.attr("password")), (Some("static"), Some("fixed")));

    // §3.2: only one type.
    let r = ask(&mut c, "t", &format!("<services xmlns='{NS}' type='stun'/>")).await;
    assert_eq!(r.get_child("services", NS).unwrap().children().count(), 1);

    // §3.3: fresh credentials for one service.
    let r =
        ask(&mut c, "c", &format!("<credentials xmlns='{NS}'><service host='127.0.0.1' type='turn'/></credentials>"))
            .await;
    let s = r.get_child("credentials", NS).unwrap().get_child("service", NS).unwrap();
    let username = s.attr("username").unwrap();
    assert_eq!(s.attr("password"), Some(coturn_password(username).as_str()));
    let r =
        ask(&mut c, "x", &format!("<credentials xmlns='{NS}'><service host='nope' type='turn'/></credentials>")).await;
    assert_eq!(r.attr("type"), Some("error"));
    assert!(r
        .get_child("error", "jabber:client")
        .unwrap()
        .has_child("item-not-found", "urn:ietf:params:xml:ns:xmpp-stanzas"));

    // Advertised in the server's disco#info.
    let r = ask(&mut c, "d", "<query xmlns='http://jabber.org/protocol/disco#info'/>").await;
    let q = r.get_child("query", "http://jabber.org/protocol/disco#info").unwrap();
    assert!(q.children().any(|f| f.attr("var") == Some(NS)));
}

/// Kills the turnserver this test started when the test ends, pass or fail.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// coturn itself accepts the credentials amphi hands out (and refuses a wrong password).
/// Needs coturn (Debian: `apt-get install coturn`; scripts/test.sh installs it). Outside
/// CI a machine without it skips this test with a message; in CI (`CI` set) it fails.
#[tokio::test]
async fn coturn_accepts_the_credentials() {
    if !std::path::Path::new("/usr/bin/turnserver").exists()
        || !std::path::Path::new("/usr/bin/turnutils_uclient").exists()
    {
        assert!(std::env::var_os("CI").is_none(), "coturn is not installed: run scripts/test.sh, which installs it");
        eprintln!("coturn is not installed: skipped (scripts/test.sh installs it)");
        return;
    }
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _turn = Child(
        std::process::Command::new("/usr/bin/turnserver")
            .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--use-auth-secret"])
            .arg(format!("--listening-port={port}"))
            .arg(format!("--static-auth-secret={SECRET}"))
            .args(["--realm=localhost", "--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers"])
            .args(["--min-port=50200", "--max-port=50300", "--log-file=stdout"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (_t, mut c) = client().await;
    let r =
        ask(&mut c, "c", &format!("<credentials xmlns='{NS}'><service host='127.0.0.1' type='turn'/></credentials>"))
            .await;
    let s = r.get_child("credentials", NS).unwrap().get_child("service", NS).unwrap();
    let (user, password) = (s.attr("username").unwrap().to_string(), s.attr("password").unwrap().to_string());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let allocate = move |password: String| {
        let user = user.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("/usr/bin/turnutils_uclient")
                .args(["-y", "-n", "1", "-m", "1", "-l", "50", "-u", &user, "-w", &password, "-p"])
                .arg(port.to_string())
                .arg("127.0.0.1")
                .output()
                .unwrap()
        })
    };
    let ok = allocate(password).await.unwrap();
    let log = String::from_utf8_lossy(&ok.stdout).to_string() + &String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success() && log.contains("Total lost packets 0"), "{log}");
    let bad = allocate("d3JvbmcgcGFzc3dvcmQ=".into()).await.unwrap();
    assert!(!bad.status.success(), "coturn refuses a wrong password");
}

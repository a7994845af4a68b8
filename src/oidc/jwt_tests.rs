//! ID token validation against tokens signed here with freshly generated keys.

use super::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::json;
use std::sync::OnceLock;

struct Keys {
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rsa: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
        ec: EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
    })
}

fn b64(b: &[u8]) -> String {
    B64URL.encode(b)
}

/// The provider's published keys: the RSA key as "r1", the EC key as "e1".
fn jwks() -> Jwks {
    let k = keys();
    let point = k.ec.public_key().as_ref();
    let doc = json!({"keys": [
        {"kty": "RSA", "kid": "r1", "use": "sig",
         "n": b64(k.rsa.public_key().modulus().big_endian_without_leading_zero()),
         "e": b64(k.rsa.public_key().exponent().big_endian_without_leading_zero())},
        {"kty": "EC", "kid": "e1", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])},
        {"kty": "oct", "kid": "h1", "k": b64(b"a shared secret")},
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
    ]});
    Jwks::parse(doc.to_string().as_bytes()).unwrap()
}

fn sign(alg: &str, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": alg, "kid": kid, "typ": "JWT"});
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let rng = SystemRandom::new();
    let sig = match alg {
        "RS256" | "PS256" => {
            let enc = if alg == "RS256" { &signature::RSA_PKCS1_SHA256 } else { &signature::RSA_PSS_SHA256 };
            let mut sig = vec![0; keys().rsa.public_modulus_len()];
            keys().rsa.sign(enc, &rng, input.as_bytes(), &mut sig).unwrap();
            sig
        }
        "ES256" => keys().ec.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
        _ => b"not a signature".to_vec(),
    };
    format!("{input}.{}", b64(&sig))
}

const NOW: u64 = 1_800_000_000;

fn claims() -> Value {
    json!({"iss": "https://idp.example", "aud": "amphi", "sub": "u-42", "exp": NOW + 300, "iat": NOW - 5,
           "nonce": "n-1", "preferred_username": "alice"})
}

fn expected() -> Expected<'static> {
    Expected { issuer: "https://idp.example", client_id: "amphi", nonce: Some("n-1"), now: NOW }
}

fn validate(token: &str, want: &Expected) -> Result<String, JwtError> {
    let claims = Jws::parse(token)?.verify(&jwks())?;
    check_claims(&claims, want)
}

#[test]
fn good_tokens_of_each_algorithm_verify() {
    assert_eq!(jwks().keys.len(), 2, "symmetric and encryption keys are skipped");
    for (alg, kid) in [("RS256", "r1"), ("PS256", "r1"), ("ES256", "e1")] {
        assert_eq!(validate(&sign(alg, kid, &claims()), &expected()), Ok("u-42".into()), "{alg}");
    }
}

#[test]
fn a_tampered_payload_fails_the_signature() {
    let token = sign("RS256", "r1", &claims());
    let parts: Vec<&str> = token.split('.').collect();
    let mut forged = claims();
    forged["preferred_username"] = json!("admin");
    let token = format!("{}.{}.{}", parts[0], b64(forged.to_string().as_bytes()), parts[2]);
    assert_eq!(validate(&token, &expected()), Err(JwtError::Signature));
    // A genuine signature by the right key, but of another message.
    let other = sign("ES256", "e1", &json!({"x": 1}));
    let token =
        format!("{}.{}", sign("ES256", "e1", &claims()).rsplit_once('.').unwrap().0, other.split('.').nth(2).unwrap());
    assert_eq!(validate(&token, &expected()), Err(JwtError::Signature));
}

#[test]
fn none_and_hmac_and_key_confusion_are_refused() {
    let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(claims().to_string().as_bytes()));
    assert_eq!(Jws::parse(&none).unwrap_err(), JwtError::Algorithm("none".into()));
    assert_eq!(Jws::parse(&sign("HS256", "h1", &claims())).unwrap_err(), JwtError::Algorithm("HS256".into()));
    // An RSA signature presented as ES256 under the RSA key's id: no EC key has that id.
    let rs = sign("RS256", "r1", &claims());
    let header = b64(br#"{"alg":"ES256","kid":"r1"}"#);
    let swapped = format!("{header}.{}", rs.split_once('.').unwrap().1);
    assert_eq!(validate(&swapped, &expected()), Err(JwtError::UnknownKey));
    let crit = format!("{}.{}.x", b64(br#"{"alg":"RS256","crit":["exp"]}"#), b64(b"{}"));
    assert_eq!(Jws::parse(&crit).unwrap_err(), JwtError::Malformed);
}

#[test]
fn an_unknown_kid_asks_for_fresh_keys() {
    assert_eq!(validate(&sign("RS256", "rotated", &claims()), &expected()), Err(JwtError::UnknownKey));
}

#[test]
fn expired_and_future_tokens_are_refused() {
    let mut c = claims();
    c["exp"] = json!(NOW - SKEW_SECS);
    assert_eq!(validate(&sign("RS256", "r1", &c), &expected()), Err(JwtError::Expired));
    c["exp"] = json!(NOW - SKEW_SECS + 1);
    assert!(validate(&sign("RS256", "r1", &c), &expected()).is_ok(), "within the skew");
    let mut c = claims();
    c["iat"] = json!(NOW + 3600);
    assert_eq!(validate(&sign("RS256", "r1", &c), &expected()), Err(JwtError::Time));
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(validate(&sign("RS256", "r1", &c), &expected()), Err(JwtError::Missing("exp")));
}

#[test]
fn wrong_issuer_audience_and_nonce_are_refused() {
    let mut c = claims();
    c["iss"] = json!("https://evil.example");
    assert!(matches!(validate(&sign("RS256", "r1", &c), &expected()), Err(JwtError::Issuer(_))));
    let mut c = claims();
    c["aud"] = json!("another-client");
    assert_eq!(validate(&sign("RS256", "r1", &c), &expected()), Err(JwtError::Audience));
    c["aud"] = json!(["amphi", "another-client"]);
    assert_eq!(validate(&sign("RS256", "r1", &c), &expected()), Err(JwtError::Audience), "several aud need azp");
    c["azp"] = json!("amphi");
    assert!(validate(&sign("RS256", "r1", &c), &expected()).is_ok());
    let mut c = claims();
    c["nonce"] = json!("replayed");
    assert_eq!(validate(&sign("RS256", "r1", &c), &expected()), Err(JwtError::Nonce));
    c.as_object_mut().unwrap().remove("nonce");
    assert_eq!(validate(&sign("RS256", "r1", &c), &expected()), Err(JwtError::Nonce));
    // API bearer tokens are not bound to one of our sign-ins: no nonce expected.
    let api = Expected { nonce: None, ..expected() };
    assert!(validate(&sign("RS256", "r1", &c), &api).is_ok());
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    for t in ["", ".", "..", "a.b.c", "a.b.c.d", &"x".repeat(MAX_TOKEN_LEN + 1)] {
        assert!(Jws::parse(t).is_err(), "{t:.20}");
    }
    assert_eq!(unverified_issuer(&sign("RS256", "r1", &claims())).as_deref(), Some("https://idp.example"));
    assert_eq!(unverified_issuer("a.b.c"), None);
}

//! SCRAM server (RFC 5802, RFC 7677) with channel binding (RFC 5929, RFC 9266).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::credentials::{constant_time_eq, random_bytes, Credentials, HashAlg};
use super::{normalize_username, ChannelBindings, Failure, Mechanism, Step};

enum Phase {
    ClientFirst,
    AwaitCredentials {
        username: String,
        client_first_bare: String,
        gs2_header: String,
        client_nonce: String,
    },
    ClientFinal {
        username: String,
        auth_message_prefix: String,
        gs2_header: String,
        nonce: String,
        creds: Option<Credentials>,
    },
    Done,
}

pub struct ScramServer {
    alg: HashAlg,
    plus: bool,
    bindings: ChannelBindings,
    advertised_plus: bool,
    phase: Phase,
    server_nonce: String,
}

impl ScramServer {
    pub fn new(mechanism: Mechanism, bindings: ChannelBindings, advertised_plus: bool) -> ScramServer {
        let alg = match mechanism {
            Mechanism::ScramSha1 | Mechanism::ScramSha1Plus => HashAlg::Sha1,
            _ => HashAlg::Sha256,
        };
        ScramServer {
            alg,
            plus: mechanism.is_plus(),
            bindings,
            advertised_plus,
            phase: Phase::ClientFirst,
            server_nonce: B64.encode(random_bytes(18)),
        }
    }

    #[cfg(test)]
    fn with_nonce(mut self, nonce: &str) -> Self {
        self.server_nonce = nonce.to_string();
        self
    }

    pub fn respond(&mut self, data: &[u8]) -> Step {
        let fail = |failure| Step::Failure { failure, username: None };
        let Ok(text) = std::str::from_utf8(data) else {
            return fail(Failure::IncorrectEncoding);
        };
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::ClientFirst => match self.client_first(text) {
                Ok(step) => step,
                Err(f) => fail(f),
            },
            Phase::ClientFinal { username, auth_message_prefix, gs2_header, nonce, creds } => {
                self.client_final(text, username, auth_message_prefix, gs2_header, nonce, creds)
            }
            Phase::AwaitCredentials { .. } | Phase::Done => fail(Failure::MalformedRequest),
        }
    }

    fn client_first(&mut self, text: &str) -> Result<Step, Failure> {
        // gs2-header: cb-flag "," [authzid] ","
        let (flag, rest) = text.split_once(',').ok_or(Failure::MalformedRequest)?;
        let (authzid, bare) = rest.split_once(',').ok_or(Failure::MalformedRequest)?;
        match (flag, self.plus) {
            ("n", false) => {}
            // The client could bind but thinks we cannot: if we offered -PLUS, someone
            // stripped it on the way (RFC 5802 §6).
            ("y", false) if self.advertised_plus => return Err(Failure::NotAuthorized),
            ("y", false) => {}
            (f, true) if f.starts_with("p=") => {
                if self.bindings.get(&f[2..]).is_none() {
                    return Err(Failure::NotAuthorized);
                }
            }
            _ => return Err(Failure::MalformedRequest),
        }
        let gs2_header = format!("{flag},{authzid},");
        let mut username = None;
        let mut nonce = None;
        for (i, attr) in bare.split(',').enumerate() {
            match attr.split_once('=') {
                Some(("m", _)) if i == 0 => return Err(Failure::MalformedRequest),
                Some(("n", v)) if i == 0 => username = Some(decode_saslname(v).ok_or(Failure::MalformedRequest)?),
                Some(("r", v))
                    if i == 1 && !v.is_empty() && v.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',') =>
                {
                    nonce = Some(v.to_string())
                }
                _ if i >= 2 => {}
                _ => return Err(Failure::MalformedRequest),
            }
        }
        let (Some(raw_user), Some(client_nonce)) = (username, nonce) else {
            return Err(Failure::MalformedRequest);
        };
        let username = normalize_username(&raw_user).ok_or(Failure::NotAuthorized)?;
        if let Some(z) = authzid.strip_prefix("a=") {
            let z = decode_saslname(z).ok_or(Failure::MalformedRequest)?;
            let local = z.split('@').next().and_then(normalize_username);
            if local.as_deref() != Some(&username) {
                return Err(Failure::InvalidAuthzid);
            }
        } else if !authzid.is_empty() {
            return Err(Failure::MalformedRequest);
        }
        self.phase = Phase::AwaitCredentials {
            username: username.clone(),
            client_first_bare: bare.to_string(),
            gs2_header,
            client_nonce,
        };
        Ok(Step::NeedCredentials(username))
    }

    pub fn credentials(&mut self, creds: Option<Credentials>) -> Step {
        let Phase::AwaitCredentials { username, client_first_bare, gs2_header, client_nonce } =
            std::mem::replace(&mut self.phase, Phase::Done)
        else {
            return Step::Failure { failure: Failure::MalformedRequest, username: None };
        };
        // An unknown account gets a plausible salt so the exchange looks the same: the
        // answer to "does this user exist" is not given away before the proof.
        let (salt, iterations) = match &creds {
            Some(c) => (c.keys(self.alg).salt.clone(), c.keys(self.alg).iterations),
            None => (self.alg.hmac(self.server_nonce.as_bytes(), username.as_bytes())[..16].to_vec(), 4096),
        };
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
        let auth_message_prefix = format!("{client_first_bare},{server_first}");
        self.phase = Phase::ClientFinal { username, auth_message_prefix, gs2_header, nonce, creds };
        Step::Challenge(server_first.into_bytes())
    }

    fn client_final(
        &mut self,
        text: &str,
        username: String,
        auth_message_prefix: String,
        gs2_header: String,
        nonce: String,
        creds: Option<Credentials>,
    ) -> Step {
        let fail = |failure, user: Option<String>| Step::Failure { failure, username: user };
        let Some((without_proof, proof)) = text.rsplit_once(",p=") else {
            return fail(Failure::MalformedRequest, None);
        };
        let mut parts = without_proof.split(',');
        let (Some(c), Some(r)) =
            (parts.next().and_then(|p| p.strip_prefix("c=")), parts.next().and_then(|p| p.strip_prefix("r=")))
        else {
            return fail(Failure::MalformedRequest, None);
        };
        let Ok(cbind) = B64.decode(c) else {
            return fail(Failure::IncorrectEncoding, None);
        };
        let mut expected_cbind = gs2_header.clone().into_bytes();
        if let Some(kind) = gs2_header.strip_prefix("p=").and_then(|s| s.split(',').next()) {
            match self.bindings.get(kind) {
                Some(data) => expected_cbind.extend_from_slice(data),
                None => return fail(Failure::NotAuthorized, Some(username)),
            }
        }
        if !constant_time_eq(&cbind, &expected_cbind) || r != nonce {
            return fail(Failure::NotAuthorized, Some(username));
        }
        let Ok(proof) = B64.decode(proof) else {
            return fail(Failure::IncorrectEncoding, None);
        };
        let Some(creds) = creds else {
            return fail(Failure::NotAuthorized, Some(username));
        };
        let keys = creds.keys(self.alg);
        let auth_message = format!("{auth_message_prefix},{without_proof}");
        let client_signature = self.alg.hmac(&keys.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return fail(Failure::NotAuthorized, Some(username));
        }
        let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(a, b)| a ^ b).collect();
        if !constant_time_eq(&self.alg.hash(&client_key), &keys.stored_key) {
            return fail(Failure::NotAuthorized, Some(username));
        }
        let server_signature = self.alg.hmac(&keys.server_key, auth_message.as_bytes());
        Step::Success { username, additional: format!("v={}", B64.encode(server_signature)).into_bytes() }
    }
}

/// RFC 5802 saslname: "=2C" is ',' and "=3D" is '='; any other '=' is malformed.
fn decode_saslname(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i + 1..i + 3) {
            Some("2C") => out.push(','),
            Some("3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::ScramKeys;

    fn creds(alg: HashAlg, salt_b64: &str) -> Credentials {
        let salt = B64.decode(salt_b64).unwrap();
        let k = ScramKeys::derive(alg, "pencil", &salt, 4096);
        Credentials { sha1: k.clone(), sha256: k }
    }

    fn run(mech: Mechanism, salt: &str, server_nonce: &str, first: &str, expect_challenge: &str, fin: &str) -> Step {
        let alg = if mech == Mechanism::ScramSha1 { HashAlg::Sha1 } else { HashAlg::Sha256 };
        let mut s = ScramServer::new(mech, ChannelBindings::default(), false).with_nonce(server_nonce);
        assert_eq!(s.respond(first.as_bytes()), Step::NeedCredentials("user".into()));
        assert_eq!(s.credentials(Some(creds(alg, salt))), Step::Challenge(expect_challenge.as_bytes().to_vec()));
        s.respond(fin.as_bytes())
    }

    #[test]
    fn rfc5802_sha1_vector() {
        let step = run(
            Mechanism::ScramSha1,
            "QSXCR+Q6sek8bf92",
            "3rfcNHYJY1ZVvWVs7j",
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        );
        assert_eq!(
            step,
            Step::Success { username: "user".into(), additional: b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=".to_vec() }
        );
    }

    #[test]
    fn rfc7677_sha256_vector() {
        let step = run(
            Mechanism::ScramSha256,
            "W22ZaJ0SNY7soEsUEjb6gQ==",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        );
        assert_eq!(
            step,
            Step::Success {
                username: "user".into(),
                additional: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec()
            }
        );
    }

    #[test]
    fn wrong_proof_and_unknown_user_fail_alike() {
        let step = run(
            Mechanism::ScramSha1,
            "QSXCR+Q6sek8bf92",
            "3rfcNHYJY1ZVvWVs7j",
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=AAX8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        );
        assert!(matches!(step, Step::Failure { failure: Failure::NotAuthorized, .. }));
        let mut s = ScramServer::new(Mechanism::ScramSha256, ChannelBindings::default(), false);
        s.respond(b"n,,n=ghost,r=abc");
        assert!(matches!(s.credentials(None), Step::Challenge(_)));
        assert!(matches!(s.respond(b"c=biws,r=x,p=AAAA"), Step::Failure { failure: Failure::NotAuthorized, .. }));
    }

    #[test]
    fn downgrade_is_detected() {
        let mut s = ScramServer::new(Mechanism::ScramSha256, ChannelBindings::default(), true);
        assert!(matches!(s.respond(b"y,,n=user,r=abc"), Step::Failure { failure: Failure::NotAuthorized, .. }));
        let mut s = ScramServer::new(Mechanism::ScramSha256, ChannelBindings::default(), false);
        assert!(matches!(s.respond(b"y,,n=user,r=abc"), Step::NeedCredentials(_)));
        // p= with a non-PLUS mechanism is malformed.
        let mut s = ScramServer::new(Mechanism::ScramSha256, ChannelBindings::default(), true);
        assert!(matches!(s.respond(b"p=tls-exporter,,n=user,r=abc"), Step::Failure { .. }));
    }

    #[test]
    fn plus_binds_to_the_channel() {
        let bindings = ChannelBindings { tls_exporter: Some(vec![7; 32]), tls_server_end_point: None };
        let c = creds(HashAlg::Sha256, "W22ZaJ0SNY7soEsUEjb6gQ==");
        // Compute a correct client proof for the bound exchange.
        let mut s = ScramServer::new(Mechanism::ScramSha256Plus, bindings, true).with_nonce("SN");
        assert!(matches!(s.respond(b"p=tls-exporter,,n=user,r=CN"), Step::NeedCredentials(_)));
        let Step::Challenge(server_first) = s.credentials(Some(c.clone())) else { panic!() };
        let server_first = String::from_utf8(server_first).unwrap();
        let mut cb = b"p=tls-exporter,,".to_vec();
        cb.extend_from_slice(&[7; 32]);
        let without_proof = format!("c={},r=CNSN", B64.encode(&cb));
        let auth = format!("n=user,r=CN,{server_first},{without_proof}");
        let salted = HashAlg::Sha256.salted_password(b"pencil", &B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap(), 4096);
        let ck = HashAlg::Sha256.hmac(&salted, b"Client Key");
        let sig = HashAlg::Sha256.hmac(&HashAlg::Sha256.hash(&ck), auth.as_bytes());
        let proof: Vec<u8> = ck.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let fin = format!("{without_proof},p={}", B64.encode(&proof));
        assert!(matches!(s.respond(fin.as_bytes()), Step::Success { .. }));
        // Same exchange with other channel data fails.
        let mut s = ScramServer::new(
            Mechanism::ScramSha256Plus,
            ChannelBindings { tls_exporter: Some(vec![8; 32]), tls_server_end_point: None },
            true,
        )
        .with_nonce("SN");
        s.respond(b"p=tls-exporter,,n=user,r=CN");
        s.credentials(Some(c));
        assert!(matches!(s.respond(fin.as_bytes()), Step::Failure { failure: Failure::NotAuthorized, .. }));
    }

    #[test]
    fn saslname() {
        assert_eq!(decode_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(decode_saslname("a=b"), None);
    }
}

//! JSON Web Keys (RFC 7517) as published at a provider's `jwks_uri`, and signature checks
//! with aws-lc-rs for the three algorithms amphi accepts: RS256, PS256 and ES256.
//!
//! Only asymmetric algorithms exist here: `none` and the HMAC family (`HS256`…) have no
//! [`Alg`] value, so a token naming them cannot reach a verification at all (the classic
//! "alg confusion" attack signs with the public key as an HMAC secret).

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;

/// A signature algorithm amphi verifies (JWA, RFC 7518 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Ps256,
    Es256,
}

impl Alg {
    pub fn parse(name: &str) -> Option<Alg> {
        match name {
            "RS256" => Some(Alg::Rs256),
            "PS256" => Some(Alg::Ps256),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Ps256 => "PS256",
            Alg::Es256 => "ES256",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Material {
    /// Modulus and exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An uncompressed P-256 point (0x04 ‖ x ‖ y).
    P256(Vec<u8>),
}

/// One usable public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The key's own `alg`, when the provider pins one.
    alg: Option<String>,
    material: Material,
}

/// A provider's key set. Keys amphi cannot use (encryption keys, other curves, symmetric
/// keys) are skipped, not errors: providers publish them beside their signing keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[derive(serde::Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl Jwks {
    /// Parse a JWK Set document.
    pub fn parse(json: &[u8]) -> Result<Jwks, String> {
        let raw: RawSet = serde_json::from_slice(json).map_err(|e| format!("not a JWK Set: {e}"))?;
        Ok(Jwks { keys: raw.keys.iter().filter_map(Jwk::from_json).collect() })
    }

    /// Keys that may have made a signature with `alg` under `kid`. With a `kid`, only keys
    /// of that id; without one, every key of the right type (providers with a single key
    /// often omit it).
    pub fn candidates<'a>(&'a self, alg: Alg, kid: Option<&'a str>) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys.iter().filter(move |k| k.fits(alg) && (kid.is_none() || k.kid.as_deref() == kid))
    }
}

fn field(v: &serde_json::Value, name: &str) -> Option<Vec<u8>> {
    B64URL.decode(v.get(name)?.as_str()?).ok()
}

fn strip_zeros(mut b: Vec<u8>) -> Vec<u8> {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.drain(..first);
    b
}

impl Jwk {
    fn from_json(v: &serde_json::Value) -> Option<Jwk> {
        if v.get("use").and_then(|u| u.as_str()).is_some_and(|u| u != "sig") {
            return None;
        }
        let material = match v.get("kty")?.as_str()? {
            "RSA" => {
                let (n, e) = (strip_zeros(field(v, "n")?), strip_zeros(field(v, "e")?));
                // Below 2048 bits is refused (aws-lc would refuse it at verification too).
                (n.len() >= 256 && !e.is_empty()).then_some(Material::Rsa { n, e })?
            }
            "EC" if v.get("crv")?.as_str()? == "P-256" => {
                let (x, y) = (field(v, "x")?, field(v, "y")?);
                (x.len() == 32 && y.len() == 32).then(|| Material::P256([&[4u8][..], &x, &y].concat()))?
            }
            _ => return None,
        };
        let text = |name| v.get(name).and_then(|s| s.as_str()).map(String::from);
        Some(Jwk { kid: text("kid"), alg: text("alg"), material })
    }

    fn fits(&self, alg: Alg) -> bool {
        let type_ok = match self.material {
            Material::Rsa { .. } => matches!(alg, Alg::Rs256 | Alg::Ps256),
            Material::P256(_) => alg == Alg::Es256,
        };
        type_ok && self.alg.as_deref().is_none_or(|a| a == alg.name())
    }

    /// Whether `sig` is this key's signature of `message` with `alg`.
    pub fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> bool {
        match (&self.material, alg) {
            (Material::Rsa { n, e }, Alg::Rs256 | Alg::Ps256) => {
                let params = if alg == Alg::Rs256 {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PSS_2048_8192_SHA256
                };
                RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }.verify(params, message, sig).is_ok()
            }
            (Material::P256(point), Alg::Es256) => {
                // JWS ES256 signatures are r ‖ s, 64 bytes (RFC 7518 §3.4): the FIXED format.
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(message, sig).is_ok()
            }
            _ => false,
        }
    }
}

//! Requests signed the way the `ollama` command line signs them with
//! `OLLAMA_AUTH=1` (Ollama's api/client.go and auth/auth.go):
//!
//! - the URL gets `?ts=<unix seconds>`;
//! - the challenge is `<METHOD>,<path>?ts=<ts>`, the path without any query;
//! - the header is `Authorization: <pubkey>:<signature>`, the pubkey being the
//!   base64 field of the key's `authorized_keys` line and the signature the
//!   standard base64 of the raw 64-byte ed25519 signature of the challenge.
//!
//! The signature covers the method, the path and the time, never the body
//! or any other query parameter. So a signed request must carry `ts` as its
//! only query parameter: anything else would be unsigned and could be
//! changed on the way. Parsing and checking here, lookups in `auth.rs`.

use crate::domain::ssh_key::SshPublicKey;
use actix_web::HttpMessage;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// An Authorization header of the signed form, not yet verified.
#[derive(Debug)]
pub struct SignedHeader {
    pub public_key: SshPublicKey,
    signature: [u8; 64],
}

/// Why a signed request is refused. The messages say what the caller must
/// fix and nothing about which part of a forged signature was wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignedError {
    #[error("signed request: the signature is not valid base64 of an ed25519 signature")]
    Encoding,
    #[error("signed request: missing the ts query parameter")]
    MissingTs,
    #[error("signed request: ts appears more than once")]
    DuplicateTs,
    #[error("signed request: ts must be unix seconds (digits only)")]
    BadTs,
    #[error("signed request: only the ts query parameter is allowed (the signature does not cover others)")]
    OtherParameter,
    #[error("signed request: ts is more than {0} seconds away from the gate's clock (check the clock)")]
    Stale(u64),
    #[error("signed request: the signature does not match")]
    BadSignature,
    #[error("signed request: this signature was already used (each signed request is accepted once)")]
    Replayed,
    #[error("signed request: this public key is not registered")]
    UnknownKey,
}

impl SignedHeader {
    /// `Some` when `value` has the signed form: the base64 of an
    /// ssh-ed25519 wire blob, a colon, and something after it. An `sk-og-`
    /// key never has it. The part after the colon is checked here too, so a
    /// header meant as a signature is never mistaken for a key.
    pub fn detect(value: &str) -> Option<Result<SignedHeader, SignedError>> {
        let (key, signature) = value.trim().split_once(':')?;
        let public_key = SshPublicKey::from_base64(key).ok()?;
        Some(decode_signature(signature).map(|signature| SignedHeader { public_key, signature }))
    }

    /// The hash kept in `used_signatures`: a signature is accepted once.
    pub fn replay_hash(&self) -> String {
        hex(&Sha256::digest(self.signature))
    }

    /// Verifies the signature over the challenge the client built.
    pub fn verify(&self, challenge: &str) -> Result<(), SignedError> {
        let key = VerifyingKey::from_bytes(&self.public_key.key).map_err(|_| SignedError::BadSignature)?;
        let signature = Signature::from_bytes(&self.signature);
        key.verify_strict(challenge.as_bytes(), &signature).map_err(|_| SignedError::BadSignature)
    }
}

/// Marks a request as authenticated by its signature, for `plan.rs`, which
/// takes `ts` out of the query that goes upstream.
#[derive(Debug, Clone, Copy)]
struct WasSigned;

pub fn mark_signed(req: &actix_web::HttpRequest) {
    req.extensions_mut().insert(WasSigned);
}

pub fn was_signed(req: &actix_web::HttpRequest) -> bool {
    req.extensions().contains::<WasSigned>()
}

fn decode_signature(text: &str) -> Result<[u8; 64], SignedError> {
    let bytes = STANDARD.decode(text).map_err(|_| SignedError::Encoding)?;
    bytes.try_into().map_err(|_| SignedError::Encoding)
}

/// The `ts` of a raw query string, which must be exactly `ts=<digits>`.
/// Names are compared undecoded: `t%73` is another parameter, refused.
pub fn timestamp(query: &str) -> Result<i64, SignedError> {
    let mut found = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != "ts" {
            return Err(SignedError::OtherParameter);
        }
        if found.replace(value).is_some() {
            return Err(SignedError::DuplicateTs);
        }
    }
    let ts = found.ok_or(SignedError::MissingTs)?;
    if ts.is_empty() || ts.len() > 18 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignedError::BadTs);
    }
    ts.parse().map_err(|_| SignedError::BadTs)
}

/// `ts` within `window` seconds of `now`, either way.
pub fn check_fresh(ts: i64, now: i64, window: u64) -> Result<(), SignedError> {
    if now.abs_diff(ts) > window {
        return Err(SignedError::Stale(window));
    }
    Ok(())
}

/// What the client signed: `<METHOD>,<path>?ts=<ts>`, the path as received.
pub fn challenge(method: &str, path: &str, ts: i64) -> String {
    format!("{method},{path}?ts={ts}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with Python's `cryptography` (independently of this code):
    // Ed25519PrivateKey.from_private_bytes(b"\x01" * 32), its
    // public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH), and
    // base64(sign(b"POST,/api/generate?ts=1700000000")).
    const PUBKEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c";
    const SIGNATURE: &str =
        "QwMbGYk3IRAkSgsSC5bsuIW2RvBhFsZ3tDZeGOEbzzA1+pogrsqvrtJUZ4/qqlAUi6dyC4w08IYXaOkxEVFVBw==";
    /// The same challenge signed by the seed 0x02 * 32.
    const OTHER_SIGNATURE: &str =
        "h/XXLVSlLe/G501La0vNQ8HkMgY9rgtNXp3Jg7fj4fYhFZ0yN9/tvbUd1RvBBTk04BM/3+q+rIsM/9+7OjcDCg==";

    fn header(value: &str) -> SignedHeader {
        SignedHeader::detect(value).expect("signed form").expect("decodes")
    }

    #[test]
    fn the_fixed_vector_verifies_and_nothing_else_does() {
        let signed = header(&format!("{PUBKEY}:{SIGNATURE}"));
        assert_eq!(signed.verify(&challenge("POST", "/api/generate", 1_700_000_000)), Ok(()));
        for other in [
            challenge("GET", "/api/generate", 1_700_000_000),
            challenge("POST", "/api/tags", 1_700_000_000),
            challenge("POST", "/api/generate", 1_700_000_001),
            challenge("post", "/api/generate", 1_700_000_000),
            challenge("POST", "/api/generate/", 1_700_000_000),
        ] {
            assert_eq!(signed.verify(&other), Err(SignedError::BadSignature), "{other}");
        }
        let wrong_key = header(&format!("{PUBKEY}:{OTHER_SIGNATURE}"));
        assert_eq!(
            wrong_key.verify(&challenge("POST", "/api/generate", 1_700_000_000)),
            Err(SignedError::BadSignature)
        );
    }

    #[test]
    fn a_signature_made_here_verifies_like_the_clients() {
        use ed25519_dalek::{Signer, SigningKey};
        let signer = SigningKey::from_bytes(&[1; 32]);
        assert_eq!(crate::domain::ssh_key::wire_blob(signer.verifying_key().as_bytes()), {
            STANDARD.decode(PUBKEY).unwrap()
        });
        let sig = signer.sign(b"POST,/api/generate?ts=1700000000");
        assert_eq!(STANDARD.encode(sig.to_bytes()), SIGNATURE);
    }

    #[test]
    fn only_the_signed_form_is_detected() {
        assert!(SignedHeader::detect("sk-og-abc").is_none());
        assert!(SignedHeader::detect("sk-og-abc:def").is_none());
        assert!(SignedHeader::detect(PUBKEY).is_none());
        assert!(SignedHeader::detect(&format!("{}:{SIGNATURE}", &PUBKEY[..40])).is_none());
        assert!(SignedHeader::detect("::").is_none());
        assert!(SignedHeader::detect("").is_none());
        for bad in ["", "!!!", "QUJD", &SIGNATURE[..40], &format!("{SIGNATURE}AA==")] {
            let detected = SignedHeader::detect(&format!("{PUBKEY}:{bad}"));
            assert!(matches!(detected, Some(Err(SignedError::Encoding))), "{bad}");
        }
        // A second colon is part of the signature: not base64.
        assert!(matches!(
            SignedHeader::detect(&format!("{PUBKEY}:{SIGNATURE}:x")),
            Some(Err(SignedError::Encoding))
        ));
    }

    #[test]
    fn the_query_must_be_exactly_one_numeric_ts() {
        assert_eq!(timestamp("ts=1700000000"), Ok(1_700_000_000));
        assert_eq!(timestamp(""), Err(SignedError::MissingTs));
        assert_eq!(timestamp("ts=1&ts=1"), Err(SignedError::DuplicateTs));
        assert_eq!(timestamp("ts=1&ts=2"), Err(SignedError::DuplicateTs));
        for bad in ["ts=", "ts", "ts=-1", "ts=+1", "ts=1.5", "ts=1e9", "ts=%31", "ts=１", "ts= 1"] {
            assert_eq!(timestamp(bad), Err(SignedError::BadTs), "{bad}");
        }
        assert_eq!(timestamp("ts=9999999999999999999999"), Err(SignedError::BadTs));
        for other in ["ts=1&model=x", "api_key=x&ts=1", "t%73=1", "TS=1", "ts=1&=", "ts=1;x=2"] {
            assert_ne!(timestamp(other), Ok(1), "{other}");
        }
        assert_eq!(timestamp("ts=1&"), Ok(1));
    }

    #[test]
    fn ts_is_fresh_within_the_window_both_ways() {
        assert_eq!(check_fresh(1000, 1000, 300), Ok(()));
        assert_eq!(check_fresh(700, 1000, 300), Ok(()));
        assert_eq!(check_fresh(1300, 1000, 300), Ok(()));
        assert_eq!(check_fresh(699, 1000, 300), Err(SignedError::Stale(300)));
        assert_eq!(check_fresh(1301, 1000, 300), Err(SignedError::Stale(300)));
        assert_eq!(check_fresh(i64::MAX, 0, 300), Err(SignedError::Stale(300)));
    }

    #[test]
    fn replay_hashes_differ_per_signature() {
        let a = header(&format!("{PUBKEY}:{SIGNATURE}"));
        let b = header(&format!("{PUBKEY}:{OTHER_SIGNATURE}"));
        assert_ne!(a.replay_hash(), b.replay_hash());
        assert_eq!(a.replay_hash().len(), 64);
    }
}

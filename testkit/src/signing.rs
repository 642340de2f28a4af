//! Requests signed as the `ollama` command line signs them with
//! OLLAMA_AUTH=1: Ollama's api/client.go (`do`, `stream`) and auth/auth.go
//! (`Sign`), mirrored step by step.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer as _, SigningKey};

/// An `~/.ollama/id_ed25519` as the client holds it.
pub struct OllamaKey(SigningKey);

impl OllamaKey {
    pub fn new(seed: u8) -> OllamaKey {
        OllamaKey(SigningKey::from_bytes(&[seed; 32]))
    }

    /// The base64 field of the authorized_keys line: the SSH wire blob.
    pub fn public_base64(&self) -> String {
        let mut blob = Vec::new();
        blob.extend_from_slice(&11u32.to_be_bytes());
        blob.extend_from_slice(b"ssh-ed25519");
        blob.extend_from_slice(&32u32.to_be_bytes());
        blob.extend_from_slice(self.0.verifying_key().as_bytes());
        STANDARD.encode(blob)
    }

    pub fn pub_line(&self) -> String {
        format!("ssh-ed25519 {} someone@laptop\n", self.public_base64())
    }

    /// auth.Sign: `<pubkey>:<base64 of the raw signature>`.
    pub fn sign(&self, challenge: &str) -> String {
        let signature = self.0.sign(challenge.as_bytes());
        format!("{}:{}", self.public_base64(), STANDARD.encode(signature.to_bytes()))
    }

    /// client.go: the challenge `METHOD,path?ts=now`, the URL with `?ts=now`,
    /// and the Authorization header. Returns (path and query, header).
    pub fn request(&self, method: &str, path: &str, ts: i64) -> (String, String) {
        let header = self.sign(&format!("{method},{path}?ts={ts}"));
        (format!("{path}?ts={ts}"), header)
    }
}

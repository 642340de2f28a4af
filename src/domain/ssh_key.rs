//! An ed25519 public key as OpenSSH writes it: the line of an `id_ed25519.pub`
//! file (`ssh-ed25519 AAAA... comment`), whose base64 field is the SSH wire
//! blob: string "ssh-ed25519", then string(32-byte key), each string a
//! big-endian u32 length and its bytes. The `ollama` command line signs with
//! such a key (`~/.ollama/id_ed25519`) and sends that base64 field.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};

const KEY_TYPE: &str = "ssh-ed25519";
/// 4 + 11 bytes of type, 4 + 32 bytes of key.
const BLOB_LEN: usize = 4 + KEY_TYPE.len() + 4 + 32;
/// The longest comment kept; a `.pub` line's comment is a `user@host`.
const MAX_COMMENT: usize = 200;

/// A parsed ed25519 public key with its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshPublicKey {
    /// The base64 field exactly as OpenSSH writes it (standard base64):
    /// what the `ollama` client sends and what is stored and looked up.
    pub base64: String,
    pub key: [u8; 32],
    pub comment: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SshKeyError {
    #[error("public key is empty: paste the line of ~/.ollama/id_ed25519.pub")]
    Empty,
    #[error("only ssh-ed25519 public keys are accepted, not '{0}'")]
    KeyType(String),
    #[error("public key is not valid base64")]
    Base64,
    #[error("public key has the wrong length for an ssh-ed25519 key")]
    Length,
    #[error("public key says it is an ssh-ed25519 key but its contents are not one")]
    InnerType,
    #[error("public key comment is longer than {MAX_COMMENT} characters or holds control characters")]
    Comment,
}

impl SshPublicKey {
    /// Parses a `.pub` line as pasted (`ssh-ed25519 AAAA... comment`, any
    /// surrounding whitespace) or the bare base64 field.
    pub fn parse_line(line: &str) -> Result<Self, SshKeyError> {
        let mut fields = line.split_ascii_whitespace();
        let first = fields.next().ok_or(SshKeyError::Empty)?;
        let (blob, rest): (&str, Vec<&str>) = if first.starts_with("AAAA") {
            (first, fields.collect())
        } else if first == KEY_TYPE {
            (fields.next().ok_or(SshKeyError::Base64)?, fields.collect())
        } else {
            let shown: String = first.chars().take(40).filter(|c| !c.is_control()).collect();
            return Err(SshKeyError::KeyType(shown));
        };
        let mut key = Self::from_base64(blob)?;
        let comment = rest.join(" ");
        if comment.chars().count() > MAX_COMMENT || comment.chars().any(char::is_control) {
            return Err(SshKeyError::Comment);
        }
        key.comment = (!comment.is_empty()).then_some(comment);
        Ok(key)
    }

    /// The base64 field alone, as the `ollama` client sends it before the
    /// `:` of its Authorization header: standard base64 (a 51-byte blob has
    /// no padding), so one key has one spelling to look up.
    pub fn from_base64(field: &str) -> Result<Self, SshKeyError> {
        let blob = STANDARD.decode(field).map_err(|_| SshKeyError::Base64)?;
        let key = key_of_blob(&blob)?;
        Ok(SshPublicKey { base64: STANDARD.encode(&blob), key, comment: None })
    }

    /// As `ssh-keygen -l` shows it: `SHA256:` and the unpadded base64 of the
    /// SHA-256 of the wire blob.
    pub fn fingerprint(&self) -> String {
        let blob = wire_blob(&self.key);
        format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
    }

    /// The `authorized_keys` line: type, base64 and the comment if any.
    pub fn line(&self) -> String {
        match &self.comment {
            Some(c) => format!("{KEY_TYPE} {} {c}", self.base64),
            None => format!("{KEY_TYPE} {}", self.base64),
        }
    }
}

/// The 32-byte key of a wire blob, which must hold exactly one ssh-ed25519 key.
fn key_of_blob(blob: &[u8]) -> Result<[u8; 32], SshKeyError> {
    if blob.len() != BLOB_LEN {
        return Err(SshKeyError::Length);
    }
    let (type_len, rest) = blob.split_at(4);
    if type_len != (KEY_TYPE.len() as u32).to_be_bytes() {
        return Err(SshKeyError::InnerType);
    }
    let (kind, rest) = rest.split_at(KEY_TYPE.len());
    if kind != KEY_TYPE.as_bytes() {
        return Err(SshKeyError::InnerType);
    }
    let (key_len, key) = rest.split_at(4);
    if key_len != 32u32.to_be_bytes() {
        return Err(SshKeyError::Length);
    }
    key.try_into().map_err(|_| SshKeyError::Length)
}

/// The SSH wire blob of an ed25519 key.
pub fn wire_blob(key: &[u8; 32]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(BLOB_LEN);
    blob.extend_from_slice(&(KEY_TYPE.len() as u32).to_be_bytes());
    blob.extend_from_slice(KEY_TYPE.as_bytes());
    blob.extend_from_slice(&32u32.to_be_bytes());
    blob.extend_from_slice(key);
    blob
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made with Python's `cryptography`: the key of the seed 0x01 * 32,
    /// `public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)`, and its
    /// fingerprint as `ssh-keygen -l` computes it.
    const LINE: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c";
    const FINGERPRINT: &str = "SHA256:fe85JkIjo8VPe+XqXJGH5Mau1EMFdK1OdKvJUFicyA8";

    #[test]
    fn a_pub_line_parses_with_its_comment_and_fingerprint() {
        let key = SshPublicKey::parse_line(&format!("  {LINE}  alice@laptop \n")).unwrap();
        assert_eq!(key.base64, LINE.split(' ').nth(1).unwrap());
        assert_eq!(key.comment.as_deref(), Some("alice@laptop"));
        assert_eq!(key.fingerprint(), FINGERPRINT);
        assert_eq!(key.line(), format!("{LINE} alice@laptop"));
        assert_eq!(wire_blob(&key.key), STANDARD.decode(&key.base64).unwrap());
    }

    #[test]
    fn the_bare_base64_field_parses() {
        let field = LINE.split(' ').nth(1).unwrap();
        let key = SshPublicKey::parse_line(field).unwrap();
        assert_eq!(key.base64, field);
        assert_eq!(key.comment, None);
    }

    #[test]
    fn other_key_types_and_damaged_keys_are_refused() {
        let field = LINE.split(' ').nth(1).unwrap();
        assert_eq!(SshPublicKey::parse_line(""), Err(SshKeyError::Empty));
        assert_eq!(SshPublicKey::parse_line(" \n\t"), Err(SshKeyError::Empty));
        assert!(matches!(
            SshPublicKey::parse_line(&format!("ssh-rsa {field}")),
            Err(SshKeyError::KeyType(t)) if t == "ssh-rsa"
        ));
        assert!(matches!(
            SshPublicKey::parse_line(&format!("SSH-ED25519 {field}")),
            Err(SshKeyError::KeyType(_))
        ));
        assert_eq!(SshPublicKey::parse_line("ssh-ed25519"), Err(SshKeyError::Base64));
        assert_eq!(SshPublicKey::parse_line("ssh-ed25519 AAAA!!!"), Err(SshKeyError::Base64));
        // URL-safe base64 is not how OpenSSH writes it.
        let url_safe = field.replace('/', "_");
        assert_eq!(SshPublicKey::from_base64(&url_safe), Err(SshKeyError::Base64));
        // Too short and too long.
        let blob = STANDARD.decode(field).unwrap();
        assert_eq!(SshPublicKey::from_base64(&STANDARD.encode(&blob[..40])), Err(SshKeyError::Length));
        let mut long = blob.clone();
        long.push(0);
        assert_eq!(SshPublicKey::from_base64(&STANDARD.encode(&long)), Err(SshKeyError::Length));
        // An ssh-ed25519 line whose blob holds another type of the same length.
        let mut other = blob.clone();
        other[4..15].copy_from_slice(b"ssh-ed25518");
        assert_eq!(
            SshPublicKey::parse_line(&format!("ssh-ed25519 {}", STANDARD.encode(&other))),
            Err(SshKeyError::InnerType)
        );
        let mut wrong_len = blob;
        wrong_len[18] = 31;
        assert_eq!(SshPublicKey::from_base64(&STANDARD.encode(&wrong_len)), Err(SshKeyError::Length));
    }

    #[test]
    fn comments_with_control_characters_are_refused() {
        assert_eq!(SshPublicKey::parse_line(&format!("{LINE} a\u{7}b")), Err(SshKeyError::Comment));
        let long = "x".repeat(MAX_COMMENT + 1);
        assert_eq!(SshPublicKey::parse_line(&format!("{LINE} {long}")), Err(SshKeyError::Comment));
    }
}

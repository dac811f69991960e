//! Vendor credentials, and the `secrets` of resource bodies, encrypted at rest.
//!
//! A backend given a [`CredentialKey`] seals the [`Credentials`] of every account it writes
//! and opens them on read, so the stored record holds the account's ids in the clear (the
//! indexes need them) and its tokens only as ciphertext. The AEAD is XChaCha20-Poly1305 with a
//! fresh random 192-bit nonce per write; the account id, user and vendor are authenticated as
//! associated data, so sealed credentials copied onto another account do not open.
//!
//! Only the Redis backend seals: the memory backend keeps nothing at rest, and its key would
//! sit in the same process memory as the plaintext it protected.
//!
//! Stored form: `{"userId", "vendor", "accountId", "sealedCredentials": base64(nonce ||
//! ciphertext)}`. A record written before a key was configured (plain `credentials`) is still
//! read; the next write seals it.
//!
//! Resources ([`ResourceRecord`]) keep whatever must not be readable at rest under the body's
//! [`SECRETS_FIELD`] member (webhook secrets, for one); a backend with a key stores it as
//! `sealedSecrets` (authenticated with the resource's kind and id) and puts it back on read.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use oemgate_core::{AccountRef, Credentials};
use serde::{Deserialize, Serialize};

use crate::error::{StoreError, StoreResult};
use crate::traits::ResourceRecord;

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// A 256-bit key for sealing credentials. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialKey([u8; KEY_LEN]);

impl std::fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialKey(<redacted>)")
    }
}

/// Why a configured key is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not base64.
    #[error("it is not valid base64")]
    NotBase64,
    /// Base64 of the wrong length.
    #[error("it decodes to {0} bytes, not {KEY_LEN}")]
    WrongLength(usize),
}

impl CredentialKey {
    /// A key from its standard base64 form (44 characters for 32 bytes).
    pub fn from_base64(encoded: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD.decode(encoded.trim()).map_err(|_| KeyError::NotBase64)?;
        let key: [u8; KEY_LEN] =
            bytes.as_slice().try_into().map_err(|_| KeyError::WrongLength(bytes.len()))?;
        Ok(Self(key))
    }

    /// A fresh random key (the demo makes one per run).
    pub fn generate() -> Self {
        Self(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// The key in standard base64, as `store.encryption_key` takes it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }
}

/// An account as stored with a key: ids in the clear, credentials sealed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SealedAccount {
    user_id: String,
    vendor: String,
    account_id: String,
    sealed_credentials: String,
}

/// What an account record holds: sealed or (written without a key) plain.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum StoredAccount {
    Sealed(SealedAccount),
    Plain(AccountRef),
}

impl StoredAccount {
    /// The owning user, readable without the key.
    pub(crate) fn user_id(&self) -> &str {
        match self {
            StoredAccount::Sealed(sealed) => &sealed.user_id,
            StoredAccount::Plain(account) => &account.user_id,
        }
    }
}

fn associated_data(user_id: &str, vendor: &str, account_id: &str) -> Vec<u8> {
    format!("oemgate-account\0{account_id}\0{user_id}\0{vendor}").into_bytes()
}

/// Seals `plain` under `key` with `aad` authenticated: base64(nonce || ciphertext).
fn seal_bytes(key: &CredentialKey, what: &str, aad: &[u8], plain: &[u8]) -> StoreResult<String> {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let sealed = key
        .cipher()
        .encrypt(&nonce, Payload { msg: plain, aad })
        .map_err(|_| StoreError::corrupt(what, "a secret could not be encrypted"))?;
    let mut bytes = nonce.to_vec();
    bytes.extend_from_slice(&sealed);
    Ok(STANDARD.encode(bytes))
}

/// Opens what [`seal_bytes`] sealed with the same key and `aad`.
fn open_bytes(key: &CredentialKey, what: &str, aad: &[u8], sealed: &str) -> StoreResult<Vec<u8>> {
    let undecryptable =
        || StoreError::corrupt(what, "secrets do not decrypt with the configured key");
    let bytes = STANDARD.decode(sealed).map_err(|_| undecryptable())?;
    if bytes.len() < NONCE_LEN {
        return Err(undecryptable());
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    key.cipher()
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad })
        .map_err(|_| undecryptable())
}

/// Seals an account's credentials under `key`. `what` names the record in errors.
pub(crate) fn seal(
    key: &CredentialKey,
    what: &str,
    account: &AccountRef,
) -> StoreResult<SealedAccount> {
    let plain =
        serde_json::to_vec(&account.credentials).map_err(|e| StoreError::corrupt(what, e))?;
    let aad = associated_data(&account.user_id, &account.vendor, &account.account_id);
    Ok(SealedAccount {
        user_id: account.user_id.clone(),
        vendor: account.vendor.clone(),
        account_id: account.account_id.clone(),
        sealed_credentials: seal_bytes(key, what, &aad, &plain)?,
    })
}

/// Opens a stored account. Sealed credentials need the key they were sealed with.
pub(crate) fn open(
    key: Option<&CredentialKey>,
    what: &str,
    stored: StoredAccount,
) -> StoreResult<AccountRef> {
    let sealed = match stored {
        StoredAccount::Plain(account) => return Ok(account),
        StoredAccount::Sealed(sealed) => sealed,
    };
    let Some(key) = key else {
        return Err(StoreError::corrupt(
            what,
            "credentials are encrypted and no store encryption key is configured",
        ));
    };
    let aad = associated_data(&sealed.user_id, &sealed.vendor, &sealed.account_id);
    let plain = open_bytes(key, what, &aad, &sealed.sealed_credentials)?;
    let credentials: Credentials =
        serde_json::from_slice(&plain).map_err(|e| StoreError::corrupt(what, e))?;
    Ok(AccountRef {
        user_id: sealed.user_id,
        vendor: sealed.vendor,
        account_id: sealed.account_id,
        credentials,
    })
}

/// The member of a resource body that backends with a key keep sealed at rest.
pub const SECRETS_FIELD: &str = "secrets";
/// Where the sealed form of [`SECRETS_FIELD`] is stored.
const SEALED_SECRETS_FIELD: &str = "sealedSecrets";

fn resource_associated_data(kind: &str, id: &str) -> Vec<u8> {
    format!("oemgate-resource\0{kind}\0{id}").into_bytes()
}

/// Replaces the body's `secrets` member by its sealed form (nothing to do without a key or
/// without secrets). The kind and id are authenticated: sealed secrets moved onto another
/// resource do not open.
pub(crate) fn seal_resource_secrets(
    key: Option<&CredentialKey>,
    what: &str,
    resource: &mut ResourceRecord,
) -> StoreResult<()> {
    let (Some(key), Some(body)) = (key, resource.body.as_object_mut()) else { return Ok(()) };
    let Some(secrets) = body.remove(SECRETS_FIELD) else { return Ok(()) };
    let plain = serde_json::to_vec(&secrets).map_err(|e| StoreError::corrupt(what, e))?;
    let aad = resource_associated_data(&resource.kind, &resource.id);
    let sealed = seal_bytes(key, what, &aad, &plain)?;
    body.insert(SEALED_SECRETS_FIELD.into(), serde_json::Value::String(sealed));
    Ok(())
}

/// Puts the opened `secrets` member back into a body read from the store.
pub(crate) fn open_resource_secrets(
    key: Option<&CredentialKey>,
    what: &str,
    resource: &mut ResourceRecord,
) -> StoreResult<()> {
    let aad = resource_associated_data(&resource.kind, &resource.id);
    let Some(body) = resource.body.as_object_mut() else { return Ok(()) };
    let Some(sealed) = body.remove(SEALED_SECRETS_FIELD) else { return Ok(()) };
    let Some(key) = key else {
        return Err(StoreError::corrupt(
            what,
            "secrets are encrypted and no store encryption key is configured",
        ));
    };
    let sealed = sealed.as_str().ok_or_else(|| StoreError::corrupt(what, "sealed secrets"))?;
    let plain = open_bytes(key, what, &aad, sealed)?;
    let secrets = serde_json::from_slice(&plain).map_err(|e| StoreError::corrupt(what, e))?;
    body.insert(SECRETS_FIELD.into(), secrets);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountRef {
        AccountRef {
            user_id: "u".into(),
            vendor: "TESLA".into(),
            account_id: "tesla:1".into(),
            credentials: Credentials {
                access_token: "secret-access".into(),
                refresh_token: Some("secret-refresh".into()),
                ..Credentials::default()
            },
        }
    }

    #[test]
    fn round_trips_and_hides_the_tokens() {
        let key = CredentialKey::generate();
        let sealed = seal(&key, "k", &account()).unwrap();
        let json = serde_json::to_string(&sealed).unwrap();
        assert!(!json.contains("secret-access") && !json.contains("secret-refresh"), "{json}");
        let stored: StoredAccount = serde_json::from_str(&json).unwrap();
        assert_eq!(open(Some(&key), "k", stored).unwrap(), account());
    }

    #[test]
    fn wrong_key_missing_key_and_moved_ciphertext_fail() {
        let key = CredentialKey::generate();
        let json = serde_json::to_string(&seal(&key, "k", &account()).unwrap()).unwrap();
        let read = || serde_json::from_str::<StoredAccount>(&json).unwrap();
        let other = CredentialKey::generate();
        assert!(matches!(open(Some(&other), "k", read()), Err(StoreError::Corrupt { .. })));
        assert!(matches!(open(None, "k", read()), Err(StoreError::Corrupt { .. })));
        let moved = json.replace("tesla:1", "tesla:2");
        let moved: StoredAccount = serde_json::from_str(&moved).unwrap();
        assert!(matches!(open(Some(&key), "k", moved), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn keys_parse_from_base64_and_never_print() {
        let key = CredentialKey::generate();
        assert_eq!(CredentialKey::from_base64(&key.to_base64()).unwrap(), key);
        assert_eq!(CredentialKey::from_base64("not base64!"), Err(KeyError::NotBase64));
        assert_eq!(CredentialKey::from_base64("AAAA"), Err(KeyError::WrongLength(3)));
        assert!(!format!("{key:?}").contains(&key.to_base64()));
    }

    #[test]
    fn plain_records_are_still_read() {
        let json = serde_json::to_string(&account()).unwrap();
        let stored: StoredAccount = serde_json::from_str(&json).unwrap();
        assert_eq!(open(None, "k", stored).unwrap(), account());
    }
}

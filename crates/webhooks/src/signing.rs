//! Delivery signatures: `x-enode-signature: sha1=<lowercase hex of HMAC-SHA1(secret, body)>`.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-enode-signature";
/// The header carrying the delivery id.
pub const DELIVERY_HEADER: &str = "x-enode-delivery";

/// The signature header value of `body` under `secret`: `sha1=` and 40 lowercase hex digits.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length, so this never fails; were it to, the empty signature
    // would verify nothing.
    let Ok(mut mac) = <Hmac<Sha1> as Mac>::new_from_slice(secret) else { return String::new() };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(5 + 40);
    out.push_str("sha1=");
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// Whether `signature` (a header value) is the signature of `body` under `secret`, compared
/// in constant time (what a receiver does; the tests use it too).
pub fn verify(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let expected = sign(secret, body);
    let (a, b) = (expected.as_bytes(), signature.trim().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector Enode publishes with its webhook documentation.
    #[test]
    fn matches_the_published_test_vector() {
        assert_eq!(
            sign(b"example-secret", br#"{"payload":"example"}"#),
            "sha1=e417e6fc2e7f8a78c93a35a7b344d36ce179fc8d"
        );
    }

    /// RFC 2202 test case 2 for HMAC-SHA1.
    #[test]
    fn matches_rfc_2202() {
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn verification_rejects_other_bodies_secrets_and_garbage() {
        let body = br#"[{"event":"enode:webhook:test"}]"#;
        let signature = sign(b"s3cret", body);
        assert!(verify(b"s3cret", body, &signature));
        assert!(!verify(b"s3cret!", body, &signature));
        assert!(!verify(b"s3cret", b"[]", &signature));
        assert!(!verify(b"s3cret", body, "sha1=00"));
        assert!(!verify(b"s3cret", body, ""));
    }
}

//! The RSA key inside a PKCS#8 `PrivateKeyInfo` (RFC 5208) holding an
//! `RSAPrivateKey` (RFC 8017 A.1.2): the few DER elements a Google key file
//! has, read by hand. The `rsa` crate's own PKCS#8 decoder (the `der`,
//! `pkcs8`, `pkcs1` and `spki` crates) weighs about 19 KB of module, which
//! the AWS federation source needed more. Every length is checked; a key
//! that does not fit this shape is `None`, never a panic.

use rsa::{BigUint, RsaPrivateKey};

/// `rsaEncryption`, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OBJECT_IDENTIFIER: u8 = 0x06;

/// The first element of `input` if its tag is `tag`: its contents, and the
/// bytes after it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // Long form: 1 to 4 length bytes (a key is a few KB).
        let count = usize::from(first & 0x7f);
        let bytes = rest.get(..count).filter(|b| (1..=4).contains(&b.len()))?;
        let length = bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
        (length, rest.get(count..)?)
    };
    (found == tag).then_some(())?;
    Some((rest.get(..length)?, rest.get(length..)?))
}

/// The private key in a PKCS#8 DER document, if it is an RSA key the
/// `rsa` crate accepts (it checks the numbers fit together).
pub fn rsa_private_key(der: &[u8]) -> Option<RsaPrivateKey> {
    let (info, _) = element(der, SEQUENCE)?;
    let (_version, rest) = element(info, INTEGER)?;
    let (algorithm, rest) = element(rest, SEQUENCE)?;
    let (oid, _) = element(algorithm, OBJECT_IDENTIFIER)?;
    if oid != RSA_ENCRYPTION {
        return None;
    }
    let (key, _) = element(rest, OCTET_STRING)?;
    let (mut fields, _) = element(key, SEQUENCE)?;
    // version, n, e, d, p, q (the CRT values after them are recomputed).
    let mut numbers = Vec::with_capacity(6);
    for _ in 0..6 {
        let (number, rest) = element(fields, INTEGER)?;
        numbers.push(BigUint::from_bytes_be(number));
        fields = rest;
    }
    let mut numbers = numbers.into_iter().skip(1);
    let (n, e, d) = (numbers.next()?, numbers.next()?, numbers.next()?);
    RsaPrivateKey::from_components(n, e, d, numbers.collect()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePrivateKey;

    const KEY: &str =
        include_str!("../../../integration/emulator/src/testdata/service-account-key.pem");

    fn der() -> Vec<u8> {
        crate::service_account::pem_body(KEY).unwrap()
    }

    #[test]
    fn reads_the_same_key_as_the_rsa_crates_decoder() {
        let ours = rsa_private_key(&der()).unwrap();
        let theirs = RsaPrivateKey::from_pkcs8_der(&der()).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn every_cut_or_flipped_byte_is_none_or_a_valid_key_never_a_panic() {
        let der = der();
        for cut in 0..der.len() {
            assert!(rsa_private_key(&der[..cut]).is_none(), "cut at {cut}");
        }
        // The header bytes: tags and lengths.
        for at in 0..40 {
            let mut bad = der.clone();
            bad[at] ^= 0x41;
            let _ = rsa_private_key(&bad);
        }
        let mut other_algorithm = der.clone();
        let at = der
            .windows(RSA_ENCRYPTION.len())
            .position(|w| w == RSA_ENCRYPTION)
            .unwrap();
        other_algorithm[at + 8] = 0x0b;
        assert!(rsa_private_key(&other_algorithm).is_none());
    }
}

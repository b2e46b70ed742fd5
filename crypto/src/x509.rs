//! X.509 glue: SM2 algorithm identifiers, SPKI, the signer that makes x509-cert's builders emit DER
//! signatures, and verification of an SM2 signature over the exact received TBS bytes of a certificate, CSR,
//! CRL or OCSP `BasicOCSPResponse`.

use der::asn1::BitStringRef;
use der::{Decode, Encode, Reader, SliceReader};
use spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

use crate::sm2::{CertId, Sm2PublicKey, Sm2Signature, Sm2Signer};
use crate::{Error, KeyError};

/// Object identifiers (GM/T 0006, RFC 5480).
pub mod oid {
    use der::asn1::ObjectIdentifier;

    /// id-ecPublicKey (RFC 5480).
    pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    /// The SM2 curve, `sm2p256v1`.
    pub const SM2_CURVE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301");
    /// SM2 encryption.
    pub const SM2_ENCRYPTION: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.156.10197.1.301.3");
    /// SM2-with-SM3 signature.
    pub const SM2_WITH_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
    /// SM3 hash.
    pub const SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.401");
    /// SM4-CBC.
    pub const SM4_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.104.2");
}

/// The SM2-with-SM3 signature algorithm identifier (parameters absent, as GM/T 0015 writes it).
pub fn sm2_with_sm3() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: oid::SM2_WITH_SM3,
        parameters: None,
    }
}

/// Largest signed object accepted for verification.
pub const MAX_SIGNED_DER: usize = 1024 * 1024;

/// Parse an SPKI DER holding an SM2 public key.
pub fn public_key_from_spki_der(der_bytes: &[u8]) -> Result<Sm2PublicKey, Error> {
    let spki = SubjectPublicKeyInfoRef::from_der(der_bytes)?;
    public_key_from_spki(&spki)
}

/// An SM2 public key from a parsed SPKI; names the algorithm or curve if it is not SM2.
pub fn public_key_from_spki(spki: &SubjectPublicKeyInfoRef<'_>) -> Result<Sm2PublicKey, Error> {
    crate::pem::check_spki_algorithm(&spki.algorithm)?;
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or(KeyError::InvalidValue)?;
    Sm2PublicKey::from_sec1_bytes(bits)
}

/// SPKI DER: id-ecPublicKey with namedCurve SM2 and an uncompressed point, as OpenSSL writes it.
pub fn public_key_to_spki_der(pk: &Sm2PublicKey) -> Result<Vec<u8>, Error> {
    use spki::EncodePublicKey;
    pk.to_public_key_der()
        .map(|d| d.into_vec())
        .map_err(|_| Error::Internal("SPKI encoding of a valid key"))
}

/// Something that signs under the certificate ID (GM/T 0009 `1234567812345678`).
pub trait CertSigner: Sm2Signer<CertId> {}
impl<T: Sm2Signer<CertId> + ?Sized> CertSigner for T {}

/// A DER-encoded SM2 signature as x509-cert's builders want it (`SignatureBitStringEncoding`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DerSignature(Vec<u8>);

impl DerSignature {
    /// The DER bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<&[u8]> for DerSignature {
    type Error = signature::Error;
    fn try_from(b: &[u8]) -> Result<Self, Self::Error> {
        Sm2Signature::from_der(b)
            .map(|s| Self(s.as_der().to_vec()))
            .map_err(|_| signature::Error::new())
    }
}

impl From<DerSignature> for Box<[u8]> {
    fn from(s: DerSignature) -> Self {
        s.0.into_boxed_slice()
    }
}

impl signature::SignatureEncoding for DerSignature {
    type Repr = Box<[u8]>;
}

impl spki::SignatureBitStringEncoding for DerSignature {
    fn to_bitstring(&self) -> der::Result<der::asn1::BitString> {
        der::asn1::BitString::from_bytes(&self.0)
    }
}

/// Adapter that lets x509-cert 0.3's `Builder::build::<_, DerSignature>` sign with any [`CertSigner`].
///
/// `sm2::dsa::SigningKey` only implements `Signer<sm2::dsa::Signature>` (raw `r || s`), which compiles with the
/// builders and yields certificates every other implementation rejects; this adapter emits DER.
pub struct X509Signer<'a, S: CertSigner + ?Sized> {
    signer: &'a S,
}

impl<'a, S: CertSigner + ?Sized> X509Signer<'a, S> {
    /// Wrap a signer.
    pub fn new(signer: &'a S) -> Self {
        Self { signer }
    }
}

impl<S: CertSigner + ?Sized> signature::Keypair for X509Signer<'_, S> {
    type VerifyingKey = Sm2PublicKey;
    fn verifying_key(&self) -> Sm2PublicKey {
        self.signer.public_key().clone()
    }
}

impl<S: CertSigner + ?Sized> signature::Signer<DerSignature> for X509Signer<'_, S> {
    fn try_sign(&self, msg: &[u8]) -> Result<DerSignature, signature::Error> {
        self.signer
            .sign(msg)
            .map(|s| DerSignature(s.as_der().to_vec()))
            .map_err(signature::Error::from_source)
    }
}

impl<S: CertSigner + ?Sized> spki::DynSignatureAlgorithmIdentifier for X509Signer<'_, S> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(sm2_with_sm3())
    }
}

/// The three parts of a signed X.509-family object: `SEQUENCE { tbs, signatureAlgorithm, BIT STRING }`.
#[derive(Debug)]
pub struct SignedParts<'a> {
    /// The exact TBS bytes as received (tag and length included).
    pub tbs: &'a [u8],
    /// The outer signature algorithm.
    pub algorithm: AlgorithmIdentifierRef<'a>,
    /// The signature bytes from the BIT STRING.
    pub signature: &'a [u8],
}

/// Split a certificate, CSR, CRL or `BasicOCSPResponse` into its TBS bytes, algorithm and signature, without
/// re-encoding anything. The whole input must be one SEQUENCE with nothing after it.
pub fn split_signed(der_bytes: &[u8]) -> Result<SignedParts<'_>, Error> {
    if der_bytes.len() > MAX_SIGNED_DER {
        return Err(Error::InvalidLength {
            what: "signed object",
            len: der_bytes.len(),
        });
    }
    let mut outer = SliceReader::new(der_bytes)?;
    let parts = outer.sequence(|r: &mut SliceReader<'_>| {
        let tbs = r.tlv_bytes()?;
        let algorithm = AlgorithmIdentifierRef::decode(r)?;
        let bits = BitStringRef::decode(r)?;
        Ok::<_, der::Error>((tbs, algorithm, bits))
    })?;
    outer.finish()?;
    let (tbs, algorithm, bits) = parts;
    let signature = bits.as_bytes().ok_or(Error::MalformedSignature(
        "signature BIT STRING has unused bits",
    ))?;
    Ok(SignedParts {
        tbs,
        algorithm,
        signature,
    })
}

/// Is this the SM2-with-SM3 algorithm? Parameters must be absent; NULL is tolerated because some CAs write it.
pub fn is_sm2_with_sm3(alg: &AlgorithmIdentifierRef<'_>) -> bool {
    alg.oid == oid::SM2_WITH_SM3
        && match alg.parameters {
            None => true,
            Some(p) => p.is_null(),
        }
}

/// Verify the SM2 signature (certificate ID) of a signed object over its exact received TBS bytes.
pub fn verify_signed(der_bytes: &[u8], issuer: &Sm2PublicKey) -> Result<(), Error> {
    let parts = split_signed(der_bytes)?;
    if !is_sm2_with_sm3(&parts.algorithm) {
        return Err(KeyError::NotSm2 {
            oid: parts.algorithm.oid.to_string(),
        }
        .into());
    }
    issuer
        .verifying_key(CertId)?
        .verify_der(parts.tbs, parts.signature)
}

/// Encode any DER value; a convenience for callers that build ASN.1 with `der`.
pub fn to_der<T: Encode>(value: &T) -> Result<Vec<u8>, Error> {
    Ok(value.to_der()?)
}

/// Entry points for fuzz targets.
#[doc(hidden)]
pub mod fuzzing {
    /// Parse an SPKI; a key that parses re-encodes to an SPKI that parses to the same key.
    pub fn decode_spki(data: &[u8]) {
        if let Ok(pk) = super::public_key_from_spki_der(data) {
            let again = super::public_key_to_spki_der(&pk)
                .and_then(|d| super::public_key_from_spki_der(&d));
            assert_eq!(again.as_ref(), Ok(&pk), "SPKI round trip");
        }
    }

    /// Split a signed object; the TBS and signature are proper parts of the input.
    pub fn split_signed(data: &[u8]) {
        if let Ok(p) = super::split_signed(data) {
            assert!(
                p.tbs.len() + p.signature.len() < data.len(),
                "parts inside the input"
            );
            let _ = super::is_sm2_with_sm3(&p.algorithm);
        }
    }
}

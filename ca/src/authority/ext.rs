//! Extension and name building shared by certificates and CRLs.

use const_oid::db::rfc4519;
use const_oid::db::rfc5280;
use der::asn1::{Any, Ia5String, OctetString, PrintableStringRef, Utf8StringRef};
use der::{Decode, Encode, Tagged, asn1::ObjectIdentifier};
use sha1::Digest;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, CrlDistributionPoints,
};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::Error;

/// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1).
pub const OCSP_NOCHECK: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5");

/// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value.
pub fn key_identifier(spki: &spki::SubjectPublicKeyInfoOwned) -> Vec<u8> {
    sha1::Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
}

/// An extension from an encodable value.
pub fn ext<T: Encode>(
    oid: ObjectIdentifier,
    critical: bool,
    value: &T,
) -> Result<Extension, Error> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// AKI with only keyIdentifier.
pub fn aki(key_id: &[u8]) -> Result<Extension, Error> {
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(key_id)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    ext(rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER, false, &aki)
}

/// SKI.
pub fn ski(key_id: &[u8]) -> Result<Extension, Error> {
    ext(
        rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
        false,
        &OctetString::new(key_id)?,
    )
}

/// A URI GeneralName.
pub fn uri(u: &str) -> Result<GeneralName, Error> {
    Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(u)?))
}

/// A distribution point with one full-name URI.
pub fn distribution_point(url: &str) -> Result<DistributionPoint, Error> {
    Ok(DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
        reasons: None,
        crl_issuer: None,
    })
}

/// cRLDistributionPoints with one URI.
pub fn crl_dp(url: &str) -> Result<Extension, Error> {
    let dps = CrlDistributionPoints(vec![distribution_point(url)?]);
    ext(rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS, false, &dps)
}

/// authorityInfoAccess with OCSP and/or caIssuers URIs.
pub fn aia(ocsp: Option<&str>, ca_issuers: Option<&str>) -> Result<Option<Extension>, Error> {
    let mut v = Vec::new();
    if let Some(u) = ocsp {
        v.push(AccessDescription {
            access_method: rfc5280::ID_AD_OCSP,
            access_location: uri(u)?,
        });
    }
    if let Some(u) = ca_issuers {
        v.push(AccessDescription {
            access_method: rfc5280::ID_AD_CA_ISSUERS,
            access_location: uri(u)?,
        });
    }
    if v.is_empty() {
        return Ok(None);
    }
    Ok(Some(ext(
        rfc5280::ID_PE_AUTHORITY_INFO_ACCESS,
        false,
        &AuthorityInfoAccessSyntax(v),
    )?))
}

fn rdn(oid: ObjectIdentifier, value: Any) -> Result<RelativeDistinguishedName, Error> {
    Ok(RelativeDistinguishedName::try_from(vec![
        AttributeTypeAndValue { oid, value },
    ])?)
}

/// The subject of a device certificate: `O=<org>` (if any), `serialNumber=<id>` (PrintableString, X.520),
/// `CN=<id>` (UTF8String).
pub fn device_subject(device_id: &str, organization: Option<&str>) -> Result<Name, Error> {
    let mut seq = RdnSequence::default();
    if let Some(o) = organization {
        seq.push(rdn(rfc4519::O, Any::encode_from(&Utf8StringRef::new(o)?)?)?);
    }
    seq.push(rdn(
        rfc4519::SERIAL_NUMBER,
        Any::encode_from(&PrintableStringRef::new(device_id)?)?,
    )?);
    seq.push(rdn(
        rfc4519::CN,
        Any::encode_from(&Utf8StringRef::new(device_id)?)?,
    )?);
    Ok(Name::from_der(&seq.to_der()?)?)
}

/// The text of the first attribute `oid` in `name` (any DirectoryString form), if present.
pub fn name_attr(name: &Name, oid: ObjectIdentifier) -> Option<String> {
    name.iter().find(|a| a.oid == oid).and_then(|a| {
        let v = &a.value;
        match v.tag() {
            der::Tag::Utf8String
            | der::Tag::PrintableString
            | der::Tag::Ia5String
            | der::Tag::TeletexString => core::str::from_utf8(v.value()).ok().map(str::to_owned),
            _ => None,
        }
    })
}

//! `/csrattrs` (RFC 7030 §4.5.2): what the CA wants in a CSR.
//!
//! ```text
//! CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
//! AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }
//! ```
//! We ask for an SM2 key (`id-ecPublicKey` with the sm2p256v1 curve, as the RFC's secp384r1 example does), an
//! SM2-with-SM3 signature, and the device ID in the subject `serialNumber`.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519;
use der::Encode;
use der::asn1::{Any, SetOfVec};
use x509_cert::attr::Attribute;

use crate::Error;

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SM2P256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301");
const SM2_WITH_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");

/// The DER `CsrAttrs` of smtrust device profiles.
pub fn device_csr_attrs() -> Result<Vec<u8>, Error> {
    let mut curve = SetOfVec::new();
    curve.insert(Any::encode_from(&SM2P256V1)?)?;
    let key = Attribute {
        oid: ID_EC_PUBLIC_KEY,
        values: curve,
    };
    let items: Vec<Any> = vec![
        Any::encode_from(&SM2_WITH_SM3)?,
        Any::encode_from(&key)?,
        Any::encode_from(&rfc4519::SERIAL_NUMBER)?,
    ];
    Ok(items.to_der()?)
}

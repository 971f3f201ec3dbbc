//! Development certificate authority.
//!
//! On a fresh instance with no configured signing identity, Hallmark generates a private CA and
//! an ES256 signing certificate issued by it. Both follow the C2PA 2.2 certificate profile
//! (§14.5.1): X.509 v3, the leaf is not self-signed, carries digitalSignature key usage, an
//! allowed EKU (id-kp-emailProtection plus the C2PA claim-signing purpose), AKI and SKI, and an
//! organization (O=) in its subject (c2pa-rs 0.90 rejects subjects without one).
//!
//! Content signed with it validates as `Valid` but never as `Trusted` outside an instance that
//! lists the generated CA as a trust anchor.

use std::path::{Path, PathBuf};

use chrono::Datelike;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber, PKCS_ECDSA_P256_SHA256,
};

use crate::{ProvenanceError, SignatureAlgorithm};

/// Files written by [`generate_dev_identity`].
#[derive(Debug, Clone)]
pub struct DevIdentityPaths {
    /// The development root CA certificate (PEM). Add it to a verifier's trust anchors to make
    /// this instance's signatures `Trusted` there.
    pub ca_cert: PathBuf,
    /// The signing chain: leaf then CA (PEM).
    pub chain: PathBuf,
    /// The leaf's PKCS#8 private key (PEM), mode 0600.
    pub key: PathBuf,
}

/// OID of the C2PA claim-signing extended key usage (C2PA 2.2 §14.5.1, OID 1.3.6.1.4.1.62558.2.1).
const C2PA_CLAIM_SIGNING_EKU: [u64; 9] = [1, 3, 6, 1, 4, 1, 62558, 2, 1];

fn serial() -> Result<SerialNumber, ProvenanceError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ProvenanceError::Identity("system RNG unavailable".into()))?;
    bytes[0] &= 0x7f; // positive INTEGER
    Ok(SerialNumber::from_slice(&bytes))
}

fn dn(common_name: &str, organization: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, organization);
    dn.push(
        DnType::OrganizationalUnitName,
        "Hallmark development signing",
    );
    dn
}

/// Generates a development CA (10 years) and an ES256 signing certificate (2 years) into `dir`
/// (`dev-ca.pem`, `signing-chain.pem`, `signing-key.pem`), overwriting nothing that exists:
/// when all three files are present they are reused.
///
/// `organization` becomes the O= of both subjects; the common names end in an 8-hex-digit
/// instance tag (`Hallmark Development Signer 3f9a02c1`), random per generated identity.
///
/// # Errors
/// [`ProvenanceError::Io`] when `dir` can't be written, [`ProvenanceError::CertificateGeneration`]
/// when rcgen fails.
pub fn generate_dev_identity(
    dir: &Path,
    organization: &str,
) -> Result<DevIdentityPaths, ProvenanceError> {
    generate_dev_identity_with(dir, organization, SignatureAlgorithm::Es256)
}

/// [`generate_dev_identity`] with the signature algorithm of both keys chosen: ES256 (P-256),
/// ES384 (P-384) or Ed25519 (C2PA 2.2 §13.2.1).
///
/// # Errors
/// See [`generate_dev_identity`].
pub fn generate_dev_identity_with(
    dir: &Path,
    organization: &str,
    alg: SignatureAlgorithm,
) -> Result<DevIdentityPaths, ProvenanceError> {
    let rcgen_alg: &'static rcgen::SignatureAlgorithm = match alg {
        SignatureAlgorithm::Es256 => &PKCS_ECDSA_P256_SHA256,
        SignatureAlgorithm::Es384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        SignatureAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
    };
    let paths = DevIdentityPaths {
        ca_cert: dir.join("dev-ca.pem"),
        chain: dir.join("signing-chain.pem"),
        key: dir.join("signing-key.pem"),
    };
    if paths.ca_cert.exists() && paths.chain.exists() && paths.key.exists() {
        return Ok(paths);
    }
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ProvenanceError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;

    let now = chrono::Utc::now();
    let (y, m, d) = (now.year(), now.month() as u8, now.day().min(28) as u8);

    // Each generated identity names its instance (8 random hex digits in both common names),
    // so that two development instances' signatures do not read as the same signer.
    use ring::rand::SecureRandom as _;
    let mut tag = [0u8; 4];
    ring::rand::SystemRandom::new()
        .fill(&mut tag)
        .map_err(|_| ProvenanceError::Identity("system RNG unavailable".into()))?;
    let tag = hex::encode(tag);
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = dn(&format!("Hallmark Development Root CA {tag}"), organization);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = rcgen::date_time_ymd(y, m, d);
    ca_params.not_after = rcgen::date_time_ymd(y + 10, m, d);
    ca_params.serial_number = Some(serial()?);
    let ca_key = KeyPair::generate_for(rcgen_alg)?;
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;

    let mut leaf_params = CertificateParams::new(Vec::<String>::new())?;
    leaf_params.distinguished_name =
        dn(&format!("Hallmark Development Signer {tag}"), organization);
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::EmailProtection,
        ExtendedKeyUsagePurpose::Other(C2PA_CLAIM_SIGNING_EKU.to_vec()),
    ];
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.not_before = rcgen::date_time_ymd(y, m, d);
    leaf_params.not_after = rcgen::date_time_ymd(y + 2, m, d);
    leaf_params.serial_number = Some(serial()?);
    let leaf_key = KeyPair::generate_for(rcgen_alg)?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca)?;

    write_atomic(&paths.ca_cert, ca.pem().as_bytes(), false)?;
    write_atomic(
        &paths.chain,
        format!("{}{}", leaf.pem(), ca.pem()).as_bytes(),
        false,
    )?;
    write_atomic(&paths.key, leaf_key.serialize_pem().as_bytes(), true)?;
    Ok(paths)
}

/// Writes `bytes` to a temporary sibling and renames it into place, so a crash never leaves a
/// half-written key or certificate.
fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), ProvenanceError> {
    // A name no other process writing the same identity at once picks.
    let mut name = path.file_name().unwrap_or_default().to_owned();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    name.push(format!(".{}.{n}.tmp", std::process::id()));
    let tmp = path.with_file_name(name);
    let err = |source| ProvenanceError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(err)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    std::fs::rename(&tmp, path).map_err(err)
}

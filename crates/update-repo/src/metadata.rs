//! The four metadata files in TUF 1.0's format, and the signed envelope around them.
//!
//! Signed metadata is parsed tolerantly: every struct keeps unknown fields in `extra`, so
//! metadata written by newer tools still parses and re-serialises without loss. Verification
//! never re-serialises a struct: signatures are checked over the canonical JSON of the parsed
//! `signed` value exactly as received ([`crate::canonical`]).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha512};
use time::OffsetDateTime;
use update_core::keyring::PublicKey;

use crate::canonical::signing_forms;
use crate::error::{Error, Refusal, Result, Role};
use crate::keys::{KeyId, RootKey, key_id_of};

/// The TUF specification version this crate writes (`spec_version`). Files whose major version
/// is not 1 are refused.
pub const SPEC_VERSION: &str = "1.0.31";

/// Unknown fields of a metadata object, kept so nothing is lost.
pub type Extra = BTreeMap<String, Value>;

/// What the four roles' `signed` objects share.
pub trait Metadata: Serialize + DeserializeOwned {
    /// The role, whose name is the `_type`.
    const ROLE: Role;
    /// `version`.
    fn version(&self) -> u64;
    /// `expires`.
    fn expires(&self) -> OffsetDateTime;
    /// `spec_version`.
    fn spec_version(&self) -> &str;
}

macro_rules! metadata_impl {
    ($t:ty, $role:expr) => {
        impl Metadata for $t {
            const ROLE: Role = $role;
            fn version(&self) -> u64 {
                self.version
            }
            fn expires(&self) -> OffsetDateTime {
                self.expires
            }
            fn spec_version(&self) -> &str {
                &self.spec_version
            }
        }
    };
}

/// `root.json`: the keys and the (key ids, threshold) of every role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Root {
    /// `spec_version`.
    pub spec_version: String,
    /// Whether metadata and targets are published under versioned / hash-prefixed names.
    #[serde(default)]
    pub consistent_snapshot: bool,
    /// The root's version: each new root is exactly one more than the last.
    pub version: u64,
    /// When this root stops being trusted.
    #[serde(with = "expires")]
    pub expires: OffsetDateTime,
    /// Every key any role uses, by TUF key id, as the JSON objects given.
    pub keys: BTreeMap<KeyId, Value>,
    /// Key ids and threshold per role name.
    pub roles: BTreeMap<String, RoleKeys>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}
metadata_impl!(Root, Role::Root);

/// The keys of one role and how many of them must sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    /// TUF key ids.
    pub keyids: Vec<KeyId>,
    /// Distinct valid signatures required (at least 1).
    pub threshold: u64,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Root {
    /// The entry of `role` in `roles`.
    #[must_use]
    pub fn role_keys(&self, role: Role) -> Option<&RoleKeys> {
        self.roles.get(role.as_str())
    }

    /// Validates the root's own structure and returns its keys: every key id is the hash of its
    /// key object, every role is present with a threshold of at least 1.
    ///
    /// # Errors
    /// A message naming the key or role at fault.
    pub fn checked_keys(&self) -> std::result::Result<BTreeMap<KeyId, RootKey>, String> {
        let keys = checked_key_map(&self.keys)?;
        for role in Role::ALL {
            let rk = self.role_keys(role).ok_or_else(|| format!("no '{role}' role"))?;
            if rk.threshold == 0 {
                return Err(format!("the {role} role's threshold is 0"));
            }
            // A threshold above the number of keys is not malformed (TUF 1.0.31 §5.3): that
            // role's metadata simply never verifies. Only the signatures on the root count.
        }
        Ok(keys)
    }

    /// The ed25519 keys of a role (keys of unsupported types are skipped).
    #[must_use]
    pub fn role_public_keys(&self, role: Role) -> Vec<PublicKey> {
        let Some(rk) = self.role_keys(role) else { return Vec::new() };
        rk.keyids
            .iter()
            .filter_map(|id| self.keys.get(id))
            .filter_map(|json| RootKey::from_json(json).ok())
            .filter_map(|k| k.ed25519().copied())
            .collect()
    }
}

/// Reads a `keys` object: each id must be the hash of its key object.
fn checked_key_map(json_keys: &BTreeMap<KeyId, Value>) -> std::result::Result<BTreeMap<KeyId, RootKey>, String> {
    let mut keys = BTreeMap::new();
    for (id, json) in json_keys {
        let computed = key_id_of(json).map_err(|e| format!("key {id}: {e}"))?;
        if &computed != id {
            return Err(format!("key id {id} is not the SHA-256 of its key object ({computed})"));
        }
        keys.insert(id.clone(), RootKey::from_json(json).map_err(|e| format!("key {id}: {e}"))?);
    }
    Ok(keys)
}

/// `targets.json`: the files of the repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    /// `spec_version`.
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry.
    #[serde(with = "expires")]
    pub expires: OffsetDateTime,
    /// Targets by name.
    pub targets: BTreeMap<String, TargetInfo>,
    /// Delegations to other targets roles (TUF 1.0 §2.2.4), followed by
    /// [`crate::TufClient::find_target`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}
metadata_impl!(Targets, Role::Targets);

/// The `delegations` of a targets role: the keys of the delegated roles and the roles, in
/// priority order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delegations {
    /// Every key a delegated role uses, by TUF key id.
    pub keys: BTreeMap<KeyId, Value>,
    /// The delegated roles, most trusted first. (Hash-bin `succinct_roles` are kept in
    /// `extra` and not followed.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<DelegatedRole>>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Delegations {
    /// The delegation's keys, checked as a root's are (each id the hash of its key object).
    ///
    /// # Errors
    /// A message naming the key at fault.
    pub fn checked_keys(&self) -> std::result::Result<BTreeMap<KeyId, RootKey>, String> {
        checked_key_map(&self.keys)
    }
}

/// One delegated role: who may sign it, how many must, and which target paths it may name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedRole {
    /// The role's name (its metadata file is `<name>.json`, the name percent-encoded).
    pub name: String,
    /// TUF key ids of the role's keys (in the delegation's `keys`).
    pub keyids: Vec<KeyId>,
    /// Distinct valid signatures required.
    pub threshold: u64,
    /// When true, a search that reaches this role goes no further down the list, whether or
    /// not the role names the target.
    #[serde(default)]
    pub terminating: bool,
    /// Shell-style patterns (`*`, `?`, `[…]`, matched `/`-separated segment by segment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Hex prefixes of the SHA-256 of target paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl DelegatedRole {
    /// Whether this role is trusted for `target` (TUF 1.0 §5.6.7.2.1): one of its `paths`
    /// patterns matches, or one of its `path_hash_prefixes` starts the path's SHA-256.
    #[must_use]
    pub fn is_delegated_path(&self, target: &str) -> bool {
        if let Some(patterns) = &self.paths {
            return patterns.iter().any(|p| crate::target_name::path_matches(p, target));
        }
        if let Some(prefixes) = &self.path_hash_prefixes {
            let digest = hex::encode(Sha256::digest(target.as_bytes()));
            return prefixes.iter().any(|p| digest.starts_with(p.as_str()));
        }
        false
    }
}

/// What `targets.json` says about one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// Exact length in bytes.
    pub length: u64,
    /// Digests by algorithm (`sha256`, `sha512`), lowercase hex.
    pub hashes: BTreeMap<String, String>,
    /// Application data (ours: free JSON given with `repo add --custom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl TargetInfo {
    /// Describes `data`: its length and SHA-256.
    #[must_use]
    pub fn for_bytes(data: &[u8]) -> Self {
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".to_owned(), hex::encode(Sha256::digest(data)));
        Self { length: data.len() as u64, hashes, custom: None, extra: Extra::new() }
    }

    /// A streaming checker for the target's bytes (verify while streaming).
    #[must_use]
    pub fn checker(&self) -> TargetChecker {
        TargetChecker {
            length: self.length,
            seen: 0,
            sha256: self.hashes.contains_key("sha256").then(Sha256::new),
            sha512: self.hashes.contains_key("sha512").then(Sha512::new),
            expected: self.hashes.clone(),
        }
    }

    /// The digest used in consistent-snapshot file names (SHA-256, else SHA-512).
    #[must_use]
    pub fn name_hash(&self) -> Option<&str> {
        self.hashes.get("sha256").or_else(|| self.hashes.get("sha512")).map(String::as_str)
    }
}

/// Checks a target's bytes as they stream: never more than the signed length, then every
/// supported digest. Use [`TargetInfo::checker`].
#[derive(Debug, Clone)]
pub struct TargetChecker {
    length: u64,
    seen: u64,
    sha256: Option<Sha256>,
    sha512: Option<Sha512>,
    expected: BTreeMap<String, String>,
}

impl TargetChecker {
    /// Feeds the next bytes.
    ///
    /// # Errors
    /// [`Refusal::TooLarge`] as soon as the bytes pass the signed length: stop reading then.
    pub fn update(&mut self, chunk: &[u8]) -> std::result::Result<(), Refusal> {
        self.seen = self.seen.saturating_add(chunk.len() as u64);
        if self.seen > self.length {
            return Err(Refusal::TooLarge { limit: self.length });
        }
        if let Some(h) = &mut self.sha256 {
            h.update(chunk);
        }
        if let Some(h) = &mut self.sha512 {
            h.update(chunk);
        }
        Ok(())
    }

    /// Checks the length and digests once every byte has been fed.
    ///
    /// # Errors
    /// [`Refusal::Length`], [`Refusal::Hash`], or [`Refusal::Malformed`] when the metadata lists
    /// no digest this client supports.
    pub fn finish(self) -> std::result::Result<(), Refusal> {
        if self.seen != self.length {
            return Err(Refusal::Length { expected: self.length, found: self.seen });
        }
        let mut checked = 0;
        for (algorithm, found) in [
            ("sha256", self.sha256.map(|h| hex::encode(h.finalize()))),
            ("sha512", self.sha512.map(|h| hex::encode(h.finalize()))),
        ] {
            let Some(found) = found else { continue };
            let expected = &self.expected[algorithm];
            if !expected.eq_ignore_ascii_case(&found) {
                return Err(Refusal::Hash { algorithm: algorithm.into(), expected: expected.clone(), found });
            }
            checked += 1;
        }
        if checked == 0 {
            return Err(Refusal::Malformed("no sha256 or sha512 digest is listed".into()));
        }
        Ok(())
    }
}

/// `snapshot.json`: the version (and optionally length and hashes) of every targets file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `spec_version`.
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry.
    #[serde(with = "expires")]
    pub expires: OffsetDateTime,
    /// `targets.json` (and delegated targets files) → what is signed about it.
    pub meta: BTreeMap<String, MetaFile>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}
metadata_impl!(Snapshot, Role::Snapshot);

/// `timestamp.json`: the current snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timestamp {
    /// `spec_version`.
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry.
    #[serde(with = "expires")]
    pub expires: OffsetDateTime,
    /// Exactly one entry, `snapshot.json`.
    pub meta: BTreeMap<String, MetaFile>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}
metadata_impl!(Timestamp, Role::Timestamp);

/// What snapshot or timestamp metadata signs about another metadata file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaFile {
    /// The file's version.
    pub version: u64,
    /// Its length in bytes, if listed (then it bounds the download).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// Its digests, if listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl MetaFile {
    /// Describes a metadata file's bytes: version, length and SHA-256.
    #[must_use]
    pub fn for_bytes(version: u64, data: &[u8]) -> Self {
        let info = TargetInfo::for_bytes(data);
        Self { version, length: Some(info.length), hashes: Some(info.hashes), extra: Extra::new() }
    }

    /// Checks `data` against the listed length and digests.
    ///
    /// # Errors
    /// [`Refusal::Length`] or [`Refusal::Hash`].
    pub fn check(&self, data: &[u8]) -> std::result::Result<(), Refusal> {
        let length = data.len() as u64;
        if let Some(expected) = self.length
            && expected != length
        {
            return Err(Refusal::Length { expected, found: length });
        }
        if let Some(hashes) = &self.hashes {
            let info = TargetInfo { length, hashes: hashes.clone(), custom: None, extra: Extra::new() };
            let mut c = info.checker();
            c.update(data)?;
            match c.finish() {
                // Hashes of algorithms we do not know: nothing to check beyond the length.
                Err(Refusal::Malformed(_)) | Ok(()) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// One signature in the envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The TUF key id of the signing key.
    pub keyid: KeyId,
    /// The signature, hex.
    pub sig: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A parsed metadata file: the `signed` value exactly as received, its typed view and the
/// signatures. Verification uses [`Signed::raw`], never a re-serialisation of [`Signed::signed`].
#[derive(Debug, Clone)]
pub struct Signed<T> {
    /// The typed view of `signed`.
    pub signed: T,
    /// `signed` as received.
    pub raw: Value,
    /// `signatures`.
    pub signatures: Vec<Signature>,
    /// The file's bytes as received.
    pub bytes: Vec<u8>,
}

impl<T: Metadata> Signed<T> {
    /// Parses a metadata file of role `T::ROLE`; `file` names it in errors. Checks the shape,
    /// `_type`, `spec_version`'s major version and that `version` is at least 1. Does **not**
    /// verify signatures.
    ///
    /// # Errors
    /// [`Error::Refused`] with [`Refusal::Malformed`].
    pub fn parse(bytes: &[u8], file: &str) -> Result<Self> {
        let bad = |why: String| Error::refused(T::ROLE, file, Refusal::Malformed(why));
        let envelope: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        let Value::Object(mut top) = envelope else { return Err(bad("not a JSON object".into())) };
        let raw = top.remove("signed").ok_or_else(|| bad("no 'signed' object".into()))?;
        let signatures: Vec<Signature> =
            serde_json::from_value(top.remove("signatures").ok_or_else(|| bad("no 'signatures' list".into()))?)
                .map_err(|e| bad(format!("signatures: {e}")))?;
        let mut ids = std::collections::BTreeSet::new();
        if let Some(dup) = signatures.iter().find(|s| !ids.insert(&s.keyid)) {
            // TUF 1.0.31 §5.4.2 ff.: a threshold of signatures from *unique* keys. A list
            // naming one key twice is refused as a whole, as python-tuf does.
            return Err(bad(format!("two signatures name key id {}", dup.keyid)));
        }
        let Value::Object(mut body) = raw.clone() else { return Err(bad("'signed' is not an object".into())) };
        match body.remove("_type") {
            Some(Value::String(t)) if t == T::ROLE.as_str() => {}
            Some(Value::String(t)) => return Err(bad(format!("_type is '{t}', expected '{}'", T::ROLE))),
            _ => return Err(bad("no '_type'".into())),
        }
        let signed: T = serde_json::from_value(Value::Object(body)).map_err(|e| bad(format!("signed: {e}")))?;
        if signed.spec_version().split('.').next() != Some("1") {
            return Err(bad(format!("spec_version {} is not 1.x", signed.spec_version())));
        }
        if signed.version() == 0 {
            return Err(bad("version 0 (versions start at 1)".into()));
        }
        Ok(Self { signed, raw, signatures, bytes: bytes.to_vec() })
    }

    /// The distinct keys among `candidates` with a valid signature on this file.
    pub(crate) fn signers<'k>(&self, candidates: impl IntoIterator<Item = (KeyId, &'k RootKey)>) -> Vec<&'k RootKey> {
        let Ok((primary, alternative)) = signing_forms(&self.raw) else { return Vec::new() };
        let mut valid: Vec<&RootKey> = Vec::new();
        for (id, key) in candidates {
            if valid.contains(&key) {
                continue;
            }
            let ok = self.signatures.iter().filter(|s| s.keyid == id).any(|s| {
                let Ok(sig) = hex::decode(&s.sig) else { return false };
                key.verify(&primary, &sig) || alternative.as_ref().is_some_and(|alt| key.verify(alt, &sig))
            });
            if ok {
                valid.push(key);
            }
        }
        valid
    }

    /// Checks that a threshold of `root`'s keys for `T::ROLE` signed this file. `whose` names
    /// the root in the refusal ("trusted root", "new root").
    pub(crate) fn verify_by(
        &self,
        root: &Root,
        keys: &BTreeMap<KeyId, RootKey>,
        whose: &str,
        file: &str,
    ) -> Result<()> {
        let rk = root.role_keys(T::ROLE).ok_or_else(|| {
            Error::refused(T::ROLE, file, Refusal::Malformed(format!("the {whose} has no {} role", T::ROLE)))
        })?;
        self.verify_threshold(keys, &rk.keyids, rk.threshold, &format!("{whose}'s {}", T::ROLE), file)
    }

    /// Checks that `threshold` distinct keys among `keyids` (looked up in `keys`) signed this
    /// file. `role` names the role in the refusal.
    pub(crate) fn verify_threshold(
        &self,
        keys: &BTreeMap<KeyId, RootKey>,
        keyids: &[KeyId],
        threshold: u64,
        role: &str,
        file: &str,
    ) -> Result<()> {
        let candidates = keyids.iter().filter_map(|id| keys.get(id).map(|k| (id.clone(), k)));
        let valid = self.signers(candidates).len();
        if threshold == 0 || (valid as u64) < threshold {
            return Err(Error::refused(T::ROLE, file, Refusal::Signatures { role: role.to_owned(), valid, threshold }));
        }
        Ok(())
    }

    /// Whether the file has expired at `now` (`now >= expires`).
    pub(crate) fn check_expiry(&self, now: OffsetDateTime, file: &str) -> Result<()> {
        let expires = self.signed.expires();
        if now >= expires {
            return Err(Error::refused(
                T::ROLE,
                file,
                Refusal::Expired { expires: expires::format(expires), now: expires::format(now) },
            ));
        }
        Ok(())
    }
}

/// Builds the `signed` value of metadata: the struct with its `_type`.
///
/// # Errors
/// Serialisation errors (none for well-formed structs).
pub fn signed_value<T: Metadata>(meta: &T) -> Result<Value> {
    let value =
        serde_json::to_value(meta).map_err(|e| Error::Workflow(format!("cannot serialise {}: {e}", T::ROLE)))?;
    let Value::Object(body) = value else { return Err(Error::Workflow(format!("{} is not an object", T::ROLE))) };
    let mut with_type = Map::new();
    with_type.insert("_type".into(), Value::String(T::ROLE.as_str().into()));
    with_type.extend(body);
    Ok(Value::Object(with_type))
}

#[cfg(feature = "publish")]
/// Signs metadata with each key and returns the file's bytes (pretty JSON, newline-terminated).
/// The signatures cover the canonical JSON of the `signed` value, which must be portable
/// (`canonical::check_portable`) so that every TUF client computes the same bytes.
///
/// # Errors
/// [`Error::InvalidValue`] when the metadata is not portable canonical JSON.
pub fn sign<T: Metadata>(meta: &T, keys: &[&ed25519_dalek::SigningKey]) -> Result<Vec<u8>> {
    use ed25519_dalek::Signer as _;

    use crate::keys::tuf_key_id;

    let signed = signed_value(meta)?;
    crate::canonical::check_portable(&signed).map_err(|e| Error::InvalidValue {
        what: format!("{} metadata", T::ROLE),
        value: String::new(),
        reason: e.to_string(),
    })?;
    let (canonical, _) = signing_forms(&signed).expect("checked portable above");
    let mut signatures = Vec::new();
    let mut seen = Vec::new();
    for key in keys {
        let public = PublicKey::from_verifying_key(key.verifying_key());
        if seen.contains(&public) {
            continue;
        }
        seen.push(public);
        signatures.push(Signature {
            keyid: tuf_key_id(&public),
            sig: hex::encode(key.sign(&canonical).to_bytes()),
            extra: Extra::new(),
        });
    }
    let envelope = serde_json::json!({ "signatures": signatures, "signed": signed });
    let mut bytes = serde_json::to_vec_pretty(&envelope).map_err(|e| Error::Workflow(e.to_string()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// `expires` as TUF writes it: `YYYY-MM-DDTHH:MM:SSZ` (any RFC 3339 time is read).
pub mod expires {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;

    /// Formats a time as TUF's `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds).
    #[must_use]
    pub fn format(t: OffsetDateTime) -> String {
        let t = t.to_offset(time::UtcOffset::UTC);
        t.format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))
            .unwrap_or_else(|_| t.unix_timestamp().to_string())
    }

    /// Parses an RFC 3339 time.
    ///
    /// # Errors
    /// When the text is not RFC 3339.
    pub fn parse(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
        OffsetDateTime::parse(text, &Rfc3339)
    }

    pub(crate) fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(|e| serde::de::Error::custom(format!("expires '{text}': {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let text = r#"{"signatures":[{"keyid":"ab","sig":"00","x-extra":1}],
            "signed":{"_type":"timestamp","spec_version":"1.0.0","version":3,"expires":"2030-01-01T00:00:00Z",
            "meta":{"snapshot.json":{"version":2,"x-meta":true}},"x-vendor":{"a":[1]}}}"#;
        let s = Signed::<Timestamp>::parse(text.as_bytes(), "timestamp.json").unwrap();
        assert_eq!(s.signed.extra["x-vendor"], serde_json::json!({"a": [1]}));
        assert_eq!(s.signed.meta["snapshot.json"].extra["x-meta"], Value::Bool(true));
        assert_eq!(signed_value(&s.signed).unwrap(), s.raw);
        assert!(Signed::<Snapshot>::parse(text.as_bytes(), "snapshot.json").is_err(), "wrong _type accepted");
    }

    #[test]
    fn target_checker_stops_at_the_signed_length() {
        let info = TargetInfo::for_bytes(b"hello");
        let mut c = info.checker();
        c.update(b"hel").unwrap();
        assert_eq!(c.update(b"lo!"), Err(Refusal::TooLarge { limit: 5 }));
        let mut c = info.checker();
        c.update(b"hellO").unwrap();
        assert!(matches!(c.finish(), Err(Refusal::Hash { .. })));
        let mut c = info.checker();
        c.update(b"hell").unwrap();
        assert_eq!(c.finish(), Err(Refusal::Length { expected: 5, found: 4 }));
    }
}

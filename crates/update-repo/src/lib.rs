//! Signed repository metadata in the format of The Update Framework (TUF 1.0.x).
//!
//! A repository is a directory of static files — `metadata/` (root, targets, snapshot,
//! timestamp) and `targets/` (bundles) — served by any web server or CDN. The metadata adds to
//! each bundle's own signature what a bare signature cannot give: freshness (expiry: freeze
//! attacks), monotonic versions (rollback), one consistent view of the repository
//! (mix-and-match), size limits (endless data), thresholds and key rotation.
//!
//! Two sides, one crate:
//!
//! - **Device** ([`TufClient`], [`TrustedMetadata`]): synchronous and small. [`TrustedMetadata`]
//!   is the pure verifier: it takes bytes and a reference time and applies TUF's rules, one
//!   role at a time. [`TufClient`] drives it through the client workflow with a [`Transport`]
//!   the caller supplies (a directory, HTTPS) and keeps the trusted files in a state directory.
//!   The device trusts either a pinned `root.json` or — our addition — the first root signed by
//!   a threshold of its [`update_core::keyring::Keyring`] keys ([`TrustAnchor`]).
//! - **Tool** (`publish::Repository`, cargo feature `publish`, on by default): create a
//!   repository, add targets, sign, re-sign the timestamp from cron, rotate keys.
//!   `update-tool repo` is a thin front end over it. Devices build with
//!   `default-features = false` and get the verifier alone.
//!
//! Signatures cover the canonical JSON ([`canonical`]) of the `signed` object *as parsed*:
//! metadata is read tolerantly (unknown fields are kept) and is never re-serialised before
//! verification. The verifier reads ed25519, ECDSA (P-256, P-384) and RSA-PSS keys in TUF's
//! key format ([`keys::RootKey`]); the tool writes ed25519. TUF key ids ([`keys::tuf_key_id`])
//! hash the canonical key object and differ from the keyring's ids, which hash the raw key.
//! Delegated targets roles are searched as TUF 1.0.31 §5.6.7 says ([`TufClient::find_target`]).
//!
//! The format and the workflow are documented in `docs/reference/repository.md`; the tests in
//! `tests/` prove interoperability with `tough` in both directions and refuse each attack.

pub mod canonical;
pub mod client;
pub mod error;
pub mod keys;
pub mod metadata;
#[cfg(feature = "publish")]
pub mod publish;
pub mod target_name;
pub mod transport;
pub mod trusted;

pub use client::{Limits, TrustAnchor, TufClient};
pub use error::{Error, Refusal, Result, Role};
pub use keys::{KeyId, tuf_key_id};
pub use metadata::{DelegatedRole, Delegations};
pub use metadata::{MetaFile, Root, Signed, Snapshot, TargetChecker, TargetInfo, Targets, Timestamp};
pub use target_name::TargetName;
pub use transport::{DirTransport, FetchError, Transport};
pub use trusted::TrustedMetadata;
pub use trusted::{Accepted, Origin};

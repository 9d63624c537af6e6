//! A store that fails: the client gets 500 and `{"error": "internal"}`, never the cause.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use time::OffsetDateTime;
use tower::ServiceExt;
use update_protocol::rollout::{NewDeployment, NewRelease};
use update_protocol::{CheckedEvent, DeviceId, Report, Tag};
use update_server::audit::{Actor, AuditEntry};
use update_server::clock::Clock;
use update_server::device::DeviceIdSource;
use update_server::operator::OperatorAccess;
use update_server::push::PushHub;
use update_server::repo::ServedRepository;
use update_server::store::{
    AttributeMode, CancelAnswer, CheckInOutcome, Control, DeploymentRecord, DeviceAction, DeviceRecord, EventRetention,
    Pruned, ReleaseRecord, Store, StoreError, StoredEvent, VersionSummary,
};
use update_server::{AppState, app};

struct BrokenStore;

fn broken() -> StoreError {
    StoreError::Query { op: "SELECT secret FROM /var/lib/update-server/server.db", source: "disk I/O error".into() }
}

#[async_trait]
impl Store for BrokenStore {
    async fn check_in(
        &self,
        _: &DeviceId,
        _: &Report,
        _: &[Tag],
        _: OffsetDateTime,
    ) -> Result<CheckInOutcome, StoreError> {
        Err(broken())
    }
    async fn append_event(&self, _: &DeviceId, _: &CheckedEvent, _: OffsetDateTime) -> Result<i64, StoreError> {
        Err(broken())
    }
    async fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        Err(broken())
    }
    async fn devices_page(&self, _: Option<&DeviceId>, _: u32) -> Result<Vec<DeviceRecord>, StoreError> {
        Err(broken())
    }
    async fn version_summary(&self, _: time::OffsetDateTime) -> Result<Vec<VersionSummary>, StoreError> {
        Err(broken())
    }
    async fn releases_page(&self, _: i64, _: u32) -> Result<Vec<ReleaseRecord>, StoreError> {
        Err(broken())
    }
    async fn tag_members_page(
        &self,
        _: &Tag,
        _: Option<&DeviceId>,
        _: u32,
    ) -> Result<Vec<(DeviceId, String)>, StoreError> {
        Err(broken())
    }
    async fn deployments_page(&self, _: Option<i64>, _: u32) -> Result<Vec<DeploymentRecord>, StoreError> {
        Err(broken())
    }
    async fn prune_events(&self, _: &EventRetention, _: i64, _: OffsetDateTime) -> Result<Pruned, StoreError> {
        Err(broken())
    }
    async fn device(&self, _: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        Err(broken())
    }
    async fn events(&self, _: &DeviceId, _: i64, _: u32) -> Result<Option<Vec<StoredEvent>>, StoreError> {
        Err(broken())
    }
    async fn request_check(&self, _: &DeviceId, _: &Actor, _: OffsetDateTime) -> Result<bool, StoreError> {
        Err(broken())
    }
    async fn create_release(&self, _: &NewRelease, _: &Actor, _: OffsetDateTime) -> Result<ReleaseRecord, StoreError> {
        Err(broken())
    }
    async fn releases(&self) -> Result<Vec<ReleaseRecord>, StoreError> {
        Err(broken())
    }
    async fn release(&self, _: i64) -> Result<Option<ReleaseRecord>, StoreError> {
        Err(broken())
    }
    async fn tag_devices(&self, _: &Tag, _: &[DeviceId], _: &Actor, _: OffsetDateTime) -> Result<usize, StoreError> {
        Err(broken())
    }
    async fn untag_device(&self, _: &Tag, _: &DeviceId, _: &Actor, _: OffsetDateTime) -> Result<bool, StoreError> {
        Err(broken())
    }
    async fn tag_members(&self, _: &Tag) -> Result<Vec<(DeviceId, String)>, StoreError> {
        Err(broken())
    }
    async fn create_deployment(
        &self,
        _: &NewDeployment,
        _: &Actor,
        _: OffsetDateTime,
    ) -> Result<DeploymentRecord, StoreError> {
        Err(broken())
    }
    async fn deployments(&self) -> Result<Vec<DeploymentRecord>, StoreError> {
        Err(broken())
    }
    async fn deployment(&self, _: i64) -> Result<Option<DeploymentRecord>, StoreError> {
        Err(broken())
    }
    async fn control_deployment(
        &self,
        _: i64,
        _: Control,
        _: &Actor,
        _: OffsetDateTime,
    ) -> Result<DeploymentRecord, StoreError> {
        Err(broken())
    }
    async fn audit_log(&self, _: i64, _: u32) -> Result<Vec<AuditEntry>, StoreError> {
        Err(broken())
    }
    async fn device_action(&self, _: i64, _: &DeviceId) -> Result<Option<DeviceAction>, StoreError> {
        Err(broken())
    }
    async fn pending_cancel(&self, _: &DeviceId) -> Result<Option<i64>, StoreError> {
        Err(broken())
    }
    async fn attributes(&self, _: &DeviceId) -> Result<Vec<(String, String)>, StoreError> {
        Err(broken())
    }
    async fn set_attributes(
        &self,
        _: &DeviceId,
        _: AttributeMode,
        _: &[(String, String)],
        _: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        Err(broken())
    }
    async fn answer_cancel(
        &self,
        _: i64,
        _: &DeviceId,
        _: Option<CancelAnswer>,
        _: &CheckedEvent,
        _: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError> {
        Err(broken())
    }
    async fn set_target_token(&self, _: &DeviceId, _: &str, _: &Actor, _: OffsetDateTime) -> Result<(), StoreError> {
        Err(broken())
    }
    async fn target_token(&self, _: &DeviceId) -> Result<Option<String>, StoreError> {
        Err(broken())
    }
}

#[tokio::test]
async fn internal_errors_hide_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState {
        repo: Arc::new(ServedRepository::open(dir.path()).unwrap()),
        store: Arc::new(BrokenStore),
        device_ids: DeviceIdSource::InsecureRequestField,
        push: Arc::new(PushHub::new(std::time::Duration::from_secs(15))),
        operator: OperatorAccess::Disabled,
        clock: Clock::system(),
    };
    let request = Request::post("/api/v1/device/checkin")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"device-id": "d1"}"#))
        .unwrap();
    let response = app(state).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body, serde_json::json!({"error": "internal", "message": "internal error"}));
}

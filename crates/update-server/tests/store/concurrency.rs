//! Many devices checking in at once: every check-in and event is stored, none fails with
//! "database is locked" (SQLite's writers once fought for its write lock and some gave up).

use std::sync::Arc;

use time::macros::datetime;
use update_protocol::{CheckedEvent, DeviceId, EventKind, Report};
use update_server::store::{PgStore, SqliteStore, Store};

/// Devices checking in side by side.
const DEVICES: usize = 256;
/// Check-ins per device.
const ROUNDS: usize = 8;

async fn all_succeed(store: Arc<dyn Store>) {
    let now = datetime!(2026-03-01 12:00 UTC);
    let mut tasks = tokio::task::JoinSet::new();
    for d in 0..DEVICES {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let device = DeviceId::parse(&format!("device-{d:04}")).unwrap();
            for round in 0..ROUNDS {
                let report = Report { version: Some(format!("1.0.{round}")), ..Report::default() };
                store.check_in(&device, &report, &[], now).await.unwrap();
                let event = CheckedEvent {
                    kind: EventKind::Checking,
                    version: None,
                    reason: None,
                    time: now,
                    deployment: None,
                };
                store.append_event(&device, &event, now).await.unwrap();
                // Reads alongside the writes.
                assert!(store.device(&device).await.unwrap().is_some());
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let devices = store.devices().await.unwrap();
    assert_eq!(devices.len(), DEVICES);
    assert!(devices.iter().all(|d| d.report.version.as_deref() == Some("1.0.7")));
    let events = store.events(&DeviceId::parse("device-0100").unwrap(), 0, 100).await.unwrap().unwrap();
    assert_eq!(events.len(), ROUNDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_check_ins_on_a_sqlite_file_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("server.db").display());
    all_succeed(Arc::new(SqliteStore::open(&url).await.unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_check_ins_on_postgresql_all_succeed() {
    let Some(cluster) = crate::pg::Cluster::start() else { return };
    all_succeed(Arc::new(PgStore::open(&cluster.url()).await.unwrap())).await;
}

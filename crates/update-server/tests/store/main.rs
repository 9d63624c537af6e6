//! The store suite: every case runs against SQLite and against a real PostgreSQL the test
//! starts itself (`pg.rs`). One binary; `suite!` makes one test per case and backend.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod cases;
mod concurrency;
mod pg;
mod two_servers;

use std::sync::Arc;

use update_server::store::{PgStore, SqliteStore, Store};

/// A store and what keeps it alive (the PostgreSQL cluster).
pub(crate) struct Backend {
    pub(crate) store: Arc<dyn Store>,
    _cluster: Option<pg::Cluster>,
}

impl Backend {
    pub(crate) async fn sqlite() -> Self {
        Self { store: Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap()), _cluster: None }
    }

    /// `None` only when PostgreSQL is missing and `UPDATE_SERVER_SKIP_PG=1` (see `pg.rs`).
    pub(crate) async fn postgres() -> Option<Self> {
        let cluster = pg::Cluster::start()?;
        let store = PgStore::open(&cluster.url()).await.unwrap();
        Some(Self { store: Arc::new(store), _cluster: Some(cluster) })
    }
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $case() {
                let b = crate::Backend::sqlite().await;
                crate::cases::$case(&*b.store).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $case() {
                let Some(b) = crate::Backend::postgres().await else { return };
                crate::cases::$case(&*b.store).await;
            })*
        }
    };
}

suite!(
    events_keep_their_order_and_the_newest_is_the_last_event,
    a_kind_newer_than_this_server_is_stored_and_read_back,
    certificate_tags_follow_the_certificate_and_operator_tags_stay,
    the_check_now_flag_is_taken_by_one_check_in,
    a_check_in_report_reads_back_as_written,
    a_failing_canary_pauses_the_deployment_and_the_audit_chain_holds,
    events_count_for_the_deployment_they_name_and_windows_give_instants,
    a_reason_with_control_characters_is_stored_escaped,
    retention_keeps_the_newest_events_per_device_and_drops_old_ones,
    lists_read_in_pages,
    ddi_actions_follow_the_deployment_and_target_tokens_are_replaced,
    the_fleet_is_counted_by_version,
    attributes_merge_replace_and_remove_within_the_limit,
    an_aborted_deployment_with_rollback_tells_the_devices_it_told,
);

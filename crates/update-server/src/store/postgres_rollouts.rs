//! The PostgreSQL side of rollouts and the operator audit log: free functions on one
//! connection (always inside the caller's transaction), called by [`PgStore`](super::PgStore).
//! The same steps as `sqlite_rollouts`, with PostgreSQL's types and explicit row locks.

use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use super::postgres::get;
use super::sqlite::{format_time, query_error};

/// The advisory lock key that serializes appends to the audit chain ("AUDIT" in ASCII).
const AUDIT_LOCK: i64 = 0x0041_5544_4954;
use super::{Control, DeploymentRecord, ReleaseRecord, StoreError, WaveView};
use crate::audit::{self, Action, Actor, AuditEntry};
use crate::rollout::{Progress, Step, WaveCounts, next_step};
use update_protocol::rollout::{AssignmentAction, DeploymentState, NewDeployment, NewRelease, Wave};
use update_protocol::{Assignment, DeviceId, EventKind, Tag};

/// Appends one row to the operator audit log (the caller holds the write lock).
pub(super) async fn append_audit(
    conn: &mut PgConnection,
    now: OffsetDateTime,
    actor: &Actor,
    action: Action,
) -> Result<AuditEntry, StoreError> {
    // One appender at a time across every server: the chain must not fork.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(AUDIT_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(query_error("lock the audit log"))?;
    let last: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM operator_audit ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(query_error("read the audit log's last row"))?;
    let entry = audit::chain(last.as_ref().map(|(s, h)| (*s, h.as_str())), now, actor, &action);
    sqlx::query(
        "INSERT INTO operator_audit (seq, time, actor, role, action, subject, details, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(entry.seq)
    .bind(&entry.time)
    .bind(&entry.actor)
    .bind(&entry.role)
    .bind(&entry.action)
    .bind(&entry.subject)
    .bind(&entry.details)
    .bind(&entry.prev_hash)
    .bind(&entry.hash)
    .execute(&mut *conn)
    .await
    .map_err(query_error("append to the audit log"))?;
    tracing::info!(
        seq = entry.seq,
        actor = %entry.actor,
        action = %entry.action,
        subject = %entry.subject,
        hash = %entry.hash,
        "operator audit"
    );
    Ok(entry)
}

pub(super) fn audit_from_row(row: &PgRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        seq: get(row, "seq")?,
        time: get(row, "time")?,
        actor: get(row, "actor")?,
        role: get(row, "role")?,
        action: get(row, "action")?,
        subject: get(row, "subject")?,
        details: get(row, "details")?,
        prev_hash: get(row, "prev_hash")?,
        hash: get(row, "hash")?,
    })
}

fn json(value: &serde_json::Value) -> String {
    value.to_string()
}

fn to_u32(column: &str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{column}: {v} out of range")))
}

const RELEASE_COLUMNS: &str =
    "r.id AS r_id, r.target, r.version AS r_version, r.created AS r_created, r.created_by AS r_created_by";

fn release_from_row(row: &PgRow) -> Result<ReleaseRecord, StoreError> {
    Ok(ReleaseRecord {
        id: get(row, "r_id")?,
        target: get(row, "target")?,
        version: get(row, "r_version")?,
        created: get(row, "r_created")?,
        created_by: get(row, "r_created_by")?,
    })
}

pub(super) async fn create_release(
    conn: &mut PgConnection,
    release: &NewRelease,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<ReleaseRecord, StoreError> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO releases (target, version, created, created_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT (target) DO NOTHING RETURNING id",
    )
    .bind(&release.target)
    .bind(&release.version)
    .bind(now)
    .bind(&actor.name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_error("register a release"))?;
    let Some(id) = id else {
        return Err(StoreError::Conflict(format!("the target {:?} is registered already", release.target)));
    };
    let details = serde_json::json!({"target": release.target, "version": release.version});
    append_audit(
        conn,
        now,
        actor,
        Action { action: "create-release", subject: format!("release/{id}"), details: json(&details) },
    )
    .await?;
    self::release(conn, id).await?.ok_or_else(|| StoreError::Corrupt(format!("release {id} vanished")))
}

pub(super) async fn releases(conn: &mut PgConnection, one: Option<i64>) -> Result<Vec<ReleaseRecord>, StoreError> {
    let sql = format!(
        "SELECT {RELEASE_COLUMNS} FROM releases r {} ORDER BY r.id",
        if one.is_some() { "WHERE r.id = $1" } else { "" }
    );
    let mut q = sqlx::query(&sql);
    if let Some(id) = one {
        q = q.bind(id);
    }
    let rows = q.fetch_all(&mut *conn).await.map_err(query_error("list releases"))?;
    rows.iter().map(release_from_row).collect()
}

pub(super) async fn release(conn: &mut PgConnection, id: i64) -> Result<Option<ReleaseRecord>, StoreError> {
    Ok(releases(conn, Some(id)).await?.into_iter().next())
}

pub(super) async fn tag_devices(
    conn: &mut PgConnection,
    tag: &Tag,
    devices: &[DeviceId],
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<usize, StoreError> {
    let mut added = 0;
    for d in devices {
        let r = sqlx::query(
            "INSERT INTO device_tags (device_id, tag, source, added) VALUES ($1, $2, 'operator', $3)
             ON CONFLICT (device_id, tag) DO UPDATE SET source = 'operator' WHERE device_tags.source <> 'operator'",
        )
        .bind(d.as_str())
        .bind(tag.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(query_error("tag a device"))?;
        added += usize::try_from(r.rows_affected()).unwrap_or(0);
    }
    let details = serde_json::json!({"devices": devices.iter().map(DeviceId::as_str).collect::<Vec<_>>()});
    append_audit(
        conn,
        now,
        actor,
        Action { action: "tag-devices", subject: format!("tag/{tag}"), details: json(&details) },
    )
    .await?;
    Ok(added)
}

pub(super) async fn untag_device(
    conn: &mut PgConnection,
    tag: &Tag,
    device: &DeviceId,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let removed = sqlx::query("DELETE FROM device_tags WHERE device_id = $1 AND tag = $2")
        .bind(device.as_str())
        .bind(tag.as_str())
        .execute(&mut *conn)
        .await
        .map_err(query_error("untag a device"))?
        .rows_affected()
        > 0;
    let details = serde_json::json!({"device": device.as_str(), "was-tagged": removed});
    append_audit(
        conn,
        now,
        actor,
        Action { action: "untag-device", subject: format!("tag/{tag}"), details: json(&details) },
    )
    .await?;
    Ok(removed)
}

/// Replaces a device's certificate tags by `tags` (operator tags are kept).
pub(super) async fn set_certificate_tags(
    conn: &mut PgConnection,
    device: &DeviceId,
    tags: &[Tag],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let held: Vec<String> =
        sqlx::query_scalar("SELECT tag FROM device_tags WHERE device_id = $1 AND source = 'certificate'")
            .bind(device.as_str())
            .fetch_all(&mut *conn)
            .await
            .map_err(query_error("read certificate tags"))?;
    for old in held.iter().filter(|h| !tags.iter().any(|t| t.as_str() == h.as_str())) {
        sqlx::query("DELETE FROM device_tags WHERE device_id = $1 AND tag = $2 AND source = 'certificate'")
            .bind(device.as_str())
            .bind(old)
            .execute(&mut *conn)
            .await
            .map_err(query_error("drop a certificate tag"))?;
    }
    for t in tags.iter().filter(|t| !held.iter().any(|h| h == t.as_str())) {
        sqlx::query(
            "INSERT INTO device_tags (device_id, tag, source, added) VALUES ($1, $2, 'certificate', $3)
             ON CONFLICT (device_id, tag) DO NOTHING",
        )
        .bind(device.as_str())
        .bind(t.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(query_error("add a certificate tag"))?;
    }
    Ok(())
}

pub(super) async fn tag_members(conn: &mut PgConnection, tag: &Tag) -> Result<Vec<(DeviceId, String)>, StoreError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT device_id, source FROM device_tags WHERE tag = $1 ORDER BY device_id")
            .bind(tag.as_str())
            .fetch_all(&mut *conn)
            .await
            .map_err(query_error("list a tag's devices"))?;
    rows.into_iter()
        .map(|(d, s)| {
            DeviceId::parse(&d).map(|d| (d, s)).map_err(|e| StoreError::Corrupt(format!("tagged device {d:?}: {e}")))
        })
        .collect()
}

pub(super) async fn create_deployment(
    conn: &mut PgConnection,
    plan: &NewDeployment,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<DeploymentRecord, StoreError> {
    let release = self::release(conn, plan.release)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no release {}", plan.release)))?;
    let members = tag_members(conn, &plan.tag).await?;
    if members.is_empty() {
        return Err(StoreError::Conflict(format!("the tag {:?} has no devices", plan.tag.as_str())));
    }
    let waves = serde_json::to_string(&plan.waves).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let window = plan
        .maintenance_window
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO deployments (release_id, tag, waves, min_wave_interval, max_failure_percent, state,
                                  current_wave, wave_opened, created, created_by, maintenance_window)
         VALUES ($1, $2, $3::jsonb, $4, $5, 'running', 0, $6, $6, $7, $8::jsonb) RETURNING id",
    )
    .bind(release.id)
    .bind(plan.tag.as_str())
    .bind(&waves)
    .bind(i64::try_from(plan.min_wave_interval_secs).unwrap_or(i64::MAX))
    .bind(i64::from(plan.max_failure_percent))
    .bind(now)
    .bind(&actor.name)
    .bind(window)
    .fetch_one(&mut *conn)
    .await
    .map_err(query_error("create a deployment"))?;
    let mut ordered: Vec<(String, DeviceId)> =
        members.into_iter().map(|(d, _)| (crate::rollout::rank(id, d.as_str()), d)).collect();
    ordered.sort();
    let total = u32::try_from(ordered.len()).unwrap_or(u32::MAX);
    let sizes = crate::rollout::wave_sizes(&plan.waves, total);
    let mut devices = ordered.iter();
    for (wave, size) in sizes.iter().enumerate() {
        for (rank, device) in devices.by_ref().take(*size as usize) {
            sqlx::query(
                "INSERT INTO deployment_devices (deployment_id, device_id, wave, rank, opened)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(device.as_str())
            .bind(i64::try_from(wave).unwrap_or(i64::MAX))
            .bind(rank)
            .bind((wave == 0).then_some(now))
            .execute(&mut *conn)
            .await
            .map_err(query_error("place a device in a wave"))?;
        }
    }
    let details = serde_json::json!({
        "release": release.id, "target": release.target, "version": release.version, "tag": plan.tag,
        "waves": plan.waves, "wave-sizes": sizes, "min-wave-interval-secs": plan.min_wave_interval_secs,
        "max-failure-percent": plan.max_failure_percent, "maintenance-window": plan.maintenance_window,
    });
    append_audit(
        conn,
        now,
        actor,
        Action { action: "create-deployment", subject: format!("deployment/{id}"), details: json(&details) },
    )
    .await?;
    deployment(conn, id).await?.ok_or_else(|| StoreError::Corrupt(format!("deployment {id} vanished")))
}

/// Each wave's counts (waves without devices have no row: zeros); with `only`, that wave's
/// alone (the others stay zero), which is what a check-in needs.
async fn wave_counts(
    conn: &mut PgConnection,
    id: i64,
    waves: usize,
    only: Option<u32>,
) -> Result<Vec<WaveCounts>, StoreError> {
    let sql = format!(
        "SELECT wave, COUNT(*) AS devices, COUNT(assigned) AS assigned, COUNT(*) FILTER (WHERE attempted) AS attempted,
                COUNT(*) FILTER (WHERE outcome = 'failed') AS failed,
                COUNT(*) FILTER (WHERE outcome = 'succeeded') AS succeeded
         FROM deployment_devices WHERE deployment_id = $1 {} GROUP BY wave",
        if only.is_some() { "AND wave = $2" } else { "" }
    );
    let mut q = sqlx::query(&sql).bind(id);
    if let Some(w) = only {
        q = q.bind(i64::from(w));
    }
    let rows = q.fetch_all(&mut *conn).await.map_err(query_error("count a deployment's waves"))?;
    let mut counts = vec![WaveCounts::default(); waves];
    for row in &rows {
        let wave = usize::try_from(get::<i64>(row, "wave")?).unwrap_or(usize::MAX);
        let Some(c) = counts.get_mut(wave) else {
            return Err(StoreError::Corrupt(format!("deployment {id}: a device in wave {wave} of {waves}")));
        };
        *c = WaveCounts {
            devices: to_u32("devices", get(row, "devices")?)?,
            assigned: to_u32("assigned", get(row, "assigned")?)?,
            attempted: to_u32("attempted", get::<Option<i64>>(row, "attempted")?.unwrap_or(0))?,
            failed: to_u32("failed", get::<Option<i64>>(row, "failed")?.unwrap_or(0))?,
            succeeded: to_u32("succeeded", get::<Option<i64>>(row, "succeeded")?.unwrap_or(0))?,
        };
    }
    Ok(counts)
}

/// Which counts [`deployment_rows`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counts {
    /// Every wave's (the operator's views).
    All,
    /// The open wave's only (moving a deployment on).
    OpenWave,
    /// None (what a device is told).
    Skip,
}

/// A deployment row without its counts.
struct StoredDeployment {
    record: DeploymentRecord,
    waived_wave: Option<u32>,
}

const DEPLOYMENT_COLUMNS: &str = "d.id, d.tag, d.waves::text AS waves, d.min_wave_interval, d.max_failure_percent,
     d.state, d.pause_reason, d.current_wave, d.wave_opened, d.waived_wave,
     d.maintenance_window::text AS maintenance_window, d.created, d.created_by";

fn deployment_from_row(row: &PgRow) -> Result<StoredDeployment, StoreError> {
    let id: i64 = get(row, "id")?;
    let waves: Vec<Wave> = serde_json::from_str(&get::<String>(row, "waves")?)
        .map_err(|e| StoreError::Corrupt(format!("deployment {id} waves: {e}")))?;
    let tag: String = get(row, "tag")?;
    let record = DeploymentRecord {
        id,
        release: release_from_row(row)?,
        tag: Tag::parse(&tag).map_err(|e| StoreError::Corrupt(format!("deployment {id} tag: {e}")))?,
        state: DeploymentState::from_name(&get::<String>(row, "state")?),
        pause_reason: get(row, "pause_reason")?,
        current_wave: to_u32("current_wave", get(row, "current_wave")?)?,
        wave_opened: get(row, "wave_opened")?,
        min_wave_interval_secs: u64::try_from(get::<i64>(row, "min_wave_interval")?)
            .map_err(|_| StoreError::Corrupt(format!("deployment {id}: negative interval")))?,
        max_failure_percent: u8::try_from(get::<i64>(row, "max_failure_percent")?)
            .map_err(|_| StoreError::Corrupt(format!("deployment {id}: bad threshold")))?,
        maintenance_window: get::<Option<String>>(row, "maintenance_window")?
            .map(|w| serde_json::from_str(&w))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("deployment {id} maintenance window: {e}")))?,
        waves: waves
            .into_iter()
            .map(|plan| WaveView { plan, devices: 0, assigned: 0, attempted: 0, failed: 0, succeeded: 0 })
            .collect(),
        created: get(row, "created")?,
        created_by: get(row, "created_by")?,
    };
    let waived_wave = get::<Option<i64>>(row, "waived_wave")?.map(|w| to_u32("waived_wave", w)).transpose()?;
    Ok(StoredDeployment { record, waived_wave })
}

async fn deployment_rows(
    conn: &mut PgConnection,
    one: Option<i64>,
    with: Counts,
) -> Result<Vec<StoredDeployment>, StoreError> {
    let sql = format!(
        "SELECT {DEPLOYMENT_COLUMNS}, {RELEASE_COLUMNS} FROM deployments d JOIN releases r ON r.id = d.release_id {} ORDER BY d.id DESC",
        if one.is_some() { "WHERE d.id = $1" } else { "" }
    );
    let mut q = sqlx::query(&sql);
    if let Some(id) = one {
        q = q.bind(id);
    }
    let rows = q.fetch_all(&mut *conn).await.map_err(query_error("read deployments"))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut d = deployment_from_row(row)?;
        let only = match with {
            Counts::All => None,
            Counts::OpenWave => Some(d.record.current_wave),
            Counts::Skip => {
                out.push(d);
                continue;
            }
        };
        let counts = wave_counts(conn, d.record.id, d.record.waves.len(), only).await?;
        for (view, c) in d.record.waves.iter_mut().zip(counts) {
            *view = WaveView {
                plan: view.plan,
                devices: c.devices,
                assigned: c.assigned,
                attempted: c.attempted,
                failed: c.failed,
                succeeded: c.succeeded,
            };
        }
        out.push(d);
    }
    Ok(out)
}

pub(super) async fn deployments(conn: &mut PgConnection) -> Result<Vec<DeploymentRecord>, StoreError> {
    Ok(deployment_rows(conn, None, Counts::All).await?.into_iter().map(|d| d.record).collect())
}

pub(super) async fn deployment(conn: &mut PgConnection, id: i64) -> Result<Option<DeploymentRecord>, StoreError> {
    Ok(deployment_rows(conn, Some(id), Counts::All).await?.into_iter().next().map(|d| d.record))
}

/// Locks a deployment's row until the transaction ends, so whatever moves it on or changes
/// it goes one at a time across every server (and reads counts no other is changing).
/// Returns whether it exists.
async fn lock_deployment(conn: &mut PgConnection, id: i64) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM deployments WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(query_error("lock a deployment"))?;
    Ok(found.is_some())
}

/// Moves a running deployment on by one [`next_step`]; the server's own decisions go to the
/// audit log too.
async fn advance(conn: &mut PgConnection, id: i64, now: OffsetDateTime) -> Result<(), StoreError> {
    lock_deployment(conn, id).await?;
    let Some(d) = deployment_rows(conn, Some(id), Counts::OpenWave).await?.into_iter().next() else {
        return Ok(());
    };
    let r = &d.record;
    if r.state != DeploymentState::Running {
        return Ok(());
    }
    let Some(open) = r.waves.get(r.current_wave as usize) else {
        return Err(StoreError::Corrupt(format!("deployment {id}: open wave {} of {}", r.current_wave, r.waves.len())));
    };
    let progress = Progress {
        wave: r.current_wave,
        waves: u32::try_from(r.waves.len()).unwrap_or(u32::MAX),
        opened: r.wave_opened,
        min_interval: time::Duration::seconds(i64::try_from(r.min_wave_interval_secs).unwrap_or(i64::MAX)),
        max_failure_percent: r.max_failure_percent,
        waived: d.waived_wave == Some(r.current_wave),
        counts: open.counts(),
    };
    match next_step(&progress, now) {
        Step::Stay => {}
        Step::Pause(reason) => {
            sqlx::query("UPDATE deployments SET state = 'paused', pause_reason = $2 WHERE id = $1")
                .bind(id)
                .bind(&reason)
                .execute(&mut *conn)
                .await
                .map_err(query_error("pause a deployment"))?;
            let c = progress.counts;
            let details = serde_json::json!({"reason": reason, "wave": r.current_wave,
                "attempted": c.attempted, "failed": c.failed, "max-failure-percent": r.max_failure_percent});
            append_audit(
                conn,
                now,
                &Actor::server(),
                Action { action: "pause-deployment", subject: format!("deployment/{id}"), details: json(&details) },
            )
            .await?;
            tracing::warn!(deployment = id, %reason, "deployment paused automatically");
        }
        Step::Open(wave) => {
            sqlx::query("UPDATE deployments SET current_wave = $2, wave_opened = $3 WHERE id = $1")
                .bind(id)
                .bind(i64::from(wave))
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(query_error("open a wave"))?;
            sqlx::query("UPDATE deployment_devices SET opened = $3 WHERE deployment_id = $1 AND wave = $2")
                .bind(id)
                .bind(i64::from(wave))
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(query_error("open a wave's devices"))?;
            let details = serde_json::json!({"wave": wave});
            append_audit(
                conn,
                now,
                &Actor::server(),
                Action { action: "open-wave", subject: format!("deployment/{id}"), details: json(&details) },
            )
            .await?;
            tracing::info!(deployment = id, wave, "wave opened");
        }
    }
    Ok(())
}

/// The newest running or paused deployment holding `device` (only `deployment`, when given):
/// its id, the device's wave, whether it was told to install, and when its wave opened.
async fn active_membership(
    conn: &mut PgConnection,
    device: &DeviceId,
    deployment: Option<i64>,
) -> Result<Option<(i64, i64, bool, Option<OffsetDateTime>)>, StoreError> {
    sqlx::query_as(
        "SELECT dd.deployment_id, dd.wave, dd.assigned IS NOT NULL, dd.opened FROM deployment_devices dd
         JOIN deployments d ON d.id = dd.deployment_id
         WHERE dd.device_id = $1 AND d.state IN ('running', 'paused') AND ($2::BIGINT IS NULL OR dd.deployment_id = $2)
         ORDER BY dd.deployment_id DESC LIMIT 1",
    )
    .bind(device.as_str())
    .bind(deployment)
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_error("find a device's deployment"))
}

/// At check-in: moves the device's deployment on, then returns its assignment (and marks it
/// told when it says install).
pub(super) async fn assignment(
    conn: &mut PgConnection,
    device: &DeviceId,
    now: OffsetDateTime,
) -> Result<Option<Assignment>, StoreError> {
    if let Some((id, ..)) = active_membership(conn, device, None).await? {
        advance(conn, id, now).await?;
    }
    let Some((id, wave, _, opened)) = active_membership(conn, device, None).await? else {
        return Ok(None);
    };
    let Some(d) = deployment_rows(conn, Some(id), Counts::Skip).await?.into_iter().next().map(|d| d.record) else {
        return Ok(None);
    };
    let wave = to_u32("wave", wave)?;
    let Some(opened) = opened else {
        return Ok(None); // the device's wave has not opened
    };
    let Some((action, closes, opens)) =
        crate::rollout::assignment_action(id, d.state, d.maintenance_window.as_ref(), now)
    else {
        return Ok(None);
    };
    let time = |t: Option<OffsetDateTime>| t.map(format_time).transpose();
    if action == AssignmentAction::Install {
        sqlx::query(
            "UPDATE deployment_devices SET assigned = $3 WHERE deployment_id = $1 AND device_id = $2 AND assigned IS NULL",
        )
        .bind(id)
        .bind(device.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(query_error("mark a device told"))?;
    }
    Ok(Some(Assignment {
        deployment: id,
        target: d.release.target,
        version: d.release.version,
        wave,
        action,
        allowed_from: format_time(opened)?,
        window: d.maintenance_window,
        window_closes: time(closes)?,
        window_opens: time(opens)?,
    }))
}

/// After an event: counts it for the device's deployment (the one the event names, else the
/// newest active one holding the device), if the device was told to install, then moves the
/// deployment on.
pub(super) async fn record_event(
    conn: &mut PgConnection,
    device: &DeviceId,
    kind: &EventKind,
    deployment: Option<i64>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let attempt = matches!(
        kind,
        EventKind::Downloading
            | EventKind::Installed
            | EventKind::Rebooted
            | EventKind::Committed
            | EventKind::RolledBack
            | EventKind::Failed
    );
    if !attempt {
        return Ok(());
    }
    let Some((id, _, true, _)) = active_membership(conn, device, deployment).await? else {
        return Ok(());
    };
    // Before the device's row: a check-in takes the deployment first, then that row.
    lock_deployment(conn, id).await?;
    let outcome = match kind {
        EventKind::Failed | EventKind::RolledBack => "outcome = 'failed'",
        EventKind::Committed => "outcome = COALESCE(outcome, 'succeeded')",
        _ => "outcome = outcome",
    };
    sqlx::query(&format!(
        "UPDATE deployment_devices SET attempted = TRUE, {outcome} WHERE deployment_id = $1 AND device_id = $2"
    ))
    .bind(id)
    .bind(device.as_str())
    .execute(&mut *conn)
    .await
    .map_err(query_error("count an attempt"))?;
    advance(conn, id, now).await
}

pub(super) async fn control_deployment(
    conn: &mut PgConnection,
    id: i64,
    control: Control,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<DeploymentRecord, StoreError> {
    if !lock_deployment(conn, id).await? {
        return Err(StoreError::NotFound(format!("no deployment {id}")));
    }
    let d = deployment(conn, id).await?.ok_or_else(|| StoreError::NotFound(format!("no deployment {id}")))?;
    let (sql, action, allowed) = match control {
        Control::Pause => (
            "UPDATE deployments SET state = 'paused', pause_reason = $2 WHERE id = $1",
            "pause-deployment",
            d.state == DeploymentState::Running,
        ),
        Control::Resume => (
            "UPDATE deployments SET state = 'running', pause_reason = NULL, waived_wave = current_wave,
                                    wave_opened = $2 WHERE id = $1",
            "resume-deployment",
            d.state == DeploymentState::Paused,
        ),
        Control::Abort => (
            "UPDATE deployments SET state = 'aborted', pause_reason = NULL WHERE id = $1",
            "abort-deployment",
            matches!(d.state, DeploymentState::Running | DeploymentState::Paused),
        ),
    };
    if !allowed {
        return Err(StoreError::Conflict(format!("deployment {id} is {}: cannot {action}", d.state.as_str())));
    }
    let query = sqlx::query(sql).bind(id);
    // PostgreSQL refuses parameters a statement does not use.
    let query = match control {
        Control::Pause => query.bind(format!("paused by {}", actor.name)),
        Control::Resume => query.bind(now),
        Control::Abort => query,
    };
    query.execute(&mut *conn).await.map_err(query_error("change a deployment"))?;
    let open = d.waves.get(d.current_wave as usize).map(WaveView::counts).unwrap_or_default();
    let details = serde_json::json!({"from": d.state, "wave": d.current_wave,
        "attempted": open.attempted, "failed": open.failed});
    append_audit(conn, now, actor, Action { action, subject: format!("deployment/{id}"), details: json(&details) })
        .await?;
    deployment(conn, id).await?.ok_or_else(|| StoreError::Corrupt(format!("deployment {id} vanished")))
}

//! The statements behind [`Queries`](super::logic::Queries), written once for both
//! backends: `queries!` expands to the methods of an `impl Queries`, given what differs
//! between the SQL dialects (the type times are bound as, the cast that stores JSON text,
//! the cast that reads it back, and the row lock SQLite does without). Parameters are `$N`,
//! which both PostgreSQL and sqlx's SQLite driver take.

/// The methods of `impl Queries for CONNECTION`: `time` converts an `OffsetDateTime` to what
/// the backend binds (`Result<_, StoreError>`), `json` follows a JSON parameter (`"::jsonb"`
/// or `""`), `text` follows a JSON column read as text (`"::text"` or `""`), `lock` follows
/// a deployment's `SELECT` to lock its row (`" FOR UPDATE"` or `""`).
macro_rules! queries {
    (time = $time:path, json = $json:literal, text = $text:literal, lock = $lock:literal) => {
    async fn ping(&mut self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&mut *self).await.map_err(query_error("ping"))?;
        Ok(())
    }

    async fn device_rows(&mut self, one: Option<&DeviceId>) -> Result<Vec<Self::Row>, StoreError> {
        let sql = format!(
            concat!("SELECT d.id, d.compatible, d.version, d.booted, d.primary_slot, d.slots", $text, " AS slots, d.first_seen,
                    d.last_checkin, d.check_now,
                    e.seq, e.kind, e.version AS event_version, e.reason, e.device_time, e.received
             FROM devices d
             LEFT JOIN events e ON e.seq = (SELECT MAX(seq) FROM events WHERE device_id = d.id)
             {}
             ORDER BY d.id"),
            if one.is_some() { "WHERE d.id = $1" } else { "" }
        );
        let mut query = sqlx::query(&sql);
        if let Some(id) = one {
            query = query.bind(id.as_str());
        }
        query.fetch_all(&mut *self).await.map_err(query_error("list devices"))
    }

    async fn version_summary_rows(&mut self, online_since: OffsetDateTime) -> Result<Vec<Self::Row>, StoreError> {
        sqlx::query(
            "SELECT d.version, COUNT(*) AS devices,
                    COUNT(*) FILTER (WHERE d.last_checkin >= $1) AS online,
                    COUNT(*) FILTER (WHERE e.kind IN ('failed', 'rolled-back')) AS failing
             FROM devices d
             LEFT JOIN events e ON e.seq = (SELECT MAX(seq) FROM events WHERE device_id = d.id)
             GROUP BY d.version
             ORDER BY d.version NULLS FIRST",
        )
        .bind($time(online_since)?)
        .fetch_all(&mut *self)
        .await
        .map_err(query_error("count devices by version"))
    }

    async fn device_page_rows(&mut self, after: &str, limit: u32) -> Result<Vec<Self::Row>, StoreError> {
        sqlx::query(concat!("SELECT d.id, d.compatible, d.version, d.booted, d.primary_slot, d.slots", $text, " AS slots, d.first_seen,
                    d.last_checkin, d.check_now,
                    e.seq, e.kind, e.version AS event_version, e.reason, e.device_time, e.received
             FROM (SELECT * FROM devices WHERE id > $1 ORDER BY id LIMIT $2) d
             LEFT JOIN events e ON e.seq = (SELECT MAX(seq) FROM events WHERE device_id = d.id)
             ORDER BY d.id"))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *self)
        .await
        .map_err(query_error("list devices"))
    }

    async fn take_check_now(&mut self, device: &DeviceId) -> Result<bool, StoreError> {
        let taken =
            sqlx::query("UPDATE devices SET check_now = FALSE, check_now_requested = NULL WHERE id = $1 AND check_now")
                .bind(device.as_str())
                .execute(&mut *self)
                .await
                .map_err(query_error("take the check-now flag"))?;
        Ok(taken.rows_affected() > 0)
    }

    async fn record_report(
        &mut self,
        device: &DeviceId,
        report: &Report,
        slots: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO devices (id, compatible, version, booted, primary_slot, slots, first_seen, last_checkin)
             VALUES ($1, $2, $3, $4, $5, $6", $json, ", $7, $7)
             ON CONFLICT (id) DO UPDATE SET
                 compatible = excluded.compatible, version = excluded.version, booted = excluded.booted,
                 primary_slot = excluded.primary_slot, slots = excluded.slots,
                 last_checkin = excluded.last_checkin",
        ))
        .bind(device.as_str())
        .bind(&report.compatible)
        .bind(&report.version)
        .bind(&report.booted)
        .bind(&report.primary)
        .bind(slots)
        .bind($time(now)?)
        .execute(&mut *self)
        .await
        .map_err(query_error("record a check-in"))?;
        Ok(())
    }

    async fn ensure_device(&mut self, device: &DeviceId, now: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO devices (id, first_seen) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(device.as_str())
            .bind($time(now)?)
            .execute(&mut *self)
            .await
            .map_err(query_error("create a device"))?;
        Ok(())
    }

    async fn insert_event(
        &mut self,
        device: &DeviceId,
        event: &CheckedEvent,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO events (device_id, kind, version, reason, device_time, received)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
        )
        .bind(device.as_str())
        .bind(event.kind.as_str())
        .bind(&event.version)
        .bind(&event.reason)
        .bind($time(event.time)?)
        .bind($time(now)?)
        .fetch_one(&mut *self)
        .await
        .map_err(query_error("append an event"))
    }

    async fn delete_events_before(&mut self, received: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM events WHERE received < $1")
            .bind($time(received)?)
            .execute(&mut *self)
            .await
            .map_err(query_error("delete old events"))?;
        Ok(done.rows_affected())
    }

    async fn devices_with_events_after(&mut self, seq: i64) -> Result<(Vec<String>, i64), StoreError> {
        let devices: Vec<String> =
            sqlx::query_scalar("SELECT device_id FROM events WHERE seq > $1 GROUP BY device_id ORDER BY device_id")
                .bind(seq)
                .fetch_all(&mut *self)
                .await
                .map_err(query_error("find devices with new events"))?;
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events")
            .fetch_one(&mut *self)
            .await
            .map_err(query_error("find the newest event"))?;
        Ok((devices, max.unwrap_or(seq)))
    }

    async fn keep_newest_events(&mut self, device: &str, keep: u32) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM events WHERE device_id = $1 AND seq <=
                 (SELECT seq FROM events WHERE device_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)",
        )
        .bind(device)
        .bind(i64::from(keep))
        .execute(&mut *self)
        .await
        .map_err(query_error("delete a device's oldest events"))?;
        Ok(done.rows_affected())
    }

    async fn device_known(&mut self, device: &DeviceId) -> Result<bool, StoreError> {
        let known: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE id = $1")
            .bind(device.as_str())
            .fetch_one(&mut *self)
            .await
            .map_err(query_error("find a device"))?;
        Ok(known > 0)
    }

    async fn event_rows(&mut self, device: &DeviceId, after: i64, limit: u32) -> Result<Vec<Self::Row>, StoreError> {
        sqlx::query(
            "SELECT seq, kind, version, reason, device_time, received FROM events
             WHERE device_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(device.as_str())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *self)
        .await
        .map_err(query_error("list events"))
    }

    async fn set_check_now(&mut self, device: &DeviceId, now: OffsetDateTime) -> Result<bool, StoreError> {
        let updated = sqlx::query("UPDATE devices SET check_now = TRUE, check_now_requested = $2 WHERE id = $1")
            .bind(device.as_str())
            .bind($time(now)?)
            .execute(&mut *self)
            .await
            .map_err(query_error("set the check-now flag"))?;
        Ok(updated.rows_affected() > 0)
    }

    async fn last_audit(&mut self) -> Result<Option<(i64, String)>, StoreError> {
        sqlx::query_as("SELECT seq, hash FROM operator_audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *self)
            .await
            .map_err(query_error("read the audit log's last row"))
    }

    async fn insert_audit(&mut self, entry: &AuditEntry) -> Result<(), StoreError> {
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
        .execute(&mut *self)
        .await
        .map_err(query_error("append to the audit log"))?;
        Ok(())
    }

    async fn audit_rows(&mut self, after: i64, limit: u32) -> Result<Vec<Self::Row>, StoreError> {
        sqlx::query(
            "SELECT seq, time, actor, role, action, subject, details, prev_hash, hash FROM operator_audit
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *self)
        .await
        .map_err(query_error("read the audit log"))
    }

    async fn insert_release(
        &mut self,
        release: &NewRelease,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO releases (target, version, created, created_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (target) DO NOTHING RETURNING id",
        )
        .bind(&release.target)
        .bind(&release.version)
        .bind($time(now)?)
        .bind(&actor.name)
        .fetch_optional(&mut *self)
        .await
        .map_err(query_error("register a release"))
    }

    async fn release_page_rows(&mut self, after: i64, limit: u32) -> Result<Vec<Self::Row>, StoreError> {
        let sql = format!("SELECT {RELEASE_COLUMNS} FROM releases r WHERE r.id > $1 ORDER BY r.id LIMIT $2");
        sqlx::query(&sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&mut *self)
            .await
            .map_err(query_error("list releases"))
    }

    async fn release_rows(&mut self, one: Option<i64>) -> Result<Vec<Self::Row>, StoreError> {
        let sql = format!(
            "SELECT {} FROM releases r {} ORDER BY r.id",
            RELEASE_COLUMNS,
            if one.is_some() { "WHERE r.id = $1" } else { "" }
        );
        let mut q = sqlx::query(&sql);
        if let Some(id) = one {
            q = q.bind(id);
        }
        q.fetch_all(&mut *self).await.map_err(query_error("list releases"))
    }

    async fn tag_by_operator(&mut self, device: &DeviceId, tag: &Tag, now: OffsetDateTime) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO device_tags (device_id, tag, source, added) VALUES ($1, $2, 'operator', $3)
             ON CONFLICT (device_id, tag) DO UPDATE SET source = 'operator' WHERE device_tags.source <> 'operator'",
        )
        .bind(device.as_str())
        .bind(tag.as_str())
        .bind($time(now)?)
        .execute(&mut *self)
        .await
        .map_err(query_error("tag a device"))?;
        Ok(r.rows_affected() > 0)
    }

    async fn untag(&mut self, device: &DeviceId, tag: &Tag) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM device_tags WHERE device_id = $1 AND tag = $2")
            .bind(device.as_str())
            .bind(tag.as_str())
            .execute(&mut *self)
            .await
            .map_err(query_error("untag a device"))?;
        Ok(r.rows_affected() > 0)
    }

    async fn certificate_tags(&mut self, device: &DeviceId) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT tag FROM device_tags WHERE device_id = $1 AND source = 'certificate'")
            .bind(device.as_str())
            .fetch_all(&mut *self)
            .await
            .map_err(query_error("read certificate tags"))
    }

    async fn drop_certificate_tag(&mut self, device: &DeviceId, tag: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM device_tags WHERE device_id = $1 AND tag = $2 AND source = 'certificate'")
            .bind(device.as_str())
            .bind(tag)
            .execute(&mut *self)
            .await
            .map_err(query_error("drop a certificate tag"))?;
        Ok(r.rows_affected() > 0)
    }

    async fn add_certificate_tag(
        &mut self,
        device: &DeviceId,
        tag: &Tag,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO device_tags (device_id, tag, source, added) VALUES ($1, $2, 'certificate', $3)
             ON CONFLICT (device_id, tag) DO NOTHING",
        )
        .bind(device.as_str())
        .bind(tag.as_str())
        .bind($time(now)?)
        .execute(&mut *self)
        .await
        .map_err(query_error("add a certificate tag"))?;
        Ok(())
    }

    async fn tag_member_page_rows(&mut self, tag: &Tag, after: &str, limit: u32) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as("SELECT device_id, source FROM device_tags WHERE tag = $1 AND device_id > $2 ORDER BY device_id LIMIT $3")
            .bind(tag.as_str())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&mut *self)
            .await
            .map_err(query_error("list a tag's devices"))
    }

    async fn tag_member_rows(&mut self, tag: &Tag) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as("SELECT device_id, source FROM device_tags WHERE tag = $1 ORDER BY device_id")
            .bind(tag.as_str())
            .fetch_all(&mut *self)
            .await
            .map_err(query_error("list a tag's devices"))
    }

    async fn insert_deployment(
        &mut self,
        plan: &NewDeployment,
        waves: &str,
        window: Option<&str>,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar(concat!(
            "INSERT INTO deployments (release_id, tag, waves, min_wave_interval, max_failure_percent, state,
                                      current_wave, wave_opened, created, created_by, maintenance_window,
                                      rollback_on_abort)
             VALUES ($1, $2, $3", $json, ", $4, $5, 'running', 0, $6, $6, $7, $8", $json, ", $9) RETURNING id",
        ))
        .bind(plan.release)
        .bind(plan.tag.as_str())
        .bind(waves)
        .bind(i64::try_from(plan.min_wave_interval_secs).unwrap_or(i64::MAX))
        .bind(i64::from(plan.max_failure_percent))
        .bind($time(now)?)
        .bind(&actor.name)
        .bind(window)
        .bind(plan.rollback_on_abort)
        .fetch_one(&mut *self)
        .await
        .map_err(query_error("create a deployment"))
    }

    async fn place_device(
        &mut self,
        deployment: i64,
        device: &DeviceId,
        wave: i64,
        rank: &str,
        opened: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO deployment_devices (deployment_id, device_id, wave, rank, opened) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(deployment)
        .bind(device.as_str())
        .bind(wave)
        .bind(rank)
        .bind(opened.map($time).transpose()?)
        .execute(&mut *self)
        .await
        .map_err(query_error("place a device in a wave"))?;
        Ok(())
    }

    async fn deployment_page_rows(&mut self, before: i64, limit: u32) -> Result<Vec<Self::Row>, StoreError> {
        let sql = format!(
            concat!(
                "SELECT d.id, d.tag, d.waves", $text, " AS waves, d.min_wave_interval, d.max_failure_percent,
                        d.state, d.pause_reason, d.current_wave, d.wave_opened, d.waived_wave,
                        d.maintenance_window", $text, " AS maintenance_window, d.rollback_on_abort, d.created,
                        d.created_by, {}
                 FROM deployments d JOIN releases r ON r.id = d.release_id WHERE d.id < $1 ORDER BY d.id DESC LIMIT $2"
            ),
            RELEASE_COLUMNS,
        );
        sqlx::query(&sql)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&mut *self)
            .await
            .map_err(query_error("read deployments"))
    }

    async fn deployment_rows(&mut self, one: Option<i64>) -> Result<Vec<Self::Row>, StoreError> {
        let sql = format!(
            concat!(
                "SELECT d.id, d.tag, d.waves", $text, " AS waves, d.min_wave_interval, d.max_failure_percent,
                        d.state, d.pause_reason, d.current_wave, d.wave_opened, d.waived_wave,
                        d.maintenance_window", $text, " AS maintenance_window, d.rollback_on_abort, d.created,
                        d.created_by, {}
                 FROM deployments d JOIN releases r ON r.id = d.release_id {} ORDER BY d.id DESC"
            ),
            RELEASE_COLUMNS,
            if one.is_some() { "WHERE d.id = $1" } else { "" }
        );
        let mut q = sqlx::query(&sql);
        if let Some(id) = one {
            q = q.bind(id);
        }
        q.fetch_all(&mut *self).await.map_err(query_error("read deployments"))
    }

    async fn wave_count_rows(&mut self, deployment: i64, through: Option<u32>) -> Result<Vec<Self::Row>, StoreError> {
        let sql = format!(
            "SELECT wave, COUNT(*) AS devices, COUNT(assigned) AS assigned,
                    COUNT(*) FILTER (WHERE attempted) AS attempted,
                    COUNT(*) FILTER (WHERE outcome = 'failed') AS failed,
                    COUNT(*) FILTER (WHERE outcome = 'succeeded') AS succeeded
             FROM deployment_devices WHERE deployment_id = $1 {} GROUP BY wave",
            if through.is_some() { "AND wave <= $2" } else { "" }
        );
        let mut q = sqlx::query(&sql).bind(deployment);
        if let Some(w) = through {
            q = q.bind(i64::from(w));
        }
        q.fetch_all(&mut *self).await.map_err(query_error("count a deployment's waves"))
    }

    /// With `lock`, the deployment's row stays locked until the transaction ends, so whatever
    /// moves it on or changes it goes one at a time across every server (and reads counts no
    /// other is changing); without (SQLite, whose write lock the transaction holds), a lookup.
    async fn lock_deployment(&mut self, deployment: i64) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(concat!("SELECT id FROM deployments WHERE id = $1", $lock))
            .bind(deployment)
            .fetch_optional(&mut *self)
            .await
            .map_err(query_error("lock a deployment"))?;
        Ok(found.is_some())
    }

    async fn pause(&mut self, deployment: i64, reason: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE deployments SET state = 'paused', pause_reason = $2 WHERE id = $1")
            .bind(deployment)
            .bind(reason)
            .execute(&mut *self)
            .await
            .map_err(query_error("pause a deployment"))?;
        Ok(())
    }

    async fn open_wave(&mut self, deployment: i64, wave: u32, now: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query("UPDATE deployments SET current_wave = $2, wave_opened = $3 WHERE id = $1")
            .bind(deployment)
            .bind(i64::from(wave))
            .bind($time(now)?)
            .execute(&mut *self)
            .await
            .map_err(query_error("open a wave"))?;
        sqlx::query("UPDATE deployment_devices SET opened = $3 WHERE deployment_id = $1 AND wave = $2")
            .bind(deployment)
            .bind(i64::from(wave))
            .bind($time(now)?)
            .execute(&mut *self)
            .await
            .map_err(query_error("open a wave's devices"))?;
        Ok(())
    }

    async fn set_state(
        &mut self,
        deployment: i64,
        control: Control,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let sql = match control {
            Control::Pause => "UPDATE deployments SET state = 'paused', pause_reason = $2 WHERE id = $1",
            Control::Resume => {
                "UPDATE deployments SET state = 'running', pause_reason = NULL, waived_wave = current_wave,
                                        wave_opened = $2 WHERE id = $1"
            }
            Control::Abort => "UPDATE deployments SET state = 'aborted', pause_reason = NULL WHERE id = $1",
        };
        let query = sqlx::query(sql).bind(deployment);
        // PostgreSQL refuses parameters a statement does not use.
        let query = match control {
            Control::Pause => query.bind(reason),
            Control::Resume => query.bind($time(now)?),
            Control::Abort => query,
        };
        query.execute(&mut *self).await.map_err(query_error("change a deployment"))?;
        Ok(())
    }

    async fn action_row(&mut self, deployment: i64, device: &DeviceId) -> Result<Option<Self::Row>, StoreError> {
        sqlx::query(
            "SELECT dd.assigned IS NOT NULL AS told, dd.outcome, dd.cancel_answer, d.state FROM deployment_devices dd
             JOIN deployments d ON d.id = dd.deployment_id
             WHERE dd.deployment_id = $1 AND dd.device_id = $2",
        )
        .bind(deployment)
        .bind(device.as_str())
        .fetch_optional(&mut *self)
        .await
        .map_err(query_error("read a device's action"))
    }

    async fn upsert_target_token(
        &mut self,
        device: &DeviceId,
        digest: &str,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ddi_target_tokens (device_id, digest, created, created_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (device_id) DO UPDATE SET digest = excluded.digest, created = excluded.created,
                 created_by = excluded.created_by",
        )
        .bind(device.as_str())
        .bind(digest)
        .bind($time(now)?)
        .bind(&actor.name)
        .execute(&mut *self)
        .await
        .map_err(query_error("store a target token"))?;
        Ok(())
    }

    async fn target_token_digest(&mut self, device: &DeviceId) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT digest FROM ddi_target_tokens WHERE device_id = $1")
            .bind(device.as_str())
            .fetch_optional(&mut *self)
            .await
            .map_err(query_error("read a target token"))
    }

    async fn membership(
        &mut self,
        device: &DeviceId,
        deployment: Option<i64>,
    ) -> Result<Option<Membership>, StoreError> {
        let row = sqlx::query(
            "SELECT dd.deployment_id, dd.wave, dd.assigned IS NOT NULL AS told, dd.opened FROM deployment_devices dd
             JOIN deployments d ON d.id = dd.deployment_id
             WHERE dd.device_id = $1 AND d.state IN ('running', 'paused') AND (CAST($2 AS BIGINT) IS NULL OR dd.deployment_id = $2)
             ORDER BY dd.deployment_id DESC LIMIT 1",
        )
        .bind(device.as_str())
        .bind(deployment)
        .fetch_optional(&mut *self)
        .await
        .map_err(query_error("find a device's deployment"))?;
        row.map(|row| {
            Ok(Membership {
                deployment: row.int("deployment_id")?,
                wave: row.int("wave")?,
                told: row.flag("told")?,
                opened: row.opt_time("opened")?,
            })
        })
        .transpose()
    }

    async fn attribute_rows(&mut self, device: &DeviceId) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as("SELECT name, value FROM device_attributes WHERE device_id = $1 ORDER BY name")
            .bind(device.as_str())
            .fetch_all(&mut *self)
            .await
            .map_err(query_error("read a device's attributes"))
    }

    async fn upsert_attribute(
        &mut self,
        device: &DeviceId,
        name: &str,
        value: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO device_attributes (device_id, name, value, updated) VALUES ($1, $2, $3, $4)
             ON CONFLICT (device_id, name) DO UPDATE SET value = excluded.value, updated = excluded.updated",
        )
        .bind(device.as_str())
        .bind(name)
        .bind(value)
        .bind($time(now)?)
        .execute(&mut *self)
        .await
        .map_err(query_error("store an attribute"))?;
        Ok(())
    }

    async fn delete_attributes(&mut self, device: &DeviceId, name: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM device_attributes WHERE device_id = $1 AND (CAST($2 AS TEXT) IS NULL OR name = $2)")
            .bind(device.as_str())
            .bind(name)
            .execute(&mut *self)
            .await
            .map_err(query_error("delete attributes"))?;
        Ok(())
    }

    async fn last_told(&mut self, device: &DeviceId) -> Result<Option<Self::Row>, StoreError> {
        sqlx::query(
            "SELECT dd.deployment_id, dd.wave, dd.assigned, d.state, d.rollback_on_abort FROM deployment_devices dd
             JOIN deployments d ON d.id = dd.deployment_id
             WHERE dd.device_id = $1 AND dd.assigned IS NOT NULL
             ORDER BY dd.deployment_id DESC LIMIT 1",
        )
        .bind(device.as_str())
        .fetch_optional(&mut *self)
        .await
        .map_err(query_error("find a device's last deployment"))
    }

    async fn pending_cancel(&mut self, device: &DeviceId) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(
            "SELECT dd.deployment_id FROM deployment_devices dd
             JOIN deployments d ON d.id = dd.deployment_id
             WHERE dd.device_id = $1 AND d.state = 'aborted' AND dd.assigned IS NOT NULL
                 AND dd.outcome IS NULL AND dd.cancel_answer IS NULL
             ORDER BY dd.deployment_id DESC LIMIT 1",
        )
        .bind(device.as_str())
        .fetch_optional(&mut *self)
        .await
        .map_err(query_error("find a device's cancel"))
    }

    async fn set_cancel_answer(
        &mut self,
        deployment: i64,
        device: &DeviceId,
        answer: crate::store::CancelAnswer,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE deployment_devices SET cancel_answer = $3
             WHERE deployment_id = $1 AND device_id = $2 AND cancel_answer IS NULL",
        )
        .bind(deployment)
        .bind(device.as_str())
        .bind(answer.as_str())
        .execute(&mut *self)
        .await
        .map_err(query_error("store a cancel answer"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn mark_told(&mut self, deployment: i64, device: &DeviceId, now: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE deployment_devices SET assigned = $3 WHERE deployment_id = $1 AND device_id = $2 AND assigned IS NULL",
        )
        .bind(deployment)
        .bind(device.as_str())
        .bind($time(now)?)
        .execute(&mut *self)
        .await
        .map_err(query_error("mark a device told"))?;
        Ok(())
    }

    async fn count_attempt(&mut self, deployment: i64, device: &DeviceId, outcome: Outcome) -> Result<(), StoreError> {
        let outcome = match outcome {
            Outcome::Failed => "outcome = 'failed'",
            Outcome::Succeeded => "outcome = COALESCE(outcome, 'succeeded')",
            Outcome::Unchanged => "outcome = outcome",
        };
        sqlx::query(&format!(
            "UPDATE deployment_devices SET attempted = TRUE, {outcome} WHERE deployment_id = $1 AND device_id = $2"
        ))
        .bind(deployment)
        .bind(device.as_str())
        .execute(&mut *self)
        .await
        .map_err(query_error("count an attempt"))?;
        Ok(())
    }
    };
}

pub(super) use queries;

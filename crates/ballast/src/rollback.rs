//! Config rollback: put a recorded config version back in the file and running, in one step.
//!
//! It exists because "fast rollback matters more than fast deploys": when a config change
//! hurts, the operator should not have to find the old text, copy it into place and reload by
//! hand at 3 a.m. The steps are fixed so that each failure leaves things as they were:
//!
//! 1. pick the version (named, or the previous good one: the newest applied version of this
//!    instance before the running one whose text differs) and refuse one that was itself
//!    refused, or that is already running and in the file;
//! 2. validate its text with the source's own parser: an invalid text changes nothing;
//! 3. write it to the config file, keeping the replaced file as `NAME.bak.<UTC time>`, so that
//!    a restart or the next SIGHUP does not undo the rollback;
//! 4. apply it through the same path as a reload ([`Gateway::reload_from_source`], which reads
//!    the file just written) and record it in the history with source `rollback`; its
//!    `reload_applied`/`reload_refused` event says `by: rollback` and names the person who
//!    asked (`who`), when known;
//! 5. if the gateway refuses it now (a port in use, say), rename the kept file back: the file
//!    and the running config are as before, and the refusal is the answer.
//!
//! The caller holds the config lock (see `app`), so a rollback never interleaves with a reload.

use ballast_admin::RollbackError;
use ballast_config::{Source, WriteBackError};
use ballast_core::{ConfigOutcome, ConfigVersion, Origin, RollbackReport};
use ballast_proxy::Gateway;

use crate::history::History;

/// Rolls back to `version` (by default the previous good version) on behalf of `by` and, when
/// known, of the person `who`.
pub async fn rollback(
    gateway: &Gateway,
    source: &Source,
    history: &History,
    version: Option<u64>,
    by: Origin,
    who: Option<String>,
) -> Result<RollbackReport, RollbackError> {
    let result = run(gateway, source, history, version, by, who.clone()).await;
    match &result {
        Ok(r) => tracing::info!(
            version = r.version,
            sha256 = %r.sha256,
            backup = ?r.backup,
            by = by.name(),
            who = ?who,
            "config rolled back"
        ),
        Err(e) => {
            tracing::error!(version = ?version, by = by.name(), who = ?who, error = %e, "config rollback not done")
        }
    }
    result
}

async fn run(
    gateway: &Gateway,
    source: &Source,
    history: &History,
    version: Option<u64>,
    by: Origin,
    who: Option<String>,
) -> Result<RollbackReport, RollbackError> {
    let target = match version {
        Some(id) => named(history, id).await?,
        None => previous_good(history).await?,
    };
    let id = target.id;
    if already_in_place(history, source, &target).await? {
        return Err(RollbackError::Conflict(format!(
            "version {id} is already the running config and the config file holds it: there is nothing to roll back"
        )));
    }
    if let Err(e) = source.parse(&target.text) {
        return Err(RollbackError::Invalid(format!(
            "version {id} does not validate now, so nothing was changed (the positions are in its text: ballast config show {id}):\n{e}"
        )));
    }
    let written = source.write_back(&target.text).map_err(|e| match e {
        WriteBackError::Embedded(_) => RollbackError::NoFile(e.to_string()),
        WriteBackError::Io { .. } => RollbackError::Write(format!("{e}; nothing was changed")),
    })?;
    let attempt = gateway.reload_from_source(Origin::Rollback, who).await;
    history.reloaded(Origin::Rollback, &attempt);
    if attempt.text.as_deref() != Some(target.text.as_str()) {
        tracing::warn!(
            version = id,
            "the config file changed while it was rolled back; the gateway applied what it read"
        );
    }
    let reload = match attempt.result {
        Ok(report) => report,
        Err(refusal) => {
            let file = written.file.display();
            return Err(match source.restore(&written) {
                Ok(()) => RollbackError::Refused(format!(
                    "the gateway refused version {id}: {refusal}. {file} was put back as it was; the running config is unchanged"
                )),
                Err(e) => RollbackError::NotRestored(format!(
                    "the gateway refused version {id}: {refusal}. Putting the replaced file back failed ({e}): {file} holds version {id}'s text while the previous config keeps running; the replaced file is kept as {}",
                    written.backup.as_ref().map_or("(none)".into(), |b| b.display().to_string())
                )),
            });
        }
    };
    Ok(RollbackReport {
        version: id,
        sha256: target.sha256,
        file: written.file.display().to_string(),
        backup: written.backup.map(|b| b.display().to_string()),
        requested_by: by,
        reload,
    })
}

/// Version `id`, unless it was refused when it was offered.
async fn named(history: &History, id: u64) -> Result<ConfigVersion, RollbackError> {
    let v = history.version(id).await?;
    if let ConfigOutcome::Refused { error } = &v.outcome {
        return Err(RollbackError::Conflict(format!(
            "version {id} was refused when it was offered ({}), so it is not a good version to roll back to; `ballast config history` lists the applied ones",
            error.lines().next().unwrap_or_default()
        )));
    }
    Ok(v)
}

/// The newest applied version of this instance before the running one whose text differs
/// from the running one's (a restart records the same text again; going back to it would
/// change nothing).
async fn previous_good(history: &History) -> Result<ConfigVersion, RollbackError> {
    let store = history.store()?;
    let instance = Some(history.instance());
    let running = store
        .latest_applied(instance)
        .await
        .map_err(|e| history.failed(e))?
        .ok_or_else(|| {
            RollbackError::Conflict(
                "no applied config of this gateway is recorded yet: there is nothing to roll back to"
                    .into(),
            )
        })?;
    let mut before = running.id;
    loop {
        let earlier = store
            .previous_applied(before, instance)
            .await
            .map_err(|e| history.failed(e))?;
        match earlier {
            Some(v) if v.sha256 != running.sha256 => return Ok(v),
            Some(v) => before = v.id,
            None => {
                return Err(RollbackError::Conflict(format!(
                    "no applied config of this gateway before the running one (version {}) has a different text: there is nothing to roll back to; name a version: ballast rollback VERSION",
                    running.id
                )))
            }
        }
    }
}

/// Whether `target`'s text is both this instance's running config and the file's content.
async fn already_in_place(
    history: &History,
    source: &Source,
    target: &ConfigVersion,
) -> Result<bool, RollbackError> {
    if source.read().ok().as_deref() != Some(target.text.as_str()) {
        return Ok(false);
    }
    let running = history
        .store()?
        .latest_applied(Some(history.instance()))
        .await
        .map_err(|e| RollbackError::History(history.failed(e)))?;
    Ok(running.is_some_and(|r| r.sha256 == target.sha256))
}

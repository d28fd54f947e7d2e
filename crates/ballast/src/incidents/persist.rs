//! Keeping incidents in the store: an edit is saved at once when the store answers, and
//! marked dirty otherwise (saved again each second until it is taken); an incident opened
//! while the store was away gets its store id when the store takes it. Without a store,
//! closed incidents stay in memory (the newest [`MEMORY_CLOSED`]).

use super::*;

pub(super) fn new_incident(i: &Incident, now: u64) -> Result<NewIncident, serde_json::Error> {
    Ok(NewIncident {
        title: i.title.clone(),
        severity: i.severity,
        status: i.status(),
        opened_unix_ms: i.opened_unix_ms(),
        closed_unix_ms: i.closed_unix_ms(),
        updated_unix_ms: now,
        body_json: serde_json::to_string(i)?,
    })
}

/// Saves one incident now (created if it has a memory-only id).
pub(super) async fn save(shared: &Shared, i: &Incident) -> Result<(), IncidentsError> {
    if !shared.store_on {
        return Ok(());
    }
    let store = shared
        .history
        .store()
        .map_err(|e| IncidentsError::Unavailable(e.to_string()))?;
    let new = new_incident(i, now_ms()).map_err(|e| IncidentsError::Unavailable(e.to_string()))?;
    store
        .save_incident(i.id, &new)
        .await
        .map_err(|e| IncidentsError::Unavailable(shared.history.failed(e).to_string()))
}

/// Writes every dirty incident; those the store does not take stay dirty.
pub(super) async fn flush(shared: &Shared) {
    let dirty: Vec<Incident> = {
        let mut st = lock(&shared.state);
        let ids = std::mem::take(&mut st.dirty);
        let all: Vec<Incident> = st
            .open
            .iter()
            .chain(&st.closed)
            .filter(|i| ids.contains(&i.id))
            .cloned()
            .collect();
        // Closed incidents leave memory once saved (a store keeps them).
        if shared.store_on {
            st.closed.retain(|i| !ids.contains(&i.id));
        }
        let closed: Vec<Incident> = st
            .open
            .iter()
            .filter(|i| !i.status().is_open())
            .cloned()
            .collect();
        st.open.retain(|i| i.status().is_open());
        if !shared.store_on {
            st.closed.extend(closed);
            while st.closed.len() > MEMORY_CLOSED {
                st.closed.pop_front();
            }
        }
        all
    };
    for i in dirty {
        let result = if shared.store_on && i.id >= UNSAVED_IDS {
            create_saved(shared, &i).await
        } else {
            save(shared, &i).await
        };
        if result.is_err() {
            let mut st = lock(&shared.state);
            st.dirty.insert(i.id);
            if !i.status().is_open() && !st.open.iter().any(|o| o.id == i.id) {
                st.closed.push_back(i);
            }
        }
    }
}

/// Gives a memory-only incident its store id.
async fn create_saved(shared: &Shared, i: &Incident) -> Result<(), IncidentsError> {
    let store = shared
        .history
        .store()
        .map_err(|e| IncidentsError::Unavailable(e.to_string()))?;
    let new = new_incident(i, now_ms()).map_err(|e| IncidentsError::Unavailable(e.to_string()))?;
    let copy = i.clone();
    let id = store
        .create_incident(&new, move |id| {
            let mut c = copy;
            c.id = id;
            serde_json::to_string(&c)
        })
        .await
        .map_err(|e| IncidentsError::Unavailable(shared.history.failed(e).to_string()))?;
    let mut st = lock(&shared.state);
    let st = &mut *st;
    for x in st.open.iter_mut().chain(st.closed.iter_mut()) {
        if x.id == i.id {
            x.id = id;
        }
    }
    tracing::info!(
        was = i.id,
        id,
        "incidents: an incident opened while the store was away is saved"
    );
    Ok(())
}

//! The state poller: what this server runs follows the database. Every half second, or at
//! once when the change listener hears another server's write, it applies a newer stored
//! authorizer state (`plugins::follow_stored_state`) and the stored application policies
//! (`policies::sync`); at its first tick and then hourly it applies audit retention. Ends
//! with the app.

use crate::App;
use std::sync::Weak;

pub fn spawn_state_poller(app: Weak<App>) {
    tokio::spawn(async move {
        let mut ticks: u64 = 0;
        loop {
            let Some(store) = app.upgrade().map(|a| a.store.clone()) else {
                return;
            };
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                _ = store.authorizer_changed() => {}
            }
            drop(store);
            let Some(app) = app.upgrade() else { return };
            if app.store.is_closed() {
                return;
            }
            ticks += 1;
            if ticks % 7200 == 1 {
                if let Err(e) = crate::audit::prune(&app).await {
                    tracing::warn!(error = %e, "audit retention failed; will retry in an hour");
                }
            }
            if let Err(e) = crate::policies::sync(&app).await {
                tracing::warn!(error = %e, "could not read the application policies");
            }
            crate::plugins::follow_stored_state(&app).await;
        }
    });
}

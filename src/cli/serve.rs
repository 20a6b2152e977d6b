//! `tally serve`: runs the application until SIGTERM or SIGINT, then shuts down gracefully.

use super::CliError;
use crate::settings::{ServeSettings, Settings, StoreSettings};
use crate::startup::Application;

pub async fn run(store: StoreSettings, serve: ServeSettings) -> Result<(), CliError> {
    let app = Application::build(Settings { store, serve }).await?;
    let handle = app.handle();
    tokio::spawn(async move {
        let signal = wait_for_signal().await;
        tracing::info!(
            signal,
            "stopping: no new connections, flushing pending hits"
        );
        handle.stop().await;
    });
    app.run_until_stopped().await?;
    Ok(())
}

async fn wait_for_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

//! `tally parked list | retry [ID] | drop [ID]`: the statements documents refused for good.
//!
//! See [`crate::aggregate::parked`] for what an entry is and why a retry applies it exactly
//! once. The usual steps: `list` names the refused documents and the error; repair each
//! document with any MongoDB client (or `tally doc` to look at it); `retry` applies what waited;
//! `drop` discards entries that should not count.

use super::CliError;
use crate::aggregate::parked;
use crate::settings::StoreSettings;

#[derive(Debug, clap::Subcommand)]
pub enum ParkedCommand {
    /// Every parked statement: its id, document, when, the sum of its counters and the error.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Applies parked statements to their (repaired) documents, oldest first, and removes them.
    /// With an ID, that entry and the older entries of its document.
    Retry { id: Option<String> },
    /// Removes parked statements without applying them: their increments are lost.
    Drop {
        id: Option<String>,
        /// Needed to drop every entry (no ID).
        #[arg(long)]
        all: bool,
    },
}

pub async fn run(settings: &StoreSettings, cmd: ParkedCommand) -> Result<(), CliError> {
    let store = settings.open().await?;
    match cmd {
        ParkedCommand::List { json } => {
            let entries = parked::list(&*store).await?;
            if !json {
                println!("{} parked statements", entries.len());
            }
            for e in entries {
                match (e, json) {
                    (Ok(e), true) => println!(
                        "{}",
                        serde_json::json!({
                            "id": e.id,
                            "collection": e.key.collection(),
                            "document": e.key.id(),
                            "site": e.key.site.as_str(),
                            "writer": e.mark.writer,
                            "seq": e.mark.seq,
                            "at": e.at,
                            "increments": e.increments(),
                            "fields": e.inc.len() + e.set.len(),
                            "code": e.code,
                            "error": e.error,
                        })
                    ),
                    (Ok(e), false) => println!(
                        "{}\n  {} {}  at {}  {} increments in {} fields\n  {}",
                        e.id,
                        e.key.collection(),
                        e.key.id(),
                        e.at,
                        e.increments(),
                        e.inc.len() + e.set.len(),
                        e.error
                    ),
                    (Err((id, error)), true) => {
                        println!("{}", serde_json::json!({"id": id, "unreadable": error}))
                    }
                    (Err((id, error)), false) => println!("{id}\n  unreadable: {error}"),
                }
            }
            Ok(())
        }
        ParkedCommand::Retry { id } => {
            let done = parked::retry(&*store, id.as_deref())
                .await
                .map_err(|e| CliError::Failed(e.to_string()))?;
            println!(
                "applied {} parked statements ({} found already applied); {} still parked",
                done.applied + done.already,
                done.already,
                done.failed.len()
            );
            for (id, error) in &done.failed {
                println!("  {id}: {error}");
            }
            if done.failed.is_empty() {
                Ok(())
            } else {
                Err(CliError::Failed(format!(
                    "{} parked statements were not applied; repair their documents and retry",
                    done.failed.len()
                )))
            }
        }
        ParkedCommand::Drop { id, all } => {
            if id.is_none() && !all {
                return Err(CliError::Usage(
                    "name the entry to drop, or --all to drop every parked statement".into(),
                ));
            }
            let dropped = parked::drop(&*store, id.as_deref()).await?;
            if id.is_some() && dropped == 0 {
                return Err(CliError::Failed("no such parked statement".into()));
            }
            println!("dropped {dropped} parked statements");
            Ok(())
        }
    }
}

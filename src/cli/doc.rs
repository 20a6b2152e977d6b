//! `tally doc <collection> <id>`: one document as relaxed extended JSON, from either store.

use super::CliError;
use crate::settings::StoreSettings;
use mongodb::bson::Bson;

#[derive(Debug, clap::Args)]
pub struct DocArgs {
    /// Collection, e.g. `traffic.2026` or `sites`.
    pub collection: String,
    /// Document id, e.g. `acme:2026-11`.
    pub id: String,
}

pub async fn run(settings: &StoreSettings, args: DocArgs) -> Result<(), CliError> {
    let store = settings.open().await?;
    match store.get(&args.collection, &args.id).await? {
        Some(doc) => {
            let json = Bson::Document(doc).into_relaxed_extjson();
            let text = serde_json::to_string_pretty(&json)
                .map_err(|e| CliError::Failed(format!("cannot print the document: {e}")))?;
            println!("{text}");
            Ok(())
        }
        None => Err(CliError::Failed(format!(
            "no document {:?} in {:?}",
            args.id, args.collection
        ))),
    }
}

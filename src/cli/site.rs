//! `tally site add|list|show`.

use super::CliError;
use crate::settings::StoreSettings;
use crate::site::{parse_host, parse_time_zone, Site, SiteId};
use crate::store::{self, StoreError};
use chrono::{SecondsFormat, Utc};
use chrono_tz::Tz;

#[derive(Debug, clap::Subcommand)]
pub enum SiteCommand {
    /// Add a site. Prints the snippet to paste into its pages.
    Add {
        /// The site id: 1–32 of a-z, 0-9, '_' and '-', starting with a letter or digit.
        id: SiteId,
        /// The site's IANA time zone (e.g. Europe/Berlin): it decides every hour, day, month
        /// and year bucket.
        #[arg(long, value_parser = parse_time_zone)]
        tz: Tz,
        /// A display name (default: the id).
        #[arg(long)]
        name: Option<String>,
        /// One of the site's own host names (repeat for several); referrers from them are
        /// internal.
        #[arg(long = "host", value_parser = parse_host)]
        hosts: Vec<String>,
    },
    /// List every site.
    List,
    /// Show one site and its snippet.
    Show {
        /// The site id.
        id: SiteId,
    },
}

/// Shown in snippets: where tally is served from is the operator's to fill in.
const ORIGIN_PLACEHOLDER: &str = "https://YOUR-TALLY-HOST";

pub async fn run(settings: &StoreSettings, cmd: SiteCommand) -> Result<(), CliError> {
    let store = store::open(settings).await?;
    match cmd {
        SiteCommand::Add {
            id,
            tz,
            name,
            hosts,
        } => {
            let site = Site {
                name: name.unwrap_or_else(|| id.to_string()),
                id,
                tz,
                hosts,
                created_at: Utc::now(),
            };
            match store.insert_site(&site).await {
                Ok(()) => {}
                Err(StoreError::SiteExists(id)) => {
                    return Err(CliError::Failed(format!("site {id:?} already exists")))
                }
                Err(e) => return Err(e.into()),
            }
            println!("added site {} ({})", site.id, site.tz.name());
            println!("snippet: {}", site.snippet(ORIGIN_PLACEHOLDER));
            Ok(())
        }
        SiteCommand::List => {
            let sites = store.sites().await?;
            if sites.is_empty() {
                println!("no sites yet: add one with `tally site add <ID> --tz <ZONE>`");
                return Ok(());
            }
            let width = sites
                .iter()
                .map(|s| s.id.as_str().len())
                .max()
                .unwrap_or(2)
                .max(2);
            println!("{:width$}  {:30}  {:24}  HOSTS", "ID", "TIME ZONE", "NAME");
            for s in &sites {
                println!(
                    "{:width$}  {:30}  {:24}  {}",
                    s.id.as_str(),
                    s.tz.name(),
                    s.name,
                    s.hosts.join(",")
                );
            }
            Ok(())
        }
        SiteCommand::Show { id } => {
            let Some(site) = store.site(id.as_str()).await? else {
                return Err(CliError::Failed(format!("no site {:?}", id.as_str())));
            };
            println!("id:         {}", site.id);
            println!("name:       {}", site.name);
            println!("time zone:  {}", site.tz.name());
            println!("hosts:      {}", site.hosts.join(", "));
            println!(
                "created at: {}",
                site.created_at.to_rfc3339_opts(SecondsFormat::Secs, true)
            );
            println!("snippet:    {}", site.snippet(ORIGIN_PLACEHOLDER));
            Ok(())
        }
    }
}

//! `tally site add|update|token|revoke-token|public|list|show`.

use super::CliError;
use crate::settings::StoreSettings;
use crate::site::{parse_host, parse_param, parse_time_zone, Site, SiteId};
use crate::store::StoreError;
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
        /// One of the site's own host names (repeat for several), e.g. `acme.example`,
        /// `localhost:3000`, or `*.acme.example` for every subdomain. Referrers from them are
        /// internal, and once any is given, hits sent from pages on other hosts (by their
        /// Origin or Referer header) are not counted.
        #[arg(long = "host", value_parser = parse_host)]
        hosts: Vec<String>,
        /// A query parameter to keep in page paths (repeat for several), e.g. `id` to count
        /// `/item?id=1` and `/item?id=2` as two pages. Others are dropped.
        #[arg(long = "keep-param", value_parser = parse_param)]
        keep_params: Vec<String>,
        /// Do not count hits from browsers that send `DNT: 1` or `Sec-GPC: 1` (on), or count
        /// them like any other (off, the default).
        #[arg(long, value_parser = ["on", "off"], default_value = "off")]
        honor_dnt: String,
    },
    /// Change a site. Options given replace what the site had; a running `tally serve` picks
    /// the change up within --site-refresh-secs. Documents already written keep their buckets.
    Update {
        /// The site id.
        id: SiteId,
        /// A new IANA time zone (future hits only; past documents keep their buckets).
        #[arg(long, value_parser = parse_time_zone)]
        tz: Option<Tz>,
        /// A new display name.
        #[arg(long)]
        name: Option<String>,
        /// The site's own host names, replacing the current list (repeat for several):
        /// `acme.example`, `localhost:3000`, `*.acme.example`. Hits sent from pages on other
        /// hosts are not counted.
        #[arg(long = "host", value_parser = parse_host)]
        hosts: Vec<String>,
        /// Remove every host name (hits from any page are counted again).
        #[arg(long, conflicts_with = "hosts")]
        clear_hosts: bool,
        /// Query parameters to keep in page paths, replacing the current list.
        #[arg(long = "keep-param", value_parser = parse_param)]
        keep_params: Vec<String>,
        /// Keep no query parameter in page paths.
        #[arg(long, conflicts_with = "keep_params")]
        clear_keep_params: bool,
        /// Do not count hits from browsers that send `DNT: 1` or `Sec-GPC: 1` (on), or count
        /// them (off).
        #[arg(long, value_parser = ["on", "off"])]
        honor_dnt: Option<String>,
    },
    /// Create a read token for the site's API and dashboard. It is printed once: tally keeps
    /// only its hash.
    Token {
        /// The site id.
        id: SiteId,
    },
    /// Revoke a read token (give the token), or all of the site's tokens (--all).
    RevokeToken {
        /// The site id.
        id: SiteId,
        /// The token to revoke.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        token: Option<String>,
        /// Revoke every token of the site.
        #[arg(long)]
        all: bool,
    },
    /// Make the site readable without a token (on), or not (off).
    Public {
        /// The site id.
        id: SiteId,
        #[arg(value_parser = ["on", "off"])]
        state: String,
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
    let store = settings.open().await?;
    match cmd {
        SiteCommand::Add {
            id,
            tz,
            name,
            hosts,
            keep_params,
            honor_dnt,
        } => {
            let site = Site {
                name: name.unwrap_or_else(|| id.to_string()),
                id,
                tz,
                hosts,
                keep_params,
                created_at: Utc::now(),
                tokens: Vec::new(),
                public: false,
                honor_dnt: honor_dnt == "on",
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
        SiteCommand::Update {
            id,
            tz,
            name,
            hosts,
            clear_hosts,
            keep_params,
            clear_keep_params,
            honor_dnt,
        } => {
            let Some(mut site) = store.site(id.as_str()).await? else {
                return Err(CliError::Failed(format!("no site {:?}", id.as_str())));
            };
            if let Some(tz) = tz {
                site.tz = tz;
            }
            if let Some(name) = name {
                site.name = name;
            }
            if clear_hosts || !hosts.is_empty() {
                site.hosts = hosts;
            }
            if clear_keep_params || !keep_params.is_empty() {
                site.keep_params = keep_params;
            }
            if let Some(state) = honor_dnt {
                site.honor_dnt = state == "on";
            }
            store.update_site(&site).await?;
            show(&site);
            Ok(())
        }
        SiteCommand::Token { id } => {
            let mut site = existing(store.as_ref(), &id).await?;
            let (token, hash) = crate::api::token::generate()
                .map_err(|e| CliError::Failed(format!("no randomness for a token: {e}")))?;
            site.tokens.push(crate::site::TokenHash {
                hash,
                created_at: Utc::now(),
            });
            store.update_site(&site).await?;
            println!("{token}");
            eprintln!(
                "a read token for {} (shown once; tally keeps only its hash). Open the dashboard at \
                 {ORIGIN_PLACEHOLDER}/?site={}#token={token}",
                site.id, site.id
            );
            Ok(())
        }
        SiteCommand::RevokeToken { id, token, all } => {
            let mut site = existing(store.as_ref(), &id).await?;
            let before = site.tokens.len();
            match token {
                Some(token) => {
                    let hash = crate::api::token::hash(token.trim());
                    site.tokens
                        .retain(|t| !crate::api::token::matches(&hash, &t.hash));
                }
                None if all => site.tokens.clear(),
                None => unreachable!("clap requires a token or --all"),
            }
            let revoked = before - site.tokens.len();
            if revoked == 0 {
                return Err(CliError::Failed(format!(
                    "site {:?} has no such token",
                    site.id.as_str()
                )));
            }
            store.update_site(&site).await?;
            println!("revoked {revoked} token(s) of {}", site.id);
            Ok(())
        }
        SiteCommand::Public { id, state } => {
            let mut site = existing(store.as_ref(), &id).await?;
            site.public = state == "on";
            store.update_site(&site).await?;
            println!(
                "{} is {}",
                site.id,
                if site.public {
                    "public: readable without a token"
                } else {
                    "private: readable with a token"
                }
            );
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
            println!(
                "{:width$}  {:30}  {:24}  {:3}  HOSTS",
                "ID", "TIME ZONE", "NAME", "DNT"
            );
            for s in &sites {
                println!(
                    "{:width$}  {:30}  {:24}  {:3}  {}",
                    s.id.as_str(),
                    s.tz.name(),
                    s.name,
                    if s.honor_dnt { "on" } else { "off" },
                    s.hosts.join(",")
                );
            }
            Ok(())
        }
        SiteCommand::Show { id } => {
            let Some(site) = store.site(id.as_str()).await? else {
                return Err(CliError::Failed(format!("no site {:?}", id.as_str())));
            };
            show(&site);
            Ok(())
        }
    }
}

async fn existing(store: &dyn crate::store::Store, id: &SiteId) -> Result<Site, CliError> {
    store
        .site(id.as_str())
        .await?
        .ok_or_else(|| CliError::Failed(format!("no site {:?}", id.as_str())))
}

fn show(site: &Site) {
    println!("id:          {}", site.id);
    println!("name:        {}", site.name);
    println!("time zone:   {}", site.tz.name());
    println!("hosts:       {}", site.hosts.join(", "));
    println!(
        "honor DNT:   {}",
        if site.honor_dnt {
            "on: hits with DNT: 1 or Sec-GPC: 1 are not counted"
        } else {
            "off"
        }
    );
    println!("keep params: {}", site.keep_params.join(", "));
    println!("public:      {}", if site.public { "yes" } else { "no" });
    println!("tokens:      {}", site.tokens.len());
    println!(
        "created at:  {}",
        site.created_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    println!("snippet:     {}", site.snippet(ORIGIN_PLACEHOLDER));
}

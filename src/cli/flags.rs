//! How `tally serve`'s flags parse: defaults, and the messages a bad value gets. Tests only;
//! they live beside the parser (`Cli`) because `settings` sits below `cli` and must not use it.

use crate::cli::{Cli, Command};
use crate::track::client::TrustProxy;
use clap::Parser;

fn serve(args: &[&str]) -> Result<crate::settings::ServeSettings, clap::Error> {
    let cli = Cli::try_parse_from(["tally", "serve"].iter().chain(args))?;
    match cli.command {
        Command::Serve(settings) => Ok(settings),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_proxy_and_limit_flags_default_and_parse() {
    let defaults = serve(&[]).unwrap();
    assert!(defaults.trust_proxy.is_default());
    assert_eq!(
        defaults.trust_proxy,
        crate::settings::ServeSettings::default().trust_proxy
    );
    assert_eq!((defaults.ingest_rate, defaults.ingest_burst), (10.0, 30));
    assert_eq!(
        (defaults.ingest_address_rate, defaults.ingest_address_burst),
        (200.0, 2_000)
    );
    assert_eq!(defaults.new_keys_per_address, 100);
    // Alone, --trust-proxy keeps its old meaning: one proxy.
    assert_eq!(
        serve(&["--trust-proxy"]).unwrap().trust_proxy,
        TrustProxy::Hops(1)
    );
    assert_eq!(
        serve(&["--trust-proxy", "none"]).unwrap().trust_proxy,
        TrustProxy::None
    );
    let nets = serve(&["--trust-proxy=10.1.0.0/16,fd00::/8"]).unwrap();
    assert_eq!(nets.trust_proxy.to_string(), "10.1.0.0/16,fd00::/8");
    let bad = serve(&["--trust-proxy", "10.1.0.0/16,proxy"]).unwrap_err();
    assert!(bad.to_string().contains("\"proxy\""), "{bad}");
    assert!(serve(&["--new-keys-per-address", "-1"]).is_err());
    assert_eq!(
        (defaults.writer_heartbeat_secs, defaults.writer_stale_secs),
        (10, 3_600)
    );
    let writers = serve(&["--writer-heartbeat-secs", "2", "--writer-stale-secs", "60"]).unwrap();
    assert_eq!(
        (writers.writer_heartbeat_secs, writers.writer_stale_secs),
        (2, 60)
    );
    assert!(serve(&["--writer-heartbeat-secs", "0"]).is_err());
    assert!(serve(&["--writer-stale-secs", "59"]).is_err());
    assert!(serve(&["--ingest-address-rate", "fast"]).is_err());
}

#[test]
fn the_durable_budget_defaults_to_a_gibibyte_and_names_a_bad_value() {
    assert_eq!(serve(&[]).unwrap().durable_max_bytes, 1 << 30);
    assert_eq!(
        crate::settings::ServeSettings::default().durable_max_bytes,
        serve(&[]).unwrap().durable_max_bytes
    );
    let set = serve(&["--durable", "--durable-max-bytes", "256M"]).unwrap();
    assert_eq!(set.durable_max_bytes, 256 << 20);
    let bad = serve(&["--durable-max-bytes", "10K"]).unwrap_err();
    assert!(bad.to_string().contains("\"10K\""), "{bad}");
}

//! `hallmark keys …`: the same key management as `/v1/keys`, offline against the instance's
//! database (the actor recorded in the audit log is `cli`).

use std::io::Write as _;

use crate::auth::Scope;
use crate::service::keys::{self, CreateKeyRequest, KeyView, RotateKeyRequest};
use crate::settings::Settings;
use crate::state::AppState;

/// `hallmark keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create an API key and print it once (stdout: the secret alone).
    Create {
        /// Comma-separated scopes: sign, verify, moderate, audit, admin.
        #[arg(long)]
        scopes: String,
        /// A name to recognise the key by.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Lifetime in seconds (default: no expiry).
        #[arg(long)]
        expires_in: Option<u64>,
    },
    /// List keys: id, name, scopes, created, expires, last used (revoked ones with --all).
    List {
        /// Include revoked keys.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: its next request gets 401.
    Revoke {
        /// Key id (from `keys list`).
        id: String,
    },
    /// Replace a key by a new one with the same name, scopes and expiry; prints the new
    /// secret once. The old key is revoked at once, or after --grace seconds.
    Rotate {
        /// Key id (from `keys list`).
        id: String,
        /// Seconds the old key keeps working (max 30 days).
        #[arg(long, default_value_t = 0)]
        grace: u64,
    },
}

fn table(keys: &[KeyView]) -> String {
    let mut out = format!(
        "{:<36}  {:<16}  {:<32}  {:<24}  {:<24}  {:<24}  {}\n",
        "ID", "NAME", "SCOPES", "CREATED", "EXPIRES", "LAST USED", "STATE"
    );
    for k in keys {
        let state = if k.revoked_at.is_some() {
            "revoked"
        } else if k.active {
            "active"
        } else {
            "expired"
        };
        out.push_str(&format!(
            "{:<36}  {:<16}  {:<32}  {:<24}  {:<24}  {:<24}  {}\n",
            k.id,
            k.name.chars().take(16).collect::<String>(),
            k.scopes.join(","),
            k.created_at,
            k.expires_at.as_deref().unwrap_or("never"),
            k.last_used_at.as_deref().unwrap_or("never"),
            state
        ));
    }
    out
}

/// Runs a `keys` subcommand: output on stdout, notes on stderr.
///
/// # Errors
/// Bad arguments, start-up or database failures, an unknown key id; messages carry the
/// service's stable error code.
pub async fn run(mut settings: Settings, command: KeysCommand) -> anyhow::Result<()> {
    settings.detectors.enabled = false;
    settings.generators.enabled = false;
    let state = AppState::init(settings).await?;
    let err = |e: crate::error::ApiError| anyhow::anyhow!("{} ({})", e, e.code_and_status().0);
    let mut stdout = std::io::stdout();
    match command {
        KeysCommand::Create {
            scopes,
            name,
            expires_in,
        } => {
            let scopes = Scope::parse_list(&scopes).map_err(anyhow::Error::msg)?;
            let req = CreateKeyRequest {
                name: name.clone(),
                scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
                expires_in_seconds: expires_in,
            };
            let k = keys::create(&state, &req, "cli").await.map_err(err)?;
            eprintln!(
                "created key {} ({name}) with scopes {}{}; it is shown once:",
                k.key.id,
                k.key.scopes.join(","),
                k.key
                    .expires_at
                    .as_deref()
                    .map(|e| format!(", expiring {e}"))
                    .unwrap_or_default()
            );
            writeln!(stdout, "{}", k.secret)?;
        }
        KeysCommand::List { all, json } => {
            let keys = keys::list(&state, all).await.map_err(err)?;
            if json {
                writeln!(stdout, "{}", serde_json::to_string_pretty(&keys)?)?;
            } else {
                write!(stdout, "{}", table(&keys))?;
            }
        }
        KeysCommand::Revoke { id } => {
            let k = keys::revoke(&state, &id, "cli").await.map_err(err)?;
            writeln!(
                stdout,
                "revoked key {} ({}) at {}",
                k.key.id,
                k.key.name,
                k.key.revoked_at.as_deref().unwrap_or("?")
            )?;
        }
        KeysCommand::Rotate { id, grace } => {
            let req = RotateKeyRequest {
                grace_seconds: Some(grace),
            };
            let r = keys::rotate(&state, &id, &req, "cli").await.map_err(err)?;
            eprintln!(
                "rotated key {} -> {} ({}); the old key {}; the new secret is shown once:",
                r.old.id,
                r.new.key.id,
                r.new.key.name,
                match (&r.old.revoked_at, &r.old.expires_at) {
                    (Some(_), _) => "is revoked".to_owned(),
                    (None, Some(e)) => format!("works until {e}"),
                    (None, None) => "is unchanged".to_owned(),
                }
            );
            writeln!(stdout, "{}", r.new.secret)?;
        }
    }
    Ok(())
}

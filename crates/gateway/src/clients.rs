//! `oemgate clients ...`: creating, rotating, revoking and listing API clients in the
//! configured store.
//!
//! The commands write to the store the gateway reads, so they need a shared store: with the
//! embedded memory store each process has its own, and a client created by the CLI would be
//! gone when the command exits. They therefore refuse to run unless `store.backend = "redis"`.
//! A secret is printed once, when created or rotated; the store keeps only its Argon2 hash.

use chrono::Utc;
use oemgate_api::ClientCredentials;

use crate::app;
use crate::config::{Backend, Config};

/// What a `clients` command does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientsCommand {
    /// Creates a client with a fresh id and secret.
    Create {
        /// The display name.
        name: String,
    },
    /// Gives a client a new secret; the old secret and its tokens stop working.
    Rotate {
        /// The client id.
        id: String,
    },
    /// Revokes a client; its tokens stop working at once.
    Revoke {
        /// The client id.
        id: String,
    },
    /// Lists the clients.
    List,
}

/// Runs a `clients` command against the configured store, printing to stdout.
pub async fn run(config: &Config, command: ClientsCommand) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.store.backend == Backend::Redis,
        "the clients commands need a shared store: set store.backend = \"redis\" and \
         store.redis_url (or OEMGATE_STORE__BACKEND=redis and OEMGATE_STORE__REDIS_URL); with \
         the embedded memory store a client would vanish when this command exits"
    );
    let store = app::open_store(config).await?;
    let now = Utc::now();
    match command {
        ClientsCommand::Create { name } => {
            let name = name.trim();
            anyhow::ensure!(!name.is_empty(), "--name must not be empty");
            let credentials = ClientCredentials::generate();
            oemgate_api::create_named_client(
                store.as_ref(),
                &credentials,
                name,
                oemgate_api::SUPPORTED_VERSIONS[0],
                now,
            )
            .await?;
            println!("client_id: {}", credentials.client_id);
            println!("client_secret: {}", credentials.client_secret);
            println!("The secret is shown only now; store it safely.");
        }
        ClientsCommand::Rotate { id } => {
            let credentials = oemgate_api::rotate_client_secret(store.as_ref(), &id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no API client with id {id:?}"))?;
            println!("client_id: {}", credentials.client_id);
            println!("client_secret: {}", credentials.client_secret);
            println!("The old secret and the tokens issued with it no longer work.");
        }
        ClientsCommand::Revoke { id } => {
            let client = oemgate_api::revoke_client(store.as_ref(), &id, now)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no API client with id {id:?}"))?;
            let at = client.revoked_at.map(|t| t.to_rfc3339()).unwrap_or_default();
            println!("revoked {} at {at}", client.client_id);
        }
        ClientsCommand::List => {
            let clients = store.list_clients().await?;
            if clients.is_empty() {
                println!("no API clients");
            }
            for client in clients {
                let status = match client.revoked_at {
                    Some(at) => format!("revoked {}", at.to_rfc3339()),
                    None => "active".to_string(),
                };
                println!(
                    "{}\t{}\tcreated {}\t{status}",
                    client.client_id,
                    if client.name.is_empty() { "-" } else { &client.name },
                    client.created_at.to_rfc3339()
                );
            }
        }
    }
    Ok(())
}

//! Name resolution for webhook deliveries that refuses internal addresses: the SSRF guard at the moment of
//! connecting, where a create-time check of the name cannot reach (DNS may answer differently later).

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::webhook::is_forbidden_ip;

/// Resolves with the system resolver, then keeps only public addresses unless private targets are allowed.
pub struct GuardedResolver {
    allow_private_targets: bool,
}

impl GuardedResolver {
    pub fn new(allow_private_targets: bool) -> Self {
        Self {
            allow_private_targets,
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private_targets = self.allow_private_targets;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // Port 0: reqwest puts the URL's port on the addresses it gets back.
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (public, internal): (Vec<SocketAddr>, Vec<SocketAddr>) = resolved
                .into_iter()
                .partition(|address| allow_private_targets || !is_forbidden_ip(address.ip()));
            if public.is_empty() {
                let shown: Vec<String> = internal.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!(
                    "refused: {host} resolves only to addresses that are not public ({}); \
                     --webhook-allow-private-targets is off",
                    shown.join(", ")
                )
                .into());
            }
            let addresses: Addrs = Box::new(public.into_iter());
            Ok(addresses)
        })
    }
}

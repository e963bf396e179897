//! Addresses (or networks) the admin banned through `/admin/ban`, each for a time or until
//! the server restarts. Kept in memory only: a ban is an operator's answer to an attack now;
//! lasting bans belong in the `deny-ip` file, which survives restarts.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::cidr::Cidr;
use crate::sync::lock;

/// Most bans held at once; older ones are not dropped, new ones are refused.
pub const MAX_BANS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub net: Cidr,
    /// When it ends; `None`: at restart.
    pub until: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Bans {
    list: Mutex<Vec<Ban>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the ban list is full ({MAX_BANS} entries)")]
pub struct BansFull;

impl Bans {
    /// Ban `net` for `duration` (`None`: until restart); replaces an existing ban of it.
    pub fn add(&self, net: Cidr, duration: Option<Duration>) -> Result<(), BansFull> {
        let until = duration.map(|d| Instant::now() + d);
        let mut list = lock(&self.list);
        prune(&mut list);
        if let Some(b) = list.iter_mut().find(|b| b.net == net) {
            b.until = until;
            return Ok(());
        }
        if list.len() >= MAX_BANS {
            return Err(BansFull);
        }
        list.push(Ban { net, until });
        Ok(())
    }

    /// Lift the ban of `net`; whether there was one.
    pub fn remove(&self, net: Cidr) -> bool {
        let mut list = lock(&self.list);
        let before = list.len();
        list.retain(|b| b.net != net);
        list.len() != before
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let list = lock(&self.list);
        if list.is_empty() {
            return false;
        }
        let now = Instant::now();
        list.iter()
            .any(|b| b.until.is_none_or(|u| u > now) && b.net.contains(ip))
    }

    /// The bans in force.
    pub fn list(&self) -> Vec<Ban> {
        let mut list = lock(&self.list);
        prune(&mut list);
        list.clone()
    }
}

fn prune(list: &mut Vec<Ban>) {
    let now = Instant::now();
    list.retain(|b| b.until.is_none_or(|u| u > now));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ban_expire_and_lift() {
        let bans = Bans::default();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        assert!(!bans.contains(ip));
        bans.add("192.0.2.0/24".parse().unwrap(), None).unwrap();
        assert!(bans.contains(ip));
        assert!(bans.remove("192.0.2.0/24".parse().unwrap()));
        assert!(!bans.contains(ip));
        bans.add("192.0.2.9".parse().unwrap(), Some(Duration::ZERO))
            .unwrap();
        assert!(!bans.contains(ip), "an expired ban");
        assert!(bans.list().is_empty());
    }
}

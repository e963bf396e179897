//! floecast's ban commands (icecast2 has none): `/admin/ban?ip=A[&duration=S]` bans an
//! address or network (for S seconds, else until restart) and ends its current listeners
//! and sources; `/admin/unban?ip=A` lifts it; `/admin/listbans` lists them. Admin only.

use std::time::{Duration, Instant};

use axum::extract::Request;

use super::{Answer, param};
use crate::documents::xml::Element;
use crate::door::Cidr;
use crate::reply::error;
use crate::server::Server;

/// Longest ban by duration: a year (longer is "until restart": leave `duration` out).
const MAX_SECONDS: u64 = 365 * 24 * 3600;

/// The `ip=` parameter, or the 400 message.
fn net_param(req: &Request) -> Result<Cidr, String> {
    let Some(ip) = param(req, "ip") else {
        return Err("Missing parameter".into());
    };
    ip.parse()
        .map_err(|e: crate::door::cidr::CidrError| e.to_string())
}

/// `ban?ip=…[&duration=seconds]`.
pub fn ban(server: &Server, req: &Request) -> Answer {
    let net = match net_param(req) {
        Ok(n) => n,
        Err(why) => return Answer::Reply(error(400, &why)),
    };
    let duration = match param(req, "duration") {
        None => None,
        Some(d) => match d.trim().parse::<u64>() {
            Ok(s) if (1..=MAX_SECONDS).contains(&s) => Some(Duration::from_secs(s)),
            _ => {
                return Answer::Reply(error(
                    400,
                    &format!("duration must be 1 to {MAX_SECONDS} seconds"),
                ));
            }
        },
    };
    if let Err(e) = server.door.bans.add(net, duration) {
        return Answer::ice(e.to_string(), false);
    }
    let kicked = kick(server, net);
    tracing::info!(%net, ?duration, kicked, "admin: banned");
    Answer::ice(format!("Banned {net}; {kicked} connections ended"), true)
}

/// End the current listeners and sources from `net`.
fn kick(server: &Server, net: Cidr) -> usize {
    let mut kicked = 0;
    for mount in server.registry.list() {
        for (_, listener) in mount.listeners() {
            if net.contains(listener.ip) {
                listener.kick.kick();
                kicked += 1;
            }
        }
        let source_ip = mount.with_info(|i| i.stream.source_ip.parse().ok());
        if source_ip.is_some_and(|ip| net.contains(ip)) {
            mount.kill_source();
            kicked += 1;
        }
    }
    kicked
}

/// `unban?ip=…`.
pub fn unban(server: &Server, req: &Request) -> Answer {
    let net = match net_param(req) {
        Ok(n) => n,
        Err(why) => return Answer::Reply(error(400, &why)),
    };
    if server.door.bans.remove(net) {
        tracing::info!(%net, "admin: ban lifted");
        Answer::ice(format!("Ban of {net} lifted"), true)
    } else {
        Answer::ice(format!("{net} is not banned"), false)
    }
}

/// `listbans`: `<bans><ban><ip>…</ip><seconds_left>…</seconds_left></ban>…</bans>`
/// (`seconds_left` absent for a ban until restart).
pub fn listbans(server: &Server) -> Answer {
    let now = Instant::now();
    let mut doc = Element::new("bans");
    for b in server.door.bans.list() {
        let left = b
            .until
            .map(|u| Element::leaf("seconds_left", u.saturating_duration_since(now).as_secs()));
        doc.push(
            Element::new("ban")
                .list("bans")
                .with(Element::leaf("ip", b.net.to_string()))
                .with_opt(left),
        );
    }
    Answer::Doc(doc)
}

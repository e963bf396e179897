//! A mount's `p2psp = { role = "splitter" | "peer", … }`: the P2PSP team it serves or joins,
//! with the buffer, team size, chunk size and wire format ("native" or "gen-c").

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::value::{ip_address, ranged};
use crate::config::{P2pspConfig, SplitterSettings, TeamAuth};

/// `p2psp = { role = "splitter", port = 8001, ... }` or `{ role = "peer", splitter = "h:p" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawP2psp {
    role: Spanned<String>,
    port: Option<Spanned<u16>>,
    bind_address: Option<Spanned<String>>,
    max_peers: Option<Spanned<usize>>,
    buffer: Option<Spanned<u32>>,
    max_chunk: Option<Spanned<usize>>,
    monitors: Option<Spanned<usize>>,
    peer_timeout: Option<Spanned<u64>>,
    codec: Option<Spanned<String>>,
    /// A peer that also serves a team: that team's codec (`codec` is the joined team's).
    serve_codec: Option<Spanned<String>>,
    splitter: Option<Spanned<String>>,
    team_secret: Option<Spanned<String>>,
    splitter_key: Option<Spanned<String>>,
    splitter_key_file: Option<Spanned<String>>,
    trusted_monitors: Option<Spanned<Vec<String>>>,
    blame_quorum: Option<Spanned<usize>>,
    max_relayed: Option<Spanned<usize>>,
    relay_from: Option<Spanned<u32>>,
}

pub(super) fn convert(
    src: &Source<'_>,
    raw: RawP2psp,
    key: &str,
    mount: &str,
    mount_span: Range<usize>,
) -> Result<P2pspConfig, ConfigError> {
    let k = |field: &str| format!("{key}.{field}");
    if mount.contains(['*', '?', '[']) {
        let name_key = format!("{}.name", key.strip_suffix(".p2psp").unwrap_or(key));
        return Err(src.invalid(
            mount_span,
            &name_key,
            "a P2PSP mount needs an exact name, not a glob",
        ));
    }
    let codec = |c: &Option<Spanned<String>>, field: &str| -> Result<bool, ConfigError> {
        match c.as_ref().map(|c| c.get_ref().as_str()) {
            None | Some("native") => Ok(false),
            Some("gen-c") => Ok(true),
            Some(other) => {
                let span = c.as_ref().map(|c| c.span()).unwrap_or_default();
                Err(src.invalid(
                    span,
                    &k(field),
                    format!("must be \"native\" or \"gen-c\" (got {other:?})"),
                ))
            }
        }
    };
    let peer = raw.role.get_ref() == "peer";
    let team_secret = match &raw.team_secret {
        Some(s) if s.get_ref().is_empty() => {
            return Err(src.invalid(s.span(), &k("team-secret"), "must not be empty"));
        }
        s => s.as_ref().map(|s| s.get_ref().clone()),
    };
    // Keys that only a team's splitter has, or only a joining peer.
    let splitter_only = [
        (
            "splitter-key-file",
            raw.splitter_key_file.as_ref().map(|v| v.span()),
        ),
        (
            "trusted-monitors",
            raw.trusted_monitors.as_ref().map(|v| v.span()),
        ),
        ("blame-quorum", raw.blame_quorum.as_ref().map(|v| v.span())),
        ("max-relayed", raw.max_relayed.as_ref().map(|v| v.span())),
        ("relay-from", raw.relay_from.as_ref().map(|v| v.span())),
    ];
    if peer
        && raw.port.is_none()
        && let Some((name, Some(span))) = splitter_only.iter().find(|(_, s)| s.is_some())
    {
        return Err(src.invalid(span.clone(), &k(name), "only a team's splitter has this"));
    }
    if !peer && let Some(v) = &raw.splitter_key {
        return Err(src.invalid(
            v.span(),
            &k("splitter-key"),
            "a splitter has splitter-key-file; splitter-key pins a joined team's splitter",
        ));
    }
    let splitter_key = raw
        .splitter_key
        .as_ref()
        .map(|v| {
            crate::p2psp::auth::parse_public_key(v.get_ref()).ok_or_else(|| {
                src.invalid(
                    v.span(),
                    &k("splitter-key"),
                    "must be an Ed25519 public key: 64 hex digits or base64",
                )
            })
        })
        .transpose()?;
    let trusted_monitors = match &raw.trusted_monitors {
        None => Vec::new(),
        Some(v) => v
            .get_ref()
            .iter()
            .map(|a| a.parse())
            .collect::<Result<Vec<std::net::IpAddr>, _>>()
            .map_err(|_| {
                src.invalid(
                    v.span(),
                    &k("trusted-monitors"),
                    "must be a list of IP addresses",
                )
            })?,
    };
    let blame_quorum = raw
        .blame_quorum
        .as_ref()
        .map(|q| ranged(src, q, &k("blame-quorum"), 1..=32, ""))
        .transpose()?;
    let splitter_auth = TeamAuth {
        team_secret: team_secret.clone(),
        splitter_key: None,
        splitter_key_file: raw.splitter_key_file.as_ref().map(|f| f.get_ref().into()),
        trusted_monitors,
        blame_quorum,
    };
    // A Gen C team is open and unsigned, as the reference is.
    let gen_c_conflict = |field: &str, gen_c: bool| -> Result<(), ConfigError> {
        let set = [
            ("team-secret", raw.team_secret.as_ref().map(|v| v.span())),
            ("splitter-key", raw.splitter_key.as_ref().map(|v| v.span())),
        ];
        if gen_c && let Some((name, Some(span))) = set.iter().find(|(_, s)| s.is_some()) {
            return Err(src.invalid(
                span.clone(),
                &k(name),
                format!(
                    "{field} = \"gen-c\" teams are open and unsigned, as the reference is; \
                     team secrets and splitter keys are for native teams"
                ),
            ));
        }
        Ok(())
    };
    let serve = |raw: &RawP2psp, required: bool| -> Result<Option<SplitterSettings>, ConfigError> {
        let Some(port) = &raw.port else {
            if required {
                return Err(src.invalid(raw.role.span(), &k("port"), "a splitter needs a port"));
            }
            return Ok(None);
        };
        let buffer = match &raw.buffer {
            Some(b) => ranged(src, b, &k("buffer"), 8..=65_536, " chunks")?,
            None => 256,
        };
        // DBS needs the team no larger than the buffer (spec §4.1).
        let max_peers = raw
            .max_peers
            .as_ref()
            .map_or((buffer as usize - 1).min(100), |m| *m.get_ref());
        if let Some(m) = &raw.max_peers {
            ranged(src, m, &k("max-peers"), 1..=buffer as usize - 1, "")
                .map_err(|e| e.reworded(format!("must be 1 to buffer - 1 ({})", buffer - 1)))?;
        }
        let monitors = match &raw.monitors {
            Some(m) => ranged(src, m, &k("monitors"), 1..=32, "")?,
            None => SplitterSettings::DEFAULT_MONITORS,
        };
        let peer_timeout = match &raw.peer_timeout {
            None => SplitterSettings::DEFAULT_PEER_TIMEOUT,
            // Peers report every second: below 2 s a single lost report would expel them.
            Some(t) => Duration::from_secs(ranged(src, t, &k("peer-timeout"), 2..=60, " seconds")?),
        };
        let compat = if peer {
            codec(&raw.serve_codec, "serve-codec")?
        } else {
            codec(&raw.codec, "codec")?
        };
        // Under the path MTU by default, whatever the codec (see SplitterSettings).
        let max_chunk = match &raw.max_chunk {
            Some(m) => ranged(src, m, &k("max-chunk"), 256..=60_000, " bytes")?,
            None => SplitterSettings::default_max_chunk(compat),
        };
        let bind_address = raw
            .bind_address
            .clone()
            .map(|b| ip_address(src, b, &k("bind-address")))
            .transpose()?;
        let max_relayed = match &raw.max_relayed {
            Some(m) => ranged(src, m, &k("max-relayed"), 0..=1000, " peers")?,
            None => SplitterSettings::DEFAULT_MAX_RELAYED,
        };
        let relay_from = match &raw.relay_from {
            // 0 turns two-level floods off; a team of 3 has nothing to group.
            Some(r) if *r.get_ref() == 0 => 0,
            Some(r) => ranged(
                src,
                r,
                &k("relay-from"),
                4..=65_536,
                " members (or 0: never)",
            )?,
            None => SplitterSettings::DEFAULT_RELAY_FROM,
        };
        Ok(Some(SplitterSettings {
            port: *port.get_ref(),
            bind_address,
            max_peers,
            buffer,
            max_chunk,
            compat,
            monitors,
            peer_timeout,
            auth: splitter_auth.clone(),
            max_relayed,
            relay_from,
        }))
    };
    if !peer && let Some(c) = &raw.serve_codec {
        return Err(src.invalid(
            c.span(),
            &k("serve-codec"),
            "only a peer has a served team apart from its joined one; use codec",
        ));
    }
    match raw.role.get_ref().as_str() {
        "splitter" => match serve(&raw, true)? {
            Some(s) => {
                gen_c_conflict("codec", s.compat)?;
                Ok(P2pspConfig::Splitter(s))
            }
            None => Err(src.invalid(raw.role.span(), &k("port"), "a splitter needs a port")),
        },
        "peer" => {
            let serve = serve(&raw, false)?;
            let Some(splitter) = raw.splitter else {
                return Err(src.invalid(
                    raw.role.span(),
                    &k("splitter"),
                    "a peer needs splitter = \"host:port\"",
                ));
            };
            let ok = splitter
                .get_ref()
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(src.invalid(splitter.span(), &k("splitter"), "must be \"host:port\""));
            }
            let compat = codec(&raw.codec, "codec")?;
            gen_c_conflict("codec", compat)?;
            if let Some(s) = &serve {
                gen_c_conflict("serve-codec", s.compat && team_secret.is_some())?;
            }
            Ok(P2pspConfig::Peer {
                splitter: splitter.into_inner(),
                serve,
                compat,
                auth: TeamAuth {
                    team_secret,
                    splitter_key,
                    ..TeamAuth::default()
                },
            })
        }
        other => Err(src.invalid(
            raw.role.span(),
            &k("role"),
            format!("must be \"splitter\" or \"peer\" (got {other:?})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;
    use crate::config::load::tests::{err, ok};

    #[test]
    fn p2psp_roles() {
        let c = Config::from_toml_str(
            "[[mount]]\nname = \"/team.ogg\"\np2psp = { role = \"splitter\", port = 8001, buffer = 128 }\n\
             [[mount]]\nname = \"/relayed.ogg\"\np2psp = { role = \"peer\", splitter = \"a.example:8001\" }\n",
            "floecast.toml",
        )
        .unwrap();
        assert_eq!(
            c.mount("/team.ogg").and_then(|m| m.p2psp.clone()),
            Some(crate::config::P2pspConfig::Splitter(
                crate::config::SplitterSettings {
                    port: 8001,
                    bind_address: None,
                    max_peers: 100,
                    buffer: 128,
                    max_chunk: 1200,
                    compat: false,
                    monitors: 3,
                    peer_timeout: Duration::from_secs(3),
                    auth: Default::default(),
                    max_relayed: 8,
                    relay_from: 256,
                }
            ))
        );
        assert_eq!(
            c.mount("/relayed.ogg").and_then(|m| m.p2psp.clone()),
            Some(crate::config::P2pspConfig::Peer {
                splitter: "a.example:8001".into(),
                serve: None,
                compat: false,
                auth: Default::default(),
            })
        );
        // A Gen C peer that serves a native team further down the tree.
        let c = ok(
            "[[mount]]\nname = \"/b\"\np2psp = { role = \"peer\", splitter = \"h:1\", \
                    codec = \"gen-c\", port = 9000 }\n",
        );
        let Some(crate::config::P2pspConfig::Peer { compat, serve, .. }) =
            c.mount("/b").and_then(|m| m.p2psp.clone())
        else {
            panic!("a peer")
        };
        assert!(compat);
        assert!(serve.is_some_and(|s| !s.compat && s.max_chunk == 1200));
        // A Gen C splitter cuts the reference's 1024-byte chunks by default.
        let c = ok(
            "[[mount]]\nname = \"/g\"\np2psp = { role = \"splitter\", port = 9, codec = \"gen-c\" }\n",
        );
        let s = c
            .mount("/g")
            .and_then(|m| m.p2psp.as_ref()?.splitter().cloned())
            .expect("splitter");
        assert_eq!((s.compat, s.max_chunk), (true, 1024));
        let e = err(
            "[[mount]]\nname = \"/t\"\np2psp = { role = \"splitter\", port = 9, \
                     serve-codec = \"gen-c\" }\n",
        );
        assert_eq!(e.key(), Some("mount[0].p2psp.serve-codec"));
        let e = err(
            "[[mount]]\nname = \"/t\"\np2psp = { role = \"peer\", splitter = \"h:1\", \
                     codec = \"gen-d\" }\n",
        );
        assert_eq!(e.key(), Some("mount[0].p2psp.codec"));
        let c = ok(
            "[[mount]]\nname = \"/m\"\np2psp = { role = \"splitter\", port = 9, \
                    monitors = 5, peer-timeout = 10 }\n",
        );
        let s = c
            .mount("/m")
            .and_then(|m| m.p2psp.as_ref()?.splitter().cloned())
            .expect("splitter");
        assert_eq!((s.monitors, s.peer_timeout), (5, Duration::from_secs(10)));
        let e = err(
            "[[mount]]\nname = \"/m\"\np2psp = { role = \"splitter\", port = 9, \
                     peer-timeout = 1 }\n",
        );
        assert_eq!(e.key(), Some("mount[0].p2psp.peer-timeout"));
        let e = err(
            "[[mount]]\nname = \"/m\"\np2psp = { role = \"splitter\", port = 9, \
                     monitors = 0 }\n",
        );
        assert_eq!(e.key(), Some("mount[0].p2psp.monitors"));
        let e = err("[[mount]]\nname = \"/t\"\np2psp = { role = \"peer\" }\n");
        assert_eq!(
            (e.line(), e.key()),
            (Some(3), Some("mount[0].p2psp.splitter"))
        );
        let e = err(
            "[[mount]]\nname = \"/t\"\np2psp = { role = \"splitter\", port = 9, buffer = 16, max-peers = 16 }\n",
        );
        assert_eq!(e.key(), Some("mount[0].p2psp.max-peers"));
        let e =
            err("[[mount]]\nname = \"/t/*\"\np2psp = { role = \"peer\", splitter = \"h:1\" }\n");
        assert_eq!(e.key(), Some("mount[0].name"));
        let e = err("[[mount]]\nname = \"/t\"\np2psp = { role = \"boss\" }\n");
        assert_eq!(e.key(), Some("mount[0].p2psp.role"));
        // Native teams' security settings.
        let key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let c = ok(&format!(
            "[[mount]]\nname = \"/s\"\np2psp = {{ role = \"splitter\", port = 9, \
             team-secret = \"x\", splitter-key-file = \"/tmp/k\", \
             trusted-monitors = [\"192.0.2.1\"], blame-quorum = 2, max-relayed = 3, \
             relay-from = 64 }}\n\
             [[mount]]\nname = \"/p\"\np2psp = {{ role = \"peer\", splitter = \"h:1\", \
             splitter-key = \"{key}\", team-secret = \"x\" }}\n"
        ));
        let s = c
            .mount("/s")
            .and_then(|m| m.p2psp.as_ref()?.splitter().cloned())
            .expect("splitter");
        assert_eq!(s.auth.team_secret.as_deref(), Some("x"));
        assert_eq!(s.auth.blame_quorum, Some(2));
        assert_eq!(s.max_relayed, 3);
        assert_eq!(s.relay_from, 64);
        for (v, ok) in [("0", true), ("3", false), ("70000", false)] {
            let r = crate::config::Config::from_toml_str(
                &format!(
                    "[[mount]]\nname = \"/s\"\np2psp = {{ role = \"splitter\", port = 9, relay-from = {v} }}\n"
                ),
                "floecast.toml",
            );
            assert_eq!(r.is_ok(), ok, "relay-from = {v}");
        }
        // A joining peer learns it from its splitter.
        let e = err(
            "[[mount]]\nname = \"/p\"\np2psp = { role = \"peer\", splitter = \"h:1\", relay-from = 9 }\n",
        );
        assert_eq!(e.key(), Some("mount[0].p2psp.relay-from"));
        assert_eq!(
            s.auth.trusted_monitors,
            vec!["192.0.2.1".parse::<std::net::IpAddr>().unwrap()]
        );
        let Some(crate::config::P2pspConfig::Peer { auth, .. }) =
            c.mount("/p").and_then(|m| m.p2psp.clone())
        else {
            panic!("a peer")
        };
        assert!(auth.splitter_key.is_some() && auth.team_secret.is_some());
        for (bad, k) in [
            (
                "p2psp = { role = \"peer\", splitter = \"h:1\", splitter-key = \"zz\" }",
                "splitter-key",
            ),
            (
                "p2psp = { role = \"splitter\", port = 9, splitter-key = \"zz\" }",
                "splitter-key",
            ),
            (
                "p2psp = { role = \"peer\", splitter = \"h:1\", trusted-monitors = [\"1.2.3.4\"] }",
                "trusted-monitors",
            ),
            (
                "p2psp = { role = \"splitter\", port = 9, trusted-monitors = [\"nope\"] }",
                "trusted-monitors",
            ),
            (
                "p2psp = { role = \"splitter\", port = 9, codec = \"gen-c\", team-secret = \"x\" }",
                "team-secret",
            ),
            (
                "p2psp = { role = \"peer\", splitter = \"h:1\", codec = \"gen-c\", team-secret = \"x\" }",
                "team-secret",
            ),
            (
                "p2psp = { role = \"splitter\", port = 9, team-secret = \"\" }",
                "team-secret",
            ),
        ] {
            let e = err(&format!("[[mount]]\nname = \"/t\"\n{bad}\n"));
            assert_eq!(
                e.key(),
                Some(format!("mount[0].p2psp.{k}").as_str()),
                "{bad}"
            );
        }
    }
}

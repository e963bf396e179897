//! icecast2's statistics as documents: the `<icestats>` tree of global and per-mount stats
//! (names sorted byte-wise, as icecast's AVL trees keep them), the mount list of
//! `listmounts`/`moveclients`, and the listener list of `listclients`. Rendered from a
//! snapshot only.

use std::collections::BTreeMap;

use super::snapshot::{MountSnapshot, ServerSnapshot, Timestamp};
use super::xml::{Element, Value};
use super::{iso8601, rfc822, seconds_between};
use crate::format::Family;

/// Global stats, sorted by name.
pub fn global_stats(snap: &ServerSnapshot) -> BTreeMap<String, Value> {
    let id = &snap.identity;
    let s = &snap.counters;
    let listeners: usize = snap.mounts.iter().map(|m| m.listeners).sum();
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("admin", id.admin.as_str().into());
    put("host", id.host.as_str().into());
    put("location", id.location.as_str().into());
    put("server_id", id.server_id.as_str().into());
    put("server_start", rfc822(&snap.started).into());
    put("server_start_iso8601", iso8601(&snap.started).into());
    put("clients", s.clients.into());
    put("connections", Value::Int(s.connections));
    put("sources", snap.mounts.len().into());
    put("stats", s.stats_clients.into());
    put("listeners", listeners.into());
    put("client_connections", Value::Int(s.client_connections));
    put(
        "source_client_connections",
        Value::Int(s.source_client_connections),
    );
    put(
        "source_relay_connections",
        Value::Int(s.source_relay_connections),
    );
    put(
        "source_total_connections",
        Value::Int(s.source_total_connections),
    );
    put("stats_connections", Value::Int(s.stats_connections));
    put("listener_connections", Value::Int(s.listener_connections));
    put("file_connections", Value::Int(s.file_connections));
    m
}

/// `http://<hostname>:<port><mount>`, icecast's `listenurl`.
pub fn listen_url(host: &str, port: u16, mount: &str) -> String {
    format!("http://{host}:{port}{mount}")
}

/// One mount's stats, sorted by name. `audio_info` keys come first so that the well-known
/// stats of the same name (`bitrate`) win, as the later `stats_event` does in icecast.
pub fn mount_stats(snap: &ServerSnapshot, mount: &MountSnapshot) -> BTreeMap<String, Value> {
    let info = &mount.stream;
    let codec = &mount.codec;
    let st = &mount.counters;
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    if let Some(raw) = &info.audio_info_raw {
        put("audio_info", raw.as_str().into());
    }
    for (k, v) in &info.audio_info {
        if !k.is_empty() {
            put(k, Value::guess(v));
        }
    }
    // Codec stats as icecast's Ogg handlers name them; floecast also knows them for MP3/AAC.
    if let Some(r) = codec.samplerate {
        put("audio_samplerate", Value::Int(r.into()));
    }
    if let Some(c) = codec.channels {
        put("audio_channels", Value::Int(c.into()));
    }
    // Vorbis: the nominal bitrate exactly, and in kbit/s as `ice-bitrate` (format_vorbis.c),
    // which replaces an `ice-bitrate` key of the source's ice-audio-info as it does there.
    match (codec.nominal_bitrate, codec.bitrate) {
        (Some(n), _) => {
            put("audio_bitrate", Value::Int(n.into()));
            put("ice-bitrate", Value::Int((n / 1000).into()));
        }
        (None, Some(b)) => put("audio_bitrate", Value::Int(u64::from(b) * 1000)),
        (None, None) => {}
    }
    if let Some((major, minor)) = codec.flac_version {
        put("FLAC_version", format!("{major}.{minor}").into());
    }
    if let Some(b) = codec.video_bitrate {
        put("video_bitrate", Value::Int(b.into()));
    }
    if let Some(q) = codec.video_quality {
        put("video_quality", Value::Int(q.into()));
    }
    if let (Some(w), Some(h)) = (codec.video_width, codec.video_height) {
        put("frame_size", format!("{w} x {h}").into());
    }
    if let Some(r) = codec.frame_rate {
        put("frame_rate", format!("{r:.2}").into());
    }
    let subtype = mount.configured_subtype.clone().or(codec.subtype.clone());
    if let Some(s) = subtype {
        put("subtype", s.into());
    }
    if let Some(b) = &info.bitrate {
        put("bitrate", Value::guess(b));
    }
    put("genre", info.display_genre().into());
    put("server_name", info.display_name().into());
    put("server_description", info.display_description().into());
    if let Some(u) = info.url.as_deref().filter(|u| !u.is_empty()) {
        put("server_url", u.into());
    }
    put("server_type", info.content_type.as_str().into());
    if let Some(auth) = mount.authenticator {
        put("authenticator", auth.into());
    }
    put("public", Value::Int(info.public.into()));
    let id = &snap.identity;
    put("listenurl", id.listen_url(&mount.name).into());
    put("listeners", mount.listeners.into());
    // icecast sets it for on-demand relays only.
    if mount.on_demand {
        put("on_demand", Value::Int(1));
    }
    put("listener_peak", st.listener_peak.into());
    put("slow_listeners", st.slow_listeners.into());
    put("total_bytes_read", st.total_bytes_read.into());
    put("total_bytes_sent", st.total_bytes_sent.into());
    put("listener_connections", st.listener_connections.into());
    // Every client this mount has had: its source plus its listeners.
    put("connections", (st.listener_connections + 1).into());
    put("stream_start", rfc822(&mount.started).into());
    put("stream_start_iso8601", iso8601(&mount.started).into());
    put(
        "max_listeners",
        match mount.max_listeners {
            Some(n) => n.into(),
            None => Value::Unlimited,
        },
    );
    put("source_ip", info.source_ip.as_str().into());
    put("user_agent", info.user_agent.as_str().into());
    // As icecast2 reports them: its Ogg handler keeps a chain's (or an admin update's)
    // title and artist apart; its generic (MP3, AAC) handler knows only the one StreamTitle,
    // `artist - title`, and reports that as `title`.
    let (title, artist) = match mount.family {
        Family::Generic => (Some(mount.now_playing.clone()), None),
        Family::Ogg | Family::Webm => (mount.title.clone(), mount.artist.clone()),
    };
    if let Some(t) = title.filter(|t| !t.is_empty()) {
        put("title", t.into());
    }
    if let Some(a) = artist.filter(|a| !a.is_empty()) {
        put("artist", a.into());
    }
    // `yp_currently_playing` is only set by icecast's YP thread; floecast has no YP
    // directory support, so it is absent as on an icecast without <directory>.
    m
}

/// The mounts a document shows: live ones, hidden ones only when asked, optionally one.
pub fn visible_mounts<'a>(
    snap: &'a ServerSnapshot,
    show_hidden: bool,
    only: Option<&'a str>,
) -> impl Iterator<Item = &'a MountSnapshot> {
    snap.mounts
        .iter()
        .filter(|m| !m.ended)
        .filter(move |m| show_hidden || !m.hidden)
        .filter(move |m| only.is_none_or(|o| o == m.name))
}

/// `<icestats>`: global stats, then one `<source mount>` per mount. With `mount`, only that
/// mount, followed by its listeners (as icecast's `stats?mount=` does; the snapshot must
/// carry them).
pub fn icestats(snap: &ServerSnapshot, show_hidden: bool, mount: Option<&str>) -> Element {
    let mut root = Element::new("icestats");
    for (k, v) in global_stats(snap) {
        root.push(Element::leaf(k, v));
    }
    for m in visible_mounts(snap, show_hidden, mount) {
        let mut src = source_element(m);
        for (k, v) in mount_stats(snap, m) {
            src.push(Element::leaf(k, v));
        }
        if mount.is_some() {
            for l in listener_elements(&snap.now, m) {
                src.push(l);
            }
        }
        root.push(src);
    }
    root
}

fn source_element(m: &MountSnapshot) -> Element {
    Element::new("source")
        .attr("mount", m.name.clone())
        .list("sources")
}

/// `listmounts` / `streamlist`, and `moveclients` without a destination (which names the
/// `current_source` and leaves it out of the list).
pub fn sourcelist(snap: &ServerSnapshot, current: Option<&str>) -> Element {
    let mut root = Element::new("icestats");
    if let Some(c) = current {
        root.push(Element::leaf("current_source", c));
    }
    for m in visible_mounts(snap, true, None) {
        if current == Some(m.name.as_str()) {
            continue;
        }
        root.push(
            source_element(m)
                .with(Element::leaf(
                    "fallback",
                    m.fallback.clone().unwrap_or_default(),
                ))
                .with(Element::leaf("listeners", m.listeners))
                .with_opt(m.authenticator.map(|a| Element::leaf("authenticator", a)))
                .with(
                    Element::leaf("Connected", seconds_between(&m.started, &snap.now))
                        .key("connected"),
                )
                .with(
                    Element::leaf("content-type", m.stream.content_type.as_str())
                        .key("content_type"),
                ),
        );
    }
    root
}

/// `<listener>` elements as `listclients` writes them (none when the snapshot does not
/// carry this mount's listeners).
pub fn listener_elements(now: &Timestamp, m: &MountSnapshot) -> Vec<Element> {
    m.clients
        .iter()
        .flatten()
        .map(|l| {
            let ua = if l.user_agent.is_empty() {
                "Unknown"
            } else {
                l.user_agent.as_str()
            };
            Element::new("listener")
                .list("clients")
                .with(Element::leaf("IP", l.ip.to_string()).key("ip"))
                .with(Element::leaf("UserAgent", ua).key("user_agent"))
                .with(
                    Element::leaf("Connected", seconds_between(&l.connected, now)).key("connected"),
                )
                .with(Element::leaf("ID", l.id).key("id"))
                .with_opt(l.username.as_deref().map(|u| Element::leaf("username", u)))
        })
        .collect()
}

/// `listclients`: `<icestats><source mount><Listeners>N</Listeners><listener>…`.
pub fn listclients(now: &Timestamp, m: &MountSnapshot) -> Element {
    let mut src = source_element(m).with(Element::leaf("Listeners", m.listeners).key("listeners"));
    for l in listener_elements(now, m) {
        src.push(l);
    }
    Element::new("icestats").with(src)
}

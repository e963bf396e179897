//! icecast2's statistics as documents: the `<icestats>` tree of global and per-mount stats
//! (names sorted byte-wise, as icecast's AVL trees keep them), the mount list of
//! `listmounts`/`moveclients`, and the listener list of `listclients`. Reads mount state
//! through the registry and `Mount`'s API only; never changes anything.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::xml::{Element, Value};
use crate::format::Family;
use crate::mount::Mount;
use crate::server::Server;

/// `Tue, 06 Jun 2023 09:33:57 +0000`, icecast's RFC 822 style in local time.
pub fn rfc822(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(t)
        .format("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

/// `2023-06-06T09:33:57+0000` (no colon in the offset, as icecast prints it).
pub fn iso8601(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%z")
        .to_string()
}

/// Whole seconds since `t` (0 if the clock went backwards).
pub fn seconds_since(t: SystemTime) -> u64 {
    SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Global stats, sorted by name.
pub fn global_stats(server: &Server) -> BTreeMap<String, Value> {
    let config = server.config();
    let s = &server.stats;
    let get = |a: &std::sync::atomic::AtomicU64| Value::Int(a.load(Ordering::Relaxed));
    let mounts = server.registry.list();
    let listeners: usize = mounts.iter().map(|m| m.listener_count()).sum();
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("admin", config.admin.as_str().into());
    put("host", config.hostname.as_str().into());
    put("location", config.location.as_str().into());
    put("server_id", config.server_id.as_str().into());
    put("server_start", rfc822(server.started).into());
    put("server_start_iso8601", iso8601(server.started).into());
    put("clients", s.clients.load(Ordering::Relaxed).into());
    put("connections", get(&s.connections));
    put("sources", mounts.len().into());
    put("stats", s.stats_clients.load(Ordering::Relaxed).into());
    put("listeners", listeners.into());
    put("client_connections", get(&s.client_connections));
    put(
        "source_client_connections",
        get(&s.source_client_connections),
    );
    put("source_relay_connections", get(&s.source_relay_connections));
    put("source_total_connections", get(&s.source_total_connections));
    put("stats_connections", get(&s.stats_connections));
    put("listener_connections", get(&s.listener_connections));
    put("file_connections", get(&s.file_connections));
    m
}

/// One mount's stats, sorted by name. `audio_info` keys come first so that the well-known
/// stats of the same name (`bitrate`) win, as the later `stats_event` does in icecast.
pub fn mount_stats(server: &Server, mount: &Mount) -> BTreeMap<String, Value> {
    let config = server.config();
    let info = mount.info();
    let codec = mount.codec();
    let meta = mount.metadata();
    let st = &mount.stats;
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
    let subtype = config
        .mount(&mount.name)
        .and_then(|c| c.subtype.clone())
        .or(codec.subtype.clone());
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
    if let Some(auth) = config.listener_auth(&mount.name) {
        put("authenticator", auth.type_name().into());
    }
    put("public", Value::Int(info.public.into()));
    put("listenurl", server.listen_url(&mount.name).into());
    put("listeners", mount.listener_count().into());
    // icecast sets it for on-demand relays only.
    if mount.is_on_demand() {
        put("on_demand", Value::Int(1));
    }
    put(
        "listener_peak",
        st.listener_peak.load(Ordering::Relaxed).into(),
    );
    put(
        "slow_listeners",
        st.slow_listeners.load(Ordering::Relaxed).into(),
    );
    put(
        "total_bytes_read",
        st.total_bytes_read.load(Ordering::Relaxed).into(),
    );
    put(
        "total_bytes_sent",
        st.total_bytes_sent.load(Ordering::Relaxed).into(),
    );
    let listener_connections = st.listener_connections.load(Ordering::Relaxed);
    put("listener_connections", listener_connections.into());
    // Every client this mount has had: its source plus its listeners.
    put("connections", (listener_connections + 1).into());
    put("stream_start", rfc822(mount.started).into());
    put("stream_start_iso8601", iso8601(mount.started).into());
    put(
        "max_listeners",
        match mount.settings.max_listeners {
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
        Family::Generic => (Some(meta.display()), None),
        Family::Ogg | Family::Webm => (meta.title.clone(), meta.artist.clone()),
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
pub fn visible_mounts(server: &Server, show_hidden: bool, only: Option<&str>) -> Vec<Arc<Mount>> {
    server
        .registry
        .list()
        .into_iter()
        .filter(|m| !m.is_ended())
        .filter(|m| show_hidden || !m.settings.hidden)
        .filter(|m| only.is_none_or(|o| o == m.name))
        .collect()
}

/// `<icestats>`: global stats, then one `<source mount>` per mount. With `mount`, only that
/// mount, followed by its listeners (as icecast's `stats?mount=` does).
pub fn icestats(server: &Server, show_hidden: bool, mount: Option<&str>) -> Element {
    let mut root = Element::new("icestats");
    for (k, v) in global_stats(server) {
        root.push(Element::leaf(k, v));
    }
    for m in visible_mounts(server, show_hidden, mount) {
        let mut src = source_element(&m);
        for (k, v) in mount_stats(server, &m) {
            src.push(Element::leaf(k, v));
        }
        if mount.is_some() {
            for l in listener_elements(&m) {
                src.push(l);
            }
        }
        root.push(src);
    }
    root
}

fn source_element(m: &Mount) -> Element {
    Element::new("source")
        .attr("mount", m.name.clone())
        .list("sources")
}

/// `listmounts` / `streamlist`, and `moveclients` without a destination (which names the
/// `current_source` and leaves it out of the list).
pub fn sourcelist(server: &Server, current: Option<&str>) -> Element {
    let config = server.config();
    let mut root = Element::new("icestats");
    if let Some(c) = current {
        root.push(Element::leaf("current_source", c));
    }
    for m in visible_mounts(server, true, None) {
        if current == Some(m.name.as_str()) {
            continue;
        }
        root.push(
            source_element(&m)
                .with(Element::leaf("fallback", m.fallback().unwrap_or_default()))
                .with(Element::leaf("listeners", m.listener_count()))
                .with_opt(
                    config
                        .listener_auth(&m.name)
                        .map(|a| Element::leaf("authenticator", a.type_name())),
                )
                .with(Element::leaf("Connected", seconds_since(m.started)).key("connected"))
                .with(Element::leaf("content-type", m.info().content_type).key("content_type")),
        );
    }
    root
}

/// `<listener>` elements as `listclients` writes them.
pub fn listener_elements(m: &Mount) -> Vec<Element> {
    m.listeners()
        .into_iter()
        .map(|(id, l)| {
            let ua = if l.user_agent.is_empty() {
                "Unknown".to_string()
            } else {
                l.user_agent
            };
            Element::new("listener")
                .list("clients")
                .with(Element::leaf("IP", l.ip.to_string()).key("ip"))
                .with(Element::leaf("UserAgent", ua).key("user_agent"))
                .with(Element::leaf("Connected", seconds_since(l.connected)).key("connected"))
                .with(Element::leaf("ID", id).key("id"))
                .with_opt(l.username.as_deref().map(|u| Element::leaf("username", u)))
        })
        .collect()
}

/// `listclients`: `<icestats><source mount><Listeners>N</Listeners><listener>…`.
pub fn listclients(m: &Mount) -> Element {
    let mut src =
        source_element(m).with(Element::leaf("Listeners", m.listener_count()).key("listeners"));
    for l in listener_elements(m) {
        src.push(l);
    }
    Element::new("icestats").with(src)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_look_like_icecasts() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_686_044_037);
        let r = rfc822(t);
        // The zone is the machine's; the shape is fixed.
        assert_eq!(r.len(), "Tue, 06 Jun 2023 09:33:57 +0000".len(), "{r}");
        assert!(r.ends_with("00") && r.contains(" Jun 2023 "), "{r}");
        let i = iso8601(t);
        assert_eq!(i.len(), "2023-06-06T09:33:57+0000".len(), "{i}");
        assert!(i.starts_with("2023-06-0"), "{i}");
    }
}

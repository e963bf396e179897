//! What a source told us about its stream (`ice-*`/`icy-*` headers, Content-Type), merged
//! with the mount's config overrides, and the listener response headers derived from it
//! exactly as icecast2 derives them (spec §2.2).

use std::fmt::Write;

use crate::config::MountConfig;
use crate::documents::StreamFacts;

/// A source's stream as the mount keeps it: what the source said (shared with the status
/// documents), and what listeners are sent from it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceInfo {
    pub stream: StreamFacts,
    /// `icy-metaint` of a source or relay that sends in-band metadata.
    pub source_metaint: Option<usize>,
    /// Listener-facing `icy-*` header lines, derived once per source.
    pub listener_headers: String,
}

impl SourceInfo {
    /// Build from a source's request headers (or a relay's response headers) and the mount's
    /// config, whose stream settings win over what the source sent.
    pub fn from_headers(
        headers: &[(String, String)],
        content_type: &str,
        cfg: Option<&MountConfig>,
    ) -> Self {
        // An empty header counts as absent, as icecast2's parser never stores one (gst
        // shout2send sends `ice-description: ` and `ice-genre: ` when they are unset).
        let get = |names: &[&str]| -> Option<String> {
            names.iter().find_map(|n| {
                headers
                    .iter()
                    .find(|(k, v)| k.eq_ignore_ascii_case(n) && !v.trim().is_empty())
                    .map(|(_, v)| v.clone())
            })
        };
        let audio_info_raw = get(&["ice-audio-info"]);
        let audio_info: Vec<(String, String)> = audio_info_raw
            .as_deref()
            .map(|raw| {
                raw.split(';')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (decode(k.trim()), decode(v.trim())))
                    .collect()
            })
            .unwrap_or_default();
        let cfg_default = MountConfig::default();
        let cfg = cfg.unwrap_or(&cfg_default);
        let public = match cfg.public {
            Some(p) => p,
            None => get(&["ice-public", "icy-pub", "x-audiocast-public", "icy-public"])
                .map(|v| v.trim() == "1")
                .unwrap_or(false),
        };
        let stream = StreamFacts {
            content_type: cfg
                .content_type
                .clone()
                .unwrap_or_else(|| content_type.to_string()),
            name: cfg
                .stream_name
                .clone()
                .or_else(|| get(&["ice-name", "icy-name", "x-audiocast-name"])),
            description: cfg.stream_description.clone().or_else(|| {
                get(&[
                    "ice-description",
                    "icy-description",
                    "x-audiocast-description",
                ])
            }),
            url: cfg
                .stream_url
                .clone()
                .or_else(|| get(&["ice-url", "icy-url", "x-audiocast-url"])),
            genre: cfg
                .genre
                .clone()
                .or_else(|| get(&["ice-genre", "icy-genre", "x-audiocast-genre"])),
            bitrate: cfg.bitrate.clone().or_else(|| {
                get(&["ice-bitrate", "icy-br", "x-audiocast-bitrate"]).or_else(|| {
                    audio_info
                        .iter()
                        .find(|(k, _)| k == "bitrate")
                        .map(|(_, v)| v.clone())
                })
            }),
            public,
            audio_info,
            audio_info_raw,
            source_ip: String::new(),
            user_agent: get(&["user-agent"]).unwrap_or_default(),
        };
        SourceInfo {
            stream,
            source_metaint: get(&["icy-metaint"])
                .and_then(|v| v.trim().parse().ok())
                .filter(|&n: &usize| n > 0),
            listener_headers: derive_listener_headers(headers, cfg),
        }
    }
}

fn decode(s: &str) -> String {
    crate::http::request::bytes_to_string(crate::http::percent_decode(s))
}

/// Icecast's derivation: source headers in ascii order of lower-cased name; `ice-X` becomes
/// `icy-X:v` (`ice-public`→`icy-pub`, `ice-bitrate`→`icy-br`), `icy-X` passes through, an
/// `ice-audio-info` with `bitrate=N` yields `icy-br:N` plus the raw `ice-audio-info: ` line.
/// Mount settings override. Two deliberate differences: each `icy-*` name appears once
/// (icecast can send `icy-br` twice), and a source's request flag `Icy-MetaData` is not
/// echoed to listeners as `icy-metadata:1` (it describes the source's request, not the stream).
pub fn derive_listener_headers(headers: &[(String, String)], cfg: &MountConfig) -> String {
    // Empty values are dropped, as icecast2's header parser drops them: no bare
    // `icy-genre:` line reaches listeners.
    let mut sorted: Vec<(String, &str)> = headers
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));

    let mut lines: Vec<(String, String)> = Vec::new();
    let push = |lines: &mut Vec<(String, String)>, name: String, value: String| {
        if !lines.iter().any(|(n, _)| *n == name) {
            lines.push((name, value));
        }
    };
    let mut audio_info_line = None;
    for (name, value) in &sorted {
        let value = value.to_string();
        match name.as_str() {
            "ice-password" | "icy-metaint" | "icy-metadata" => {}
            "ice-audio-info" => {
                if let Some(br) = value
                    .split(';')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| k.trim() == "bitrate")
                {
                    push(&mut lines, "icy-br".into(), decode(br.1.trim()));
                }
                audio_info_line = Some(value.clone());
                lines.push(("ice-audio-info".into(), value));
            }
            "ice-public" => push(&mut lines, "icy-pub".into(), value),
            "ice-bitrate" => push(&mut lines, "icy-br".into(), value),
            n if n.starts_with("ice-") => push(&mut lines, format!("icy-{}", &n[4..]), value),
            n if n.starts_with("icy-") => push(&mut lines, n.to_string(), value),
            _ => {}
        }
    }
    let overrides = [
        ("icy-name", &cfg.stream_name),
        ("icy-description", &cfg.stream_description),
        ("icy-url", &cfg.stream_url),
        ("icy-genre", &cfg.genre),
        ("icy-br", &cfg.bitrate),
    ];
    for (name, value) in overrides {
        if let Some(v) = value {
            match lines.iter_mut().find(|(n, _)| n == name) {
                Some(line) => line.1 = v.clone(),
                None => lines.push((name.to_string(), v.clone())),
            }
        }
    }
    if let Some(p) = cfg.public {
        let v = if p { "1" } else { "0" }.to_string();
        match lines.iter_mut().find(|(n, _)| n == "icy-pub") {
            Some(line) => line.1 = v,
            None => lines.push(("icy-pub".into(), v)),
        }
    }
    let _ = audio_info_line;
    let mut out = String::new();
    for (name, value) in lines {
        let value: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        if name == "ice-audio-info" {
            let _ = write!(out, "ice-audio-info: {value}\r\n");
        } else {
            let _ = write!(out, "{name}:{value}\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ffmpeg_source_headers() {
        let headers = h(&[
            ("User-Agent", "Lavf/59.27.100"),
            ("Content-Type", "audio/mpeg"),
            ("Icy-MetaData", "1"),
            ("Ice-Name", "Live MP3"),
            ("Ice-Genre", "Test"),
            ("Ice-Public", "0"),
            ("Authorization", "Basic x"),
        ]);
        let d = derive_listener_headers(&headers, &MountConfig::default());
        assert_eq!(d, "icy-genre:Test\r\nicy-name:Live MP3\r\nicy-pub:0\r\n");
    }

    #[test]
    fn audio_info_gives_bitrate_once() {
        let headers = h(&[
            ("Ice-Audio-Info", "bitrate=128"),
            ("Ice-Bitrate", "128"),
            ("ice-name", "b"),
        ]);
        let d = derive_listener_headers(&headers, &MountConfig::default());
        assert_eq!(
            d,
            "icy-br:128\r\nice-audio-info: bitrate=128\r\nicy-name:b\r\n"
        );
        let info = SourceInfo::from_headers(&headers, "audio/mpeg", None);
        assert_eq!(info.stream.bitrate.as_deref(), Some("128"));
        assert_eq!(
            info.stream.audio_info,
            vec![("bitrate".to_string(), "128".to_string())]
        );
    }

    #[test]
    fn mount_config_overrides() {
        let cfg = MountConfig {
            stream_name: Some("Cfg Name".into()),
            genre: Some("Jazz".into()),
            public: Some(true),
            content_type: Some("audio/aac".into()),
            ..Default::default()
        };
        let headers = h(&[
            ("ice-name", "Src"),
            ("ice-public", "0"),
            ("ice-url", "http://x"),
        ]);
        let d = derive_listener_headers(&headers, &cfg);
        assert_eq!(
            d,
            "icy-name:Cfg Name\r\nicy-pub:1\r\nicy-url:http://x\r\nicy-genre:Jazz\r\n"
        );
        let info = SourceInfo::from_headers(&headers, "audio/mpeg", Some(&cfg));
        assert_eq!(info.stream.name.as_deref(), Some("Cfg Name"));
        assert!(info.stream.public);
        assert_eq!(info.stream.content_type, "audio/aac");
    }

    #[test]
    fn empty_headers_are_absent() {
        // gst shout2send's head: description and genre unset.
        let headers = h(&[
            ("ice-name", "gst"),
            ("ice-description", ""),
            ("ice-genre", " "),
            ("icy-genre", "Jazz"),
            ("ice-public", "0"),
        ]);
        let d = derive_listener_headers(&headers, &MountConfig::default());
        assert_eq!(d, "icy-name:gst\r\nicy-pub:0\r\nicy-genre:Jazz\r\n");
        let info = SourceInfo::from_headers(&headers, "audio/mpeg", None);
        assert_eq!(info.stream.description, None);
        assert_eq!(info.stream.display_description(), "Unspecified description");
        assert_eq!(info.stream.genre.as_deref(), Some("Jazz"));
    }

    #[test]
    fn icy_source_headers_and_metaint() {
        let headers = h(&[
            ("icy-name", "Shout"),
            ("icy-br", "64"),
            ("icy-pub", "1"),
            ("icy-metaint", "8192"),
        ]);
        let info = SourceInfo::from_headers(&headers, "audio/mpeg", None);
        assert_eq!(info.source_metaint, Some(8192));
        assert!(info.stream.public);
        assert_eq!(
            info.listener_headers,
            "icy-br:64\r\nicy-name:Shout\r\nicy-pub:1\r\n"
        );
    }
}

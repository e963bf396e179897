//! `[[mount]]` and `[mount-defaults]`: per-mount settings, each section checked against the
//! queue and burst sizes it inherits. Its `http-header`, `authentication` and `p2psp` keys
//! are read by their own modules.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

/// Longest `max-listener-duration`: 31 days.
const MAX_DURATION: u64 = 31 * 24 * 3600;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::limits::check_queue_burst;
use super::value::{mount_name, optional_path, ranged, timeout};
use super::{headers, listener_auth, p2psp};
use crate::config::{Config, MountConfig};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawMount {
    /// Required in `[[mount]]`, refused in `[mount-defaults]`.
    name: Option<Spanned<String>>,
    username: Option<String>,
    password: Option<String>,
    max_listeners: Option<Spanned<i64>>,
    max_listener_duration: Option<Spanned<u64>>,
    burst_size: Option<Spanned<usize>>,
    queue_size: Option<Spanned<usize>>,
    source_timeout: Option<Spanned<u64>>,
    fallback_mount: Option<Spanned<String>>,
    fallback_override: Option<bool>,
    fallback_after_silence: Option<Spanned<u64>>,
    fallback_when_full: Option<bool>,
    hidden: Option<bool>,
    public: Option<bool>,
    stream_name: Option<String>,
    stream_description: Option<String>,
    stream_url: Option<String>,
    genre: Option<String>,
    bitrate: Option<Bitrate>,
    #[serde(rename = "type")]
    content_type: Option<String>,
    subtype: Option<String>,
    charset: Option<String>,
    mp3_metadata_interval: Option<Spanned<i64>>,
    icy_metadata_in_ogg: Option<bool>,
    intro: Option<Spanned<String>>,
    dump_file: Option<Spanned<String>>,
    on_connect: Option<Spanned<String>>,
    on_disconnect: Option<Spanned<String>>,
    http_header: Option<Vec<headers::RawHeader>>,
    p2psp: Option<p2psp::RawP2psp>,
    authentication: Option<listener_auth::RawListenerAuth>,
}

/// `bitrate = "128"` or `bitrate = 128`; kept as the string icecast would report.
#[derive(Debug)]
struct Bitrate(String);

impl<'de> Deserialize<'de> for Bitrate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BitrateVisitor;

        impl Visitor<'_> for BitrateVisitor {
            type Value = Bitrate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a non-negative integer")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bitrate, E> {
                Ok(Bitrate(v.to_owned()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bitrate, E> {
                Ok(Bitrate(v.to_string()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bitrate, E> {
                match u64::try_from(v) {
                    Ok(v) => Ok(Bitrate(v.to_string())),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
        }

        deserializer.deserialize_any(BitrateVisitor)
    }
}

/// `[mount-defaults]`, then every `[[mount]]`, into `cfg` (whose `[limits]` are final).
pub(super) fn apply(
    src: &Source<'_>,
    cfg: &mut Config,
    defaults: Option<Spanned<RawMount>>,
    mounts: Option<Vec<Spanned<RawMount>>>,
) -> Result<(), ConfigError> {
    // The defaults first: mount sections are checked against the values they inherit.
    if let Some(d) = defaults {
        let span = d.span();
        let d = d.into_inner();
        if let Some(name) = &d.name {
            return Err(src.invalid(
                name.span(),
                "mount-defaults.name",
                "[mount-defaults] applies to every mount and has no name; use [[mount]] for one",
            ));
        }
        if d.p2psp.is_some() {
            return Err(src.invalid(
                span,
                "mount-defaults.p2psp",
                "a P2PSP team needs a [[mount]] with an exact name",
            ));
        }
        cfg.mount_defaults = Some(convert(src, d, "mount-defaults", ("", span), cfg)?);
    }
    if let Some(mounts) = mounts {
        let mut out = Vec::with_capacity(mounts.len());
        for (i, m) in mounts.into_iter().enumerate() {
            let key = format!("mount[{i}]");
            let span = m.span();
            let mut m = m.into_inner();
            let Some(name) = m.name.take() else {
                return Err(src.invalid(span, &key, "missing field `name`"));
            };
            let name_span = name.span();
            let name = mount_name(src, name, &format!("{key}.name"))?;
            out.push(convert(src, m, &key, (&name, name_span), cfg)?);
        }
        cfg.mounts = out;
    }
    Ok(())
}

/// `-1` means "not set" (icecast's convention); other negative values are errors.
fn optional_count(
    src: &Source<'_>,
    v: Option<Spanned<i64>>,
    key: &str,
) -> Result<Option<usize>, ConfigError> {
    let Some(v) = v else { return Ok(None) };
    match *v.get_ref() {
        -1 => Ok(None),
        n => usize::try_from(n).map(Some).map_err(|_| {
            src.invalid(
                v.span(),
                key,
                "must be -1 (unset) or a non-negative number that fits in memory",
            )
        }),
    }
}

/// One `[[mount]]` (with its checked `name` and the name's span) or `[mount-defaults]`
/// (name "") section.
fn convert(
    src: &Source<'_>,
    m: RawMount,
    key: &str,
    (name, name_span): (&str, Range<usize>),
    cfg: &Config,
) -> Result<MountConfig, ConfigError> {
    let k = |field: &str| format!("{key}.{field}");
    let p2psp = m
        .p2psp
        .map(|p| p2psp::convert(src, p, &k("p2psp"), name, name_span))
        .transpose()?;
    let fallback_mount = m
        .fallback_mount
        .map(|f| mount_name(src, f, &k("fallback-mount")))
        .transpose()?;
    let source_timeout = m
        .source_timeout
        .map(|t| timeout(src, t, &k("source-timeout")))
        .transpose()?;
    let fallback_after_silence = m
        .fallback_after_silence
        .map(|t| timeout(src, t, &k("fallback-after-silence")))
        .transpose()?;

    // What a mount inherits when this section leaves a size out: [mount-defaults], then
    // [limits]. (A glob section in between is not known here; MountSettings copes.)
    let defaults = cfg.mount_defaults.as_ref();
    let burst = m.burst_size.as_ref().map_or_else(
        || {
            defaults
                .and_then(|d| d.burst_size)
                .unwrap_or(cfg.limits.burst_size)
        },
        |v| *v.get_ref(),
    );
    let queue = m.queue_size.as_ref().map_or_else(
        || {
            defaults
                .and_then(|d| d.queue_size)
                .unwrap_or(cfg.limits.queue_size)
        },
        |v| *v.get_ref(),
    );
    check_queue_burst(
        src,
        key,
        queue,
        burst,
        m.queue_size.as_ref(),
        m.burst_size.as_ref(),
    )?;

    let http_headers = match m.http_header {
        Some(h) => headers::convert(src, h, &k("http-header"))?,
        None => Vec::new(),
    };
    let authentication = m
        .authentication
        .map(|a| listener_auth::convert(src, a, &k("authentication")))
        .transpose()?;

    Ok(MountConfig {
        name: name.to_string(),
        username: m.username,
        password: m.password,
        max_listeners: optional_count(src, m.max_listeners, &k("max-listeners"))?,
        max_listener_duration: match m.max_listener_duration {
            // 0: no limit, as in icecast.
            Some(v) => Some(ranged(
                src,
                &v,
                &k("max-listener-duration"),
                0..=MAX_DURATION,
                " seconds",
            )?)
            .filter(|s| *s > 0)
            .map(Duration::from_secs),
            None => None,
        },
        burst_size: m.burst_size.map(Spanned::into_inner),
        queue_size: m.queue_size.map(Spanned::into_inner),
        source_timeout,
        fallback_mount,
        fallback_override: m.fallback_override,
        fallback_after_silence,
        fallback_when_full: m.fallback_when_full,
        hidden: m.hidden,
        public: m.public,
        stream_name: m.stream_name,
        stream_description: m.stream_description,
        stream_url: m.stream_url,
        genre: m.genre,
        bitrate: m.bitrate.map(|b| b.0),
        content_type: m.content_type,
        subtype: m.subtype,
        charset: m.charset,
        mp3_metadata_interval: optional_count(
            src,
            m.mp3_metadata_interval,
            &k("mp3-metadata-interval"),
        )?,
        icy_metadata_in_ogg: m.icy_metadata_in_ogg,
        intro: optional_path(src, m.intro, &k("intro"))?,
        dump_file: optional_path(src, m.dump_file, &k("dump-file"))?,
        on_connect: optional_path(src, m.on_connect, &k("on-connect"))?,
        on_disconnect: optional_path(src, m.on_disconnect, &k("on-disconnect"))?,
        http_headers,
        p2psp,
        authentication,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;
    use crate::config::load::tests::{err, ok};

    #[test]
    fn missing_mount_name() {
        let e = err("[[mount]]\nname = \"/a\"\n\n[[mount]]\npassword = \"x\"\n");
        assert_eq!(e.key(), Some("mount[1]"));
        assert!(e.message().contains("name"), "{e}");
        assert_eq!(e.line(), Some(4));
    }

    #[test]
    fn bitrate_string_or_integer() {
        let cfg = ok(concat!(
            "[[mount]]\nname = \"/a\"\nbitrate = 128\n",
            "[[mount]]\nname = \"/b\"\nbitrate = \"96\"\n",
        ));
        assert_eq!(cfg.mounts[0].bitrate.as_deref(), Some("128"));
        assert_eq!(cfg.mounts[1].bitrate.as_deref(), Some("96"));
        let e = err("[[mount]]\nname = \"/a\"\nbitrate = 1.5\n");
        assert_eq!((e.key(), e.line()), (Some("mount[0].bitrate"), Some(3)));
        let e = err("[[mount]]\nname = \"/a\"\nbitrate = -1\n");
        assert_eq!(e.key(), Some("mount[0].bitrate"));
    }

    #[test]
    fn fallback_after_silence_is_whole_seconds_and_inherited() {
        let cfg = ok(concat!(
            "[mount-defaults]\nfallback-after-silence = 3\n",
            "[[mount]]\nname = \"/a\"\n",
        ));
        let a = cfg.mount("/a").expect("matches");
        assert_eq!(a.fallback_after_silence, Some(Duration::from_secs(3)));
        let e = err("[[mount]]\nname = \"/a\"\nfallback-after-silence = 0\n");
        assert_eq!(
            (e.key(), e.line()),
            (Some("mount[0].fallback-after-silence"), Some(3))
        );
    }

    #[test]
    fn minus_one_means_unset() {
        let cfg = ok("[[mount]]\nname = \"/a\"\nmax-listeners = -1\nmp3-metadata-interval = -1\n");
        assert_eq!(cfg.mounts[0].max_listeners, None);
        assert_eq!(cfg.mounts[0].mp3_metadata_interval, None);
        let cfg = ok("[[mount]]\nname = \"/a\"\nmax-listeners = 0\nmp3-metadata-interval = 0\n");
        assert_eq!(cfg.mounts[0].max_listeners, Some(0));
        assert_eq!(cfg.mounts[0].mp3_metadata_interval, Some(0));
    }

    #[test]
    fn mount_lookup_most_specific_wins() {
        let cfg = ok(concat!(
            "[[mount]]\nname = \"/live/*\"\nmax-listeners = 2\n",
            "[[mount]]\nname = \"/live/special\"\nmax-listeners = 1\n",
            "[[mount]]\nname = \"/live/special\"\nmax-listeners = 3\n",
            "[[mount]]\nname = \"/radio[0-9].mp3\"\nmax-listeners = 4\n",
        ));
        let max = |m: &str| cfg.mount(m).and_then(|m| m.max_listeners);
        // The exact name wins even after a glob; between equals, file order.
        assert_eq!(max("/live/special"), Some(1));
        assert_eq!(max("/live/other"), Some(2));
        assert_eq!(max("/live/a/b"), None);
        assert_eq!(max("/live"), None);
        assert_eq!(max("/radio7.mp3"), Some(4));
        assert_eq!(max("/radiox.mp3"), None);
    }

    #[test]
    fn overlapping_mounts_merge_key_by_key() {
        let cfg = ok(concat!(
            "[mount-defaults]\nmax-listeners = 50\nstream-name = \"Default\"\n",
            "genre = \"various\"\nhidden = true\npassword = \"defpw\"\n",
            "http-header = [{ name = \"X-A\", value = \"default\" }, { name = \"X-D\", value = \"d\" }]\n",
            "[[mount]]\nname = \"/live/*\"\nstream-name = \"Live\"\nmax-listeners = 5\n",
            "username = \"dj\"\nhidden = false\n",
            "http-header = [{ name = \"x-a\", value = \"live\" }]\n",
            "[[mount]]\nname = \"/live/*.mp3\"\ngenre = \"Rock\"\n",
            "[[mount]]\nname = \"/live/special.mp3\"\npassword = \"special\"\nmax-listeners = 1\n",
        ));
        let special = cfg.mount("/live/special.mp3").expect("matches");
        assert_eq!(special.name, "/live/special.mp3");
        assert_eq!(special.max_listeners, Some(1));
        assert_eq!(special.password.as_deref(), Some("special"));
        assert_eq!(special.genre.as_deref(), Some("Rock"));
        assert_eq!(special.stream_name.as_deref(), Some("Live"));
        assert_eq!(special.username.as_deref(), Some("dj"));
        // An explicit false in a more specific section beats the defaults' true.
        assert_eq!(special.hidden, Some(false));
        let headers: Vec<(&str, &str)> = special
            .http_headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(headers, [("x-a", "live"), ("X-D", "d")]);

        let ogg = cfg.mount("/live/show.ogg").expect("matches");
        assert_eq!(
            (
                ogg.max_listeners,
                ogg.genre.as_deref(),
                ogg.password.as_deref()
            ),
            (Some(5), Some("various"), Some("defpw"))
        );
        // A mount no section names still gets the defaults.
        let other = cfg.mount("/elsewhere").expect("defaults");
        assert_eq!(
            (
                other.max_listeners,
                other.stream_name.as_deref(),
                other.hidden
            ),
            (Some(50), Some("Default"), Some(true))
        );
        assert_eq!(cfg.source_password_for("/elsewhere"), "defpw");
        assert_eq!(cfg.source_password_for("/live/special.mp3"), "special");
        assert!(cfg.source_credentials_ok("/live/x.mp3", "dj", "defpw"));
        assert!(!cfg.source_credentials_ok("/live/x.mp3", "source", "hackme"));
        let settings = crate::mount::MountSettings::resolve(&cfg, "/live/special.mp3");
        assert_eq!((settings.max_listeners, settings.hidden), (Some(1), false));
    }

    #[test]
    fn mount_defaults_validation() {
        let e = err("[mount-defaults]\nname = \"/a\"\n");
        assert_eq!((e.key(), e.line()), (Some("mount-defaults.name"), Some(2)));
        let e = err("[mount-defaults]\np2psp = { role = \"splitter\", port = 9 }\n");
        assert_eq!(e.key(), Some("mount-defaults.p2psp"));
        let e = err("[mount-defaults]\nqueue-size = 1000\n");
        assert_eq!(
            (e.key(), e.line()),
            (Some("mount-defaults.queue-size"), Some(2))
        );
        // A mount is checked against the sizes it inherits from the defaults.
        let e = err(
            "[mount-defaults]\nqueue-size = 100000\n[[mount]]\nname = \"/a\"\nburst-size = 200000\n",
        );
        assert_eq!((e.key(), e.line()), (Some("mount[0].burst-size"), Some(5)));
        let cfg =
            ok("[mount-defaults]\nauthentication = { type = \"htpasswd\", filename = \"u\" }\n");
        assert!(cfg.listener_auth("/any").is_some());
        assert!(Config::default().mount("/any").is_none());
    }
}

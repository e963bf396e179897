//! `[paths]`: the webroot (static files, intros) and the pid file.

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::value::path;
use crate::config::Paths;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPaths {
    webroot: Option<Spanned<String>>,
    pidfile: Option<Spanned<String>>,
}

pub(super) fn apply(src: &Source<'_>, paths: RawPaths, out: &mut Paths) -> Result<(), ConfigError> {
    if let Some(p) = paths.webroot {
        out.webroot = Some(path(src, p, "paths.webroot")?);
    }
    if let Some(p) = paths.pidfile {
        out.pidfile = Some(path(src, p, "paths.pidfile")?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;
    use crate::config::load::tests::ok;

    #[test]
    fn intro_is_under_the_webroot() {
        let cfg = ok("[paths]\nwebroot = \"/srv/web\"\n");
        assert_eq!(
            cfg.intro_path(Path::new("/intro.mp3")),
            Path::new("/srv/web/intro.mp3")
        );
        assert_eq!(
            cfg.intro_path(Path::new("intros/a.ogg")),
            Path::new("/srv/web/intros/a.ogg")
        );
        // Without a webroot the path is used as written.
        let cfg = Config::default();
        assert_eq!(
            cfg.intro_path(Path::new("/intro.mp3")),
            Path::new("/intro.mp3")
        );
    }
}

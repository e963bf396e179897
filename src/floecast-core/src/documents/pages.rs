//! icecast's small XHTML status pages: `/status.xsl` (the public overview of non-hidden
//! mounts) and `/server_version.xsl` (who runs this server). Rendered from a snapshot only.

use super::icestats::{mount_stats, visible_mounts};
use super::snapshot::{Identity, ServerSnapshot};
use crate::http::response::html_escape;

/// `/status.xsl`: one table per non-hidden live mount.
pub fn status_page(snap: &ServerSnapshot) -> String {
    let mut body = xhtml_head(&format!("{} Status", snap.identity.server_id));
    for m in visible_mounts(snap, false, None) {
        let st = mount_stats(snap, m);
        body.push_str(&format!(
            "<div class=\"mount\"><h3>Mount Point {}</h3><table>\n",
            html_escape(&m.name)
        ));
        for (label, key) in [
            ("Stream Name", "server_name"),
            ("Stream Description", "server_description"),
            ("Content Type", "server_type"),
            ("Stream started", "stream_start"),
            ("Bitrate", "bitrate"),
            ("Listeners (current)", "listeners"),
            ("Listeners (peak)", "listener_peak"),
            ("Genre", "genre"),
            ("Stream URL", "server_url"),
        ] {
            if let Some(v) = st.get(key) {
                body.push_str(&format!(
                    "<tr><td>{label}:</td><td class=\"streamstats\">{}</td></tr>\n",
                    html_escape(&v.text())
                ));
            }
        }
        // icecast's status.xsl writes `artist - ` before the title when there is an artist.
        let playing = match (st.get("artist"), st.get("title")) {
            (Some(a), Some(t)) => format!("{} - {}", a.text(), t.text()),
            (Some(a), None) => format!("{} - ", a.text()),
            (None, t) => t.map(|t| t.text()).unwrap_or_default(),
        };
        body.push_str(&format!(
            "<tr><td>Currently playing:</td><td class=\"streamstats\">{}</td></tr>\n",
            html_escape(&playing)
        ));
        body.push_str(&format!(
            "</table><p><a href=\"{0}.m3u\">M3U</a> <a href=\"{0}.xspf\">XSPF</a></p></div>\n",
            html_escape(&m.name)
        ));
    }
    body.push_str("</body>\n</html>\n");
    body
}

/// `/server_version.xsl`.
pub fn server_version_page(id: &Identity) -> String {
    let mut body = xhtml_head(&format!("{} Server Information", id.server_id));
    body.push_str("<table>\n");
    for (label, value) in [
        ("Location", &id.location),
        ("Admin", &id.admin),
        ("Host", &id.host),
        ("Version", &id.server_id),
    ] {
        body.push_str(&format!(
            "<tr><td>{label}</td><td class=\"streamstats\">{}</td></tr>\n",
            html_escape(value)
        ));
    }
    body.push_str("</table>\n</body>\n</html>\n");
    body
}

fn xhtml_head(title: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n<html xmlns=\"http://www.w3.org/1999/xhtml\">\n<head><title>{0}</title></head>\n<body>\n<h2>{0}</h2>\n",
        html_escape(title)
    )
}

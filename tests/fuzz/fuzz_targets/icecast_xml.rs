//! icecast.xml import (`--config icecast.xml`, `floecast import-icecast`): any text reaches the
//! XML reader and the converter, and what converts is loaded as floecast TOML.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(converted) = floecast::config::icecast_xml::to_toml(text, "fuzz.xml") {
        let _ = converted.load();
    }
});

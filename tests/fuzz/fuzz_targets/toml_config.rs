//! TOML config loading (start-up, SIGHUP, check-config): any text is parsed and validated, and
//! the mount settings of what loads are resolved as a request would.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = floecast::config::Config::from_toml_str(text, "fuzz.toml") {
        for name in ["/live", "/live.ogg", "/a/b.mp3", "/"] {
            let _ = config.mount(name);
            let _ = config.listener_auth(name);
            let _ = config.source_password_for(name);
        }
        let _ = config.default_passwords();
    }
});

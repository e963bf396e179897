#!/usr/bin/env bash
# Run every fuzz target for a bounded time (default 45 s each, two at a time on two cores:
# FUZZ_JOBS), seeding the corpora first: tests/fuzz/run.sh [SECONDS]. CI calls it from .ci/run. Needs
# cargo-fuzz (`cargo install cargo-fuzz`) and ffmpeg (media seeds). On a stable toolchain
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the nightly flags it needs. A crash fails the run and
# leaves its input under tests/fuzz/artifacts/<target>/ (reproduce: cargo fuzz run
# --fuzz-dir tests/fuzz <target> <file>); fix it in the parser and add a unit test there.
set -euo pipefail

seconds="${1:-45}"
jobs="${FUZZ_JOBS:-2}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
export RUSTC_BOOTSTRAP=1
export CARGO_INCREMENTAL=0

targets=(http_request http_chunked http_response icy ogg mpeg webm p2psp_wire p2psp_gen_c
         p2psp_machines icecast_xml toml_config)
# FUZZ_TARGETS="ogg webm" runs only those.
if [ -n "${FUZZ_TARGETS:-}" ]; then
    read -r -a targets <<< "$FUZZ_TARGETS"
fi

echo "==> building the fuzz targets"
cargo fuzz build --fuzz-dir tests/fuzz -O

echo "==> seeding the corpora"
corpus="$here/corpus"
mkdir -p "$corpus"
# `cargo fuzz build` built the seed writer with the targets (same flags, no second build).
# The targets are then run straight from there: `cargo fuzz run` would check the build again
# for each, and two at a time would wait on each other's cargo lock.
bin="$(dirname "$(find tests/fuzz/target -path '*/release/seeds' -type f -perm -u+x | head -n 1)")"
[ -x "$bin/seeds" ] || { echo "the seeds program was not built" >&2; exit 1; }
"$bin/seeds" "$corpus"
media="$(mktemp -d)"
trap 'rm -rf "$media"' EXIT
if command -v ffmpeg >/dev/null 2>&1; then
    gen() { ffmpeg -loglevel error -nostdin -y "$@"; }
    tone=(-f lavfi -i "sine=frequency=440:duration=0.6")
    gen "${tone[@]}" -c:a libmp3lame -b:a 64k -metadata title="Seed" "$media/tone.mp3"
    gen "${tone[@]}" -c:a aac -b:a 64k -f adts "$media/tone.aac"
    gen "${tone[@]}" -c:a libvorbis -metadata TITLE="Seed" -f ogg "$media/vorbis.ogg"
    gen "${tone[@]}" -c:a libopus -f ogg "$media/opus.ogg"
    gen "${tone[@]}" -c:a flac -f ogg "$media/flac.ogg"
    gen -f lavfi -i "testsrc=size=64x48:rate=10:duration=0.6" "${tone[@]}" \
        -c:v libtheora -g 3 -c:a libvorbis -f ogg "$media/theora.ogg"
    gen -f lavfi -i "testsrc=size=64x48:rate=10:duration=0.6" "${tone[@]}" \
        -c:v libvpx -g 3 -deadline realtime -c:a libopus -f webm "$media/av.webm"
    gen "${tone[@]}" -c:a libopus -f webm -live 1 "$media/audio.webm"
    mkdir -p "$corpus/ogg" "$corpus/mpeg" "$corpus/webm"
    # A leading byte for where the retitle falls, then no cutting pattern.
    for f in "$media"/*.ogg; do
        { printf '\003\000'; head -c 60000 "$f"; } > "$corpus/ogg/seed-$(basename "$f")"
    done
    for f in "$media"/tone.mp3 "$media"/tone.aac; do
        { printf '\000'; head -c 20000 "$f"; } > "$corpus/mpeg/seed-$(basename "$f")"
    done
    for f in "$media"/*.webm; do
        { printf '\000'; head -c 60000 "$f"; } > "$corpus/webm/seed-$(basename "$f")"
    done
else
    echo "ffmpeg not found: the media targets start without seeds" >&2
fi
mkdir -p "$corpus/toml_config" "$corpus/icecast_xml"
cp config/floecast.toml "$corpus/toml_config/seed-floecast.toml"
for f in docker/*.toml; do
    [ -e "$f" ] && cp "$f" "$corpus/toml_config/seed-docker-$(basename "$f")"
done
cp tests/data/icecast-debian.xml "$corpus/icecast_xml/seed-debian.xml"
[ -r /etc/icecast2/icecast.xml ] && cp /etc/icecast2/icecast.xml "$corpus/icecast_xml/seed-etc.xml"

echo "==> fuzzing ${#targets[@]} targets, ${seconds}s each, $jobs at a time"
logs="$here/artifacts/logs"
mkdir -p "$logs"
run_one() {
    local t="$1"
    mkdir -p "$corpus/$t" "$here/artifacts/$t"
    if "$bin/$t" "$corpus/$t" -artifact_prefix="$here/artifacts/$t/" \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 >"$logs/$t.log" 2>&1; then
        printf '  %-16s ok   %s\n' "$t" "$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$') runs"
    else
        printf '  %-16s FAIL (log: %s)\n' "$t" "$logs/$t.log"
        tail -n 40 "$logs/$t.log"
        return 1
    fi
}
export -f run_one
export corpus here seconds logs bin
failed=0
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}' || failed=1
if [ "$failed" -ne 0 ]; then
    echo "fuzzing found a crash: inputs under tests/fuzz/artifacts/" >&2
    exit 1
fi
echo "==> no crash in ${#targets[@]} targets"

#!/usr/bin/env bash
#! benches/soak.sh: a long run of one floecast with everything that wears a server down, then a
#! row in BENCHMARKS.md ("Soak" section). Not run in CI.
#
# Usage: benches/soak.sh [--minutes N] [--no-write]
#
#   --minutes N   how long the soak runs (default 30)
#   --no-write    print the row instead of adding it to BENCHMARKS.md
#
# Environment: FLOECAST names another binary than target/release/floecast; NO_BUILD=1 skips
# `cargo build --release`. Needs python3 and ffmpeg.
#
# What runs, all against one floecast on 127.0.0.1 (a free port):
#   /stable.mp3  a 128 kbit/s MP3 source that never stops; three witness listeners stay on it
#                the whole time and must get the source's bytes with no gap (lost bytes are
#                counted by matching what they got against what the source sent), decoding
#                cleanly with ffmpeg at the end.
#   /flap.mp3    a source that connects for 5-20 s, drops, and comes back 1-5 s later, with
#                fallback-mount /moves.mp3 and fallback-override: its listeners are moved
#                (deliberately) at every flap.
#   /moves.mp3   a steady source; every 15 s an admin moveclients sends /flap.mp3's listeners
#                here (and back when the flap source is live).
#   churn        about 60 listeners at a time on the three mounts, each for 1-10 s, some
#                asking for ICY metadata, some closing without reading (slow readers).
#   reloads      every 30 s the config is rewritten (a header toggled) and SIGHUP sent.
# Every 5 s the server's RSS and open fds are sampled from /proc. The row reports RSS and fds
# after a warm-up (a quarter of the run, at most 2 minutes), at the end, and their maximum,
# and the witnesses' lost bytes (0 expected: they are never moved).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FLOECAST=${FLOECAST:-"$ROOT/target/release/floecast"}
MD="$ROOT/BENCHMARKS.md"
MINUTES=30
WRITE=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --minutes) MINUTES=${2:?--minutes needs a value}; shift 2 ;;
        --no-write) WRITE=0; shift ;;
        -h|--help) sed -n '2,31p' "$0" | sed 's/^#!\{0,1\} \{0,1\}//'; exit 0 ;;
        *) echo "soak.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
for tool in python3 ffmpeg; do
    command -v "$tool" >/dev/null || { echo "soak.sh: $tool is needed" >&2; exit 2; }
done
if [[ -z ${NO_BUILD:-} && $FLOECAST == "$ROOT/target/release/floecast" ]]; then
    (cd "$ROOT" && cargo build --release --bin floecast)
fi

WORK=$(mktemp -d /tmp/floecast-soak.XXXXXX)
SERVER_PID=""
cleanup() {
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# 7 s of MP3 without tags: the sources loop it, so every byte a listener gets is known.
ffmpeg -v error -nostdin -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=7" -ac 2 \
    -c:a libmp3lame -b:a 128k -write_xing 0 -id3v2_version 0 -f mp3 "$WORK/tone.mp3"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
write_config() { # $1: the value of the toggled header
    cat > "$WORK/soak.toml" <<TOML
[[listen]]
port = $PORT
bind-address = "127.0.0.1"

[limits]
clients = 2000
sources = 8
source-timeout = 10

[logging]
access-log = "$WORK/access.log"

[[http-header]]
name = "X-Soak"
value = "$1"

[[mount]]
name = "/flap.mp3"
fallback-mount = "/moves.mp3"
fallback-override = true
TOML
}
write_config 0
"$FLOECAST" --config "$WORK/soak.toml" > "$WORK/server.out" 2> "$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null && break
    sleep 0.1
done

echo "soak: floecast pid $SERVER_PID on port $PORT for $MINUTES min (work dir $WORK)"
RESULT=$(python3 - "$WORK" "$PORT" "$SERVER_PID" "$MINUTES" <<'PY'
import base64, json, os, random, signal, socket, subprocess, sys, threading, time

work, port, pid, minutes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
duration = minutes * 60
tone = open(f"{work}/tone.mp3", "rb").read()
RATE = 16000  # bytes/s at 128 kbit/s
SRC = "Basic " + base64.b64encode(b"source:hackme").decode()
ADM = "Basic " + base64.b64encode(b"admin:hackme").decode()
stop = threading.Event()
counts = {"flaps": 0, "moves": 0, "reloads": 0, "churned": 0, "churn_failed": 0}
lock = threading.Lock()

def bump(k, n=1):
    with lock:
        counts[k] += n

def source(mount, until):
    """PUT the looped tone in real time until `until()` says stop; the bytes sent are
    tone[0:], tone[0:], ... so position p holds tone[p % len(tone)]."""
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.sendall((f"PUT {mount} HTTP/1.1\r\nHost: x\r\nAuthorization: {SRC}\r\n"
               "Content-Type: audio/mpeg\r\nIce-Name: soak\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(1024)
        if not d:
            raise RuntimeError(f"{mount}: closed before 200")
        head += d
    if b" 200 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(f"{mount}: {head!r}")
    sent, t0, piece = 0, time.monotonic(), RATE // 10
    while not stop.is_set() and not until():
        at = sent % len(tone)
        chunk = (tone + tone)[at:at + piece]
        s.sendall(chunk)
        sent += len(chunk)
        lag = t0 + sent / RATE - time.monotonic()
        if lag > 0:
            time.sleep(lag)
    s.close()

def steady(mount):
    while not stop.is_set():
        try:
            source(mount, lambda: False)
        except Exception as e:
            print(f"soak: {mount} source: {e}", file=sys.stderr)
            time.sleep(1)

def flapper():
    while not stop.is_set():
        end = time.monotonic() + random.uniform(5, 20)
        try:
            source("/flap.mp3", lambda: time.monotonic() > end)
        except Exception as e:
            print(f"soak: flap source: {e}", file=sys.stderr)
        bump("flaps")
        stop.wait(random.uniform(1, 5))

def http(path, auth=None):
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.settimeout(5)
    a = f"Authorization: {auth}\r\n" if auth else ""
    s.sendall(f"GET {path} HTTP/1.0\r\n{a}\r\n".encode())
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    return out

def listener(mount, seconds, icy=False, read=True):
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.settimeout(5)
    meta = "Icy-MetaData: 1\r\n" if icy else ""
    s.sendall(f"GET {mount} HTTP/1.0\r\nUser-Agent: soak/1.0\r\n{meta}\r\n".encode())
    end = time.monotonic() + seconds
    got = 0
    while time.monotonic() < end and not stop.is_set():
        if not read:
            time.sleep(0.2)
            continue
        d = s.recv(65536)
        if not d:
            break
        got += len(d)
    s.close()
    return got

def churn():
    while not stop.is_set():
        mount = random.choice(["/stable.mp3", "/flap.mp3", "/moves.mp3"])
        try:
            listener(mount, random.uniform(1, 10), icy=random.random() < 0.3,
                     read=random.random() < 0.9)
            bump("churned")
        except Exception:
            bump("churn_failed")
            time.sleep(0.5)

def witness(i, result):
    """Stays on /stable.mp3 for the whole run; records every body byte."""
    path = f"{work}/witness{i}.mp3"
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.settimeout(30)
    s.sendall(b"GET /stable.mp3 HTTP/1.0\r\nUser-Agent: soak-witness/1.0\r\n\r\n")
    buf = b""
    with open(path, "wb") as f:
        while not stop.is_set():
            try:
                d = s.recv(65536)
            except socket.timeout:
                result["stalls"] = result.get("stalls", 0) + 1
                continue
            if not d:
                result["closed_early"] = True
                break
            if buf is not None:
                buf += d
                if b"\r\n\r\n" in buf:
                    head, body = buf.split(b"\r\n\r\n", 1)
                    result["status"] = head.split(b"\r\n")[0].decode(errors="replace")
                    f.write(body)
                    buf = None
                continue
            f.write(d)
    s.close()
    result["path"] = path

def lost_bytes(path):
    """Match a witness's bytes against the looped tone: the count of source bytes it skipped
    (and of bytes it got that the source never sent at that place)."""
    data = open(path, "rb").read()
    loop = tone * 2
    n = len(tone)
    probe = 8192
    def locate(at, hint=0):
        # The nearest place at or after `hint` first: a tone repeats itself.
        piece = data[at:at + probe]
        i = loop.find(piece, hint)
        if i < 0:
            i = loop.find(piece)
        return None if i < 0 else i % n
    if len(data) < probe:
        return 0, len(data), len(data), 0
    pos, at, lost, foreign = locate(0), 0, 0, 0
    if pos is None:
        return 0, len(data), len(data), 0
    while at < len(data):
        # Compare in blocks; at a difference, find where the data goes on in the loop.
        block = min(65536, len(data) - at)
        want = (tone * (2 + block // n))[pos:pos + block]
        if data[at:at + block] == want:
            at += block
            pos = (pos + block) % n
            continue
        k = next(j for j in range(block) if data[at + j] != want[j])
        at += k
        pos = (pos + k) % n
        new = locate(at, pos)
        if new is None:
            foreign += 1
            at += 1
            continue
        lost += (new - pos) % n
        pos = new
    return lost, foreign, len(data), pos

def frame_starts(mp3):
    """Offsets of the MPEG-1 Layer III frames of the tone (constant bitrate, no tags)."""
    rates = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
    srs = [44100, 48000, 32000]
    out, at = [], 0
    while at + 4 <= len(mp3) and mp3[at] == 0xFF and mp3[at + 1] & 0xE0 == 0xE0:
        out.append(at)
        b2 = mp3[at + 2]
        size = 144000 * rates[b2 >> 4] // srs[(b2 >> 2) & 3] + ((b2 >> 1) & 1)
        if size <= 0:
            break
        at += size
    return out

def trim_to_frame(path, pos):
    """The witness without its last, partial frame (the run stops mid-frame)."""
    starts = [o for o in frame_starts(tone) if o <= pos]
    cut = pos - starts[-1] if starts else 0
    data = open(path, "rb").read()
    trimmed = path + ".trimmed.mp3"
    open(trimmed, "wb").write(data[:len(data) - cut])
    return trimmed

def sample():
    rss = 0
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) // 1024
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds

threads = [threading.Thread(target=steady, args=(m,), daemon=True) for m in ("/stable.mp3", "/moves.mp3")]
threads.append(threading.Thread(target=flapper, daemon=True))
for t in threads:
    t.start()
time.sleep(3)
witnesses = [{} for _ in range(3)]
wthreads = [threading.Thread(target=witness, args=(i, witnesses[i]), daemon=True) for i in range(3)]
for t in wthreads:
    t.start()
churners = [threading.Thread(target=churn, daemon=True) for _ in range(60)]
for t in churners:
    t.start()

samples = []
start = time.monotonic()
next_reload = start + 30
next_move = start + 15
config = open(f"{work}/soak.toml").read()
toggle = 0
while time.monotonic() - start < duration:
    now = time.monotonic()
    if now >= next_reload:
        toggle ^= 1
        with open(f"{work}/soak.toml", "w") as f:
            f.write(config.replace('value = "0"', f'value = "{toggle}"'))
        os.kill(pid, signal.SIGHUP)
        bump("reloads")
        next_reload += 30
    if now >= next_move:
        try:
            src, dst = random.choice([("/flap.mp3", "/moves.mp3"), ("/moves.mp3", "/flap.mp3")])
            http(f"/admin/moveclients?mount={src}&destination={dst}", ADM)
            bump("moves")
        except Exception as e:
            print(f"soak: move: {e}", file=sys.stderr)
        next_move += 15
    samples.append((round(now - start), *sample()))
    time.sleep(5)
# The end is measured under the same load as the rest, before anything stops.
final = sample()
samples.append((round(time.monotonic() - start), *final))
stop.set()
for t in wthreads:
    t.join(40)

warm = min(120, duration / 4)
after = [s for s in samples if s[0] >= warm] or samples
lost = foreign = received = 0
decode_errors = 0
problems = []
for w in witnesses:
    if "path" not in w:
        problems.append("a witness did not finish")
        continue
    if w.get("closed_early"):
        problems.append("a witness was disconnected")
    l, f_, r, end = lost_bytes(w["path"])
    lost += l
    foreign += f_
    received += r
    out = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", trim_to_frame(w["path"], end),
                          "-f", "null", "-"],
                         capture_output=True, text=True)
    decode_errors += len([x for x in out.stderr.splitlines() if x.strip()])
with open(f"{work}/samples.csv", "w") as f:
    f.write("t,rss_mib,fds\n")
    for s in samples:
        f.write(",".join(map(str, s)) + "\n")
print(json.dumps({
    "minutes": minutes,
    "rss_start": after[0][1], "rss_end": final[0], "rss_max": max(s[1] for s in after),
    "fds_start": after[0][2], "fds_end": final[1], "fds_max": max(s[2] for s in after),
    "received": received, "lost": lost, "foreign": foreign, "decode_errors": decode_errors,
    "problems": problems, **counts,
}))
PY
)
echo "$RESULT"
kill -0 "$SERVER_PID" 2>/dev/null || { echo "soak: floecast died; its log:" >&2; tail -50 "$WORK/server.log" >&2; exit 1; }

BUILD=release
[[ $FLOECAST == */debug/* ]] && BUILD=debug
ROW=$(python3 - "$RESULT" "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')" "$BUILD" <<'PY'
import json, sys, datetime
r = json.loads(sys.argv[1])
mib = lambda n: f"{n / 1048576:.1f} MiB"
print(f"| {datetime.date.today()} | {sys.argv[2]} ({sys.argv[3]}) | {r['minutes']:g} min "
      f"| {r['rss_start']} / {r['rss_end']} / {r['rss_max']} "
      f"| {r['fds_start']} / {r['fds_end']} / {r['fds_max']} "
      f"| {mib(r['received'])} | {r['lost']} ({r['foreign']} foreign) | {r['decode_errors']} "
      f"| {r['flaps']} / {r['moves']} / {r['reloads']} / {r['churned']} |"
      + (f" {'; '.join(r['problems'])}" if r['problems'] else ""))
PY
)
if [[ $WRITE -eq 1 ]]; then
    python3 - "$MD" "$ROW" <<'PY'
import sys
path, row = sys.argv[1], sys.argv[2]
text = open(path).read()
start, end = "<!-- soak:start -->", "<!-- soak:end -->"
header = ("| date | commit (build) | length | RSS MiB after warm-up / end / max | fds after warm-up / end / max "
          "| witnesses received | lost bytes | decode errors | flaps / moves / reloads / churned |\n"
          "|---|---|---|---|---|---|---|---|---|\n")
if start not in text:
    text = (text.rstrip("\n") + "\n\n## Soak\n\n"
            "`benches/soak.sh` (30 minutes; `--minutes N`): sources flapping, listeners churning,\n"
            "SIGHUP reloads and admin moves against one server (see the script's header). Witness\n"
            "listeners stay on a mount that is never moved: their lost bytes must be 0, and RSS\n"
            "and fds must stay flat after the warm-up. One row per run, newest last.\n\n"
            + start + "\n" + header + end + "\n")
before, rest = text.split(start, 1)
body, after = rest.split(end, 1)
body = body.strip("\n")
body = (body + "\n" if body else header) + row + "\n"
open(path, "w").write(before + start + "\n" + body + end + after)
PY
    echo "soak: row added to BENCHMARKS.md"
fi
echo "$ROW"

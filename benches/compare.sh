#!/usr/bin/env bash
#! benches/compare.sh: run the same load against icecast2 and floecast, write BENCHMARKS.md.
#
# Usage: benches/compare.sh [--listeners "1000 10000 18000"] [--quick] [--keep DIR]
#                           [--no-write] [--tls-only] [--no-tls]
#
#   --listeners LIST  burst sizes for scenario (a) (default "1000 10000 18000";
#                     with --quick "1000 3000")
#   --quick           shorter holds and a smaller ramp, for checking the tooling
#   --keep DIR        keep the raw generator JSON (one file per scenario and server) in DIR
#   --no-write        print the table instead of writing it into BENCHMARKS.md
#   --tls-only        run only scenario (d); --no-tls leaves it out
#
# Environment: FLOECAST and LOADGEN name other binaries than target/release's (an older
# build, to compare versions back to back); NO_BUILD=1 skips `cargo build`; TLS_N sets the
# listener count of scenario (d).
#
# Scenarios, each run against icecast2 and then floecast, with a fresh server every time:
#   (a) burst:   N listeners connecting at once on 1 mount, real-time 128 kbit/s source,
#                20 s hold (10 s with --quick), for each N in --listeners
#   (b) ramp:    1,000 connections/s up to 5,000 listeners (2,000 with --quick), 20 s hold
#   (c) unpaced: 200 listeners on 1 mount joining at 200/s, then the source sends as fast as
#                TCP allows, 10 s hold (5 s with --quick)
#   (d) tls:     floecast only, one server with a certificate taking TLS and plain HTTP on one
#                port, each measurement plain then TLS, reported as TLS/plain: connection
#                churn (32 workers connect, HEAD the mount, close; 10 s, 5 s with --quick),
#                and 5,000 listeners (1,000 with --quick) joining at 1,000/s, 20 s hold
#
# Each server runs on core 0 (taskset -c 0), the generator on core 1 (taskset -c 1), both
# with `ulimit -n 20000`. The table goes between the `<!-- results:start -->` and
# `<!-- results:end -->` markers of BENCHMARKS.md. If floecast cannot start (or does not
# listen within 10 s), its column says "not run" and the icecast2 column is still produced.
# Needs: cargo, jq, ss, taskset, openssl (for (d)); icecast2 at /usr/bin/icecast2 (Debian package).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ICECAST=${ICECAST:-/usr/bin/icecast2}
FLOECAST=${FLOECAST:-"$ROOT/target/release/floecast"}
LOADGEN=${LOADGEN:-"$ROOT/target/release/floecast-loadgen"}
MD="$ROOT/BENCHMARKS.md"
FD_LIMIT=20000

LISTENERS=""
QUICK=0
KEEP=""
WRITE=1
TLS=1
TLS_ONLY=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --listeners) LISTENERS=${2:?--listeners needs a value}; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --keep) KEEP=${2:?--keep needs a directory}; shift 2 ;;
        --no-write) WRITE=0; shift ;;
        --tls-only) TLS_ONLY=1; shift ;;
        --no-tls) TLS=0; shift ;;
        -h|--help) sed -n '2,33p' "$0" | sed 's/^#!\{0,1\} \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done

if [[ $QUICK -eq 1 ]]; then
    LISTENERS=${LISTENERS:-"1000 3000"}
    HOLD=10; RAMP_N=2000; RAMP_RATE=1000; UNPACED_N=200; UNPACED_HOLD=5
    TLS_N=${TLS_N:-1000}; CHURN_SECS=5
else
    LISTENERS=${LISTENERS:-"1000 10000 18000"}
    HOLD=20; RAMP_N=5000; RAMP_RATE=1000; UNPACED_N=200; UNPACED_HOLD=10
    TLS_N=${TLS_N:-5000}; CHURN_SECS=10
fi
[[ $TLS -eq 1 ]] || TLS_ONLY=0

for tool in jq ss taskset cargo timeout $([[ $TLS -eq 1 ]] && echo openssl); do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool is required" >&2; exit 2; }
done
[[ -x $ICECAST ]] || { echo "compare.sh: $ICECAST not found" >&2; exit 2; }
if [[ $(ulimit -Hn) != unlimited && $(ulimit -Hn) -lt $FD_LIMIT ]]; then
    echo "compare.sh: the fd hard limit is $(ulimit -Hn) (< $FD_LIMIT)" >&2
    exit 2
fi
if [[ $(nproc) -ge 2 ]]; then
    PIN_SERVER=(taskset -c 0)
    PIN_GEN=(taskset -c 1)
else
    echo "compare.sh: only one core: running unpinned (numbers will be meaningless)" >&2
    PIN_SERVER=()
    PIN_GEN=()
fi

WORK=$(mktemp -d /tmp/floecast-bench.XXXXXX)
chmod 755 "$WORK" # icecast2 drops to the icecast2 user and must reach its log dir
SERVER_PID=""
GEN_PID=""

stop_pid() { # pid: TERM, wait up to 5 s, then KILL
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    [[ -n $GEN_PID ]] && stop_pid "$GEN_PID"
    [[ -n $SERVER_PID ]] && stop_pid "$SERVER_PID"
    if [[ -n $KEEP ]]; then
        mkdir -p "$KEEP"
        cp "$WORK"/*.json "$KEEP"/ 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[compare %s] %s\n' "$(date +%T)" "$*" >&2; }

if [[ -z ${NO_BUILD:-} ]]; then
    echo "building floecast (release)..." >&2
    (cd "$ROOT" && cargo build --release --workspace --bins) >&2
fi

NEXT_PORT=18100
free_port() { # prints a TCP port with no listener on it
    while ss -Htan "( sport = :$NEXT_PORT )" | grep -q .; do
        NEXT_PORT=$((NEXT_PORT + 1))
    done
    echo "$NEXT_PORT"
    NEXT_PORT=$((NEXT_PORT + 1))
}

icecast_config() { # dir port
    local dir=$1 port=$2 owner=""
    mkdir -p "$dir/log"
    if [[ $EUID -eq 0 ]]; then
        # icecast2 refuses to run as root: it drops to the Debian package's user.
        chown icecast2:icecast "$dir/log"
        owner="<changeowner><user>icecast2</user><group>icecast</group></changeowner>"
    fi
    cat >"$dir/icecast.xml" <<EOF
<icecast>
  <location>bench</location>
  <admin>bench@localhost</admin>
  <hostname>127.0.0.1</hostname>
  <limits>
    <clients>19000</clients>
    <sources>8</sources>
    <queue-size>524288</queue-size>
    <client-timeout>30</client-timeout>
    <header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout>
    <burst-on-connect>1</burst-on-connect>
    <burst-size>65535</burst-size>
  </limits>
  <authentication>
    <source-password>hackme</source-password>
    <relay-password>hackme</relay-password>
    <admin-user>admin</admin-user>
    <admin-password>hackme</admin-password>
  </authentication>
  <listen-socket>
    <port>$port</port>
    <bind-address>127.0.0.1</bind-address>
  </listen-socket>
  <fileserve>1</fileserve>
  <paths>
    <basedir>/usr/share/icecast2</basedir>
    <logdir>$dir/log</logdir>
    <webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot>
  </paths>
  <logging>
    <accesslog>access.log</accesslog>
    <errorlog>error.log</errorlog>
    <loglevel>2</loglevel>
  </logging>
  <security>
    <chroot>0</chroot>
    $owner
  </security>
</icecast>
EOF
    chmod 644 "$dir/icecast.xml"
}

floecast_config() { # dir port
    local dir=$1 port=$2
    mkdir -p "$dir"
    cat >"$dir/floecast.toml" <<EOF
[[listen]]
port = $port
bind-address = "127.0.0.1"

[limits]
clients = 19500
sources = 8

[logging]
access-log = "$dir/access.log"
EOF
}

# A self-signed ECDSA P-256 certificate for localhost in $WORK (made once).
tls_certificate() {
    [[ -f $WORK/tls.pem ]] && return 0
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout "$WORK/tls.key" -out "$WORK/tls.pem" -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost >/dev/null 2>&1
}

floecast_tls_config() { # dir port: floecast_config plus the certificate
    floecast_config "$1" "$2"
    tls_certificate
    printf '\n[[tls]]\ncertificate = "%s"\nprivate-key = "%s"\n' \
        "$WORK/tls.pem" "$WORK/tls.key" >>"$1/floecast.toml"
}

# start_server KIND PORT DIR: sets SERVER_PID; fails when the server is not listening in 10 s.
start_server() {
    local kind=$1 port=$2 dir=$3 i rc
    case "$kind" in
        icecast2)
            icecast_config "$dir" "$port"
            (ulimit -n $FD_LIMIT && exec "${PIN_SERVER[@]}" "$ICECAST" -c "$dir/icecast.xml") \
                >"$dir/stdout.log" 2>&1 &
            ;;
        floecast | floecast-tls)
            [[ -x $FLOECAST ]] || { log "floecast: $FLOECAST missing"; return 1; }
            if [[ $kind == floecast-tls ]]; then
                floecast_tls_config "$dir" "$port"
            else
                floecast_config "$dir" "$port"
            fi
            (ulimit -n $FD_LIMIT && exec "${PIN_SERVER[@]}" "$FLOECAST" --config "$dir/floecast.toml") \
                >"$dir/stdout.log" 2>&1 &
            ;;
    esac
    SERVER_PID=$!
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            rc=0
            wait "$SERVER_PID" 2>/dev/null || rc=$?
            log "$kind exited at start-up (status $rc; not runnable yet?), skipping it:" \
                "$(tail -n 3 "$dir/stdout.log" | tr '\n' ' ')"
            SERVER_PID=""
            return 1
        fi
        if ss -Hltn "( sport = :$port )" | grep -q LISTEN; then
            return 0
        fi
        sleep 0.1
    done
    log "$kind is not listening on $port after 10 s"
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    return 1
}

# run_one KIND NAME LOADGEN-ARGS...: one scenario against one fresh server -> $WORK/NAME.KIND.json
run_one() {
    local kind=$1 name=$2
    shift 2
    local dir="$WORK/$name.$kind" out="$WORK/$name.$kind.json" port limit
    port=$(free_port)
    mkdir -p "$dir"
    if ! start_server "$kind" "$port" "$dir"; then
        echo '{"status":"not run"}' >"$out"
        return 0
    fi
    # Bounded: ramp + connect/head timeouts + hold + margin.
    limit=$((RAMP_N / RAMP_RATE + HOLD + UNPACED_HOLD + 90))
    log "$kind $name: $*"
    (ulimit -n $FD_LIMIT && exec timeout "$limit" "${PIN_GEN[@]}" "$LOADGEN" \
        --server "127.0.0.1:$port" --pid "$SERVER_PID" --json --label "$kind $name" "$@") \
        >"$out.tmp" 2>"$dir/loadgen.err" &
    GEN_PID=$!
    if wait "$GEN_PID" && jq -e . "$out.tmp" >/dev/null 2>&1; then
        jq -c '. + {status:"ok"}' "$out.tmp" >"$out"
        if [[ $(jq -r '.mode // ""' "$out") == connections ]]; then
            log "$kind $name: $(jq -r '"\(.connections_per_s) connections/s, \(.failed) failed, cpu \(.server_cpu_pct_hold)%, \(.server_cpu_ms_per_connection) ms per connection"' "$out")"
        else
            log "$kind $name: $(jq -r '"connected \(.connected)/\(.listeners), failed \(.failed), dropped \(.dropped), ttfb p99 \(.ttfb_ms_p99) ms, cpu \(.server_cpu_pct_hold)%, gen cpu \(.gen_cpu_pct_hold)%"' "$out")"
        fi
    else
        log "$kind $name: generator failed: $(tail -n 3 "$dir/loadgen.err" | tr '\n' ' ')"
        jq -nc --arg e "$(tail -n 1 "$dir/loadgen.err")" '{status:"error",error:$e}' >"$out"
    fi
    GEN_PID=""
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    rm -f "$out.tmp"
}

SCENARIOS=()
scenario() { # name args...: run against both servers
    local name=$1
    shift
    SCENARIOS+=("$name")
    run_one icecast2 "$name" "$@"
    run_one floecast "$name" "$@"
}

if [[ $TLS_ONLY -eq 0 ]]; then
    for n in $LISTENERS; do
        scenario "burst-$n" --listeners "$n" --connect-rate 0 --duration "$HOLD"
    done
    scenario "ramp-$RAMP_N" --listeners "$RAMP_N" --connect-rate "$RAMP_RATE" --duration "$HOLD"
    # 200/s: the throughput scenario should not measure accept-queue overflows (see the burst).
    scenario "unpaced-$UNPACED_N" --listeners "$UNPACED_N" --connect-rate 200 --pace unpaced \
        --duration "$UNPACED_HOLD"
fi

# (d): floecast plain against floecast TLS, on one kind of server (a fresh one each run).
TLS_SCENARIOS=()
tls_scenario() { # name args...: plain, then --tls
    local name=$1
    shift
    TLS_SCENARIOS+=("$name")
    run_one floecast-tls "$name-plain" "$@"
    run_one floecast-tls "$name-tls" "$@" --tls
}
if [[ $TLS -eq 1 ]]; then
    tls_scenario "churn" --connections "$CHURN_SECS" --concurrency 32 --listeners 1
    tls_scenario "listeners-$TLS_N" --listeners "$TLS_N" --connect-rate "$RAMP_RATE" \
        --duration "$HOLD"
fi

# ---------------------------------------------------------------------------------------
# The table.

# cell FILE JQ-EXPR DIGITS: a formatted number, "not run", "error" or "–".
cell() {
    local f=$1 expr=$2 digits=${3:-0} status v
    status=$(jq -r '.status' "$f")
    [[ $status == ok ]] || { echo "$status"; return; }
    v=$(jq -r "$expr // empty" "$f")
    [[ -n $v ]] || { echo "–"; return; }
    printf "%.${digits}f" "$v"
}

# ratio A B: B/A, or – when either is not a number or A is 0.
ratio() {
    local a=$1 b=$2
    if [[ $a =~ ^-?[0-9.]+$ && $b =~ ^-?[0-9.]+$ ]] && awk -v a="$a" 'BEGIN{exit !(a != 0)}'; then
        awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", b / a}'
    else
        echo "–"
    fi
}

row() { # scenario label expr digits
    local s=$1 label=$2 expr=$3 digits=$4 a b
    a=$(cell "$WORK/$s.icecast2.json" "$expr" "$digits")
    b=$(cell "$WORK/$s.floecast.json" "$expr" "$digits")
    printf '| %s | %s | %s | %s |\n' "$label" "$a" "$b" "$(ratio "$a" "$b")"
}

describe() { # scenario: one line saying what it was
    case "$1" in
        burst-*) echo "${1#burst-} listeners in one burst, 1 mount, real-time 128 kbit/s source, ${HOLD} s hold." ;;
        ramp-*) echo "${RAMP_RATE} connections/s up to ${1#ramp-} listeners, 1 mount, real-time source, ${HOLD} s hold." ;;
        unpaced-*) echo "${1#unpaced-} listeners joining at 200/s, then an unpaced source, ${UNPACED_HOLD} s hold." ;;
    esac
}

# tls_row scenario label expr digits: plain | TLS | TLS/plain
tls_row() {
    local s=$1 label=$2 expr=$3 digits=$4 a b
    a=$(cell "$WORK/$s-plain.floecast-tls.json" "$expr" "$digits")
    b=$(cell "$WORK/$s-tls.floecast-tls.json" "$expr" "$digits")
    printf '| %s | %s | %s | %s |\n' "$label" "$a" "$b" "$(ratio "$a" "$b")"
}

TABLE="$WORK/table.md"
{
    printf 'Run: %s%s. Machine: %s cores (%s), kernel %s. Versions: %s, floecast %s, %s.\n' \
        "$(date -u '+%Y-%m-%d %H:%M UTC')" "$([[ $QUICK -eq 1 ]] && echo ' with --quick')" \
        "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
        "$(uname -r)" "$("$ICECAST" -v 2>&1 | head -n1)" \
        "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')" \
        "$(rustc --version 2>/dev/null | cut -d' ' -f1-2)"
    for s in ${SCENARIOS[@]+"${SCENARIOS[@]}"}; do
        echo
        echo "### $s"
        echo
        describe "$s"
        echo
        echo "| metric | icecast2 | floecast | floecast/icecast2 |"
        echo "|---|---:|---:|---:|"
        row "$s" "listeners requested" '.listeners' 0
        row "$s" "connected" '.connected' 0
        row "$s" "failed" '.failed' 0
        row "$s" "dropped" '.dropped' 0
        case "$s" in
            burst-* | ramp-*)
                row "$s" "TTFB p50 (ms)" '.ttfb_ms_p50' 0
                row "$s" "TTFB p90 (ms)" '.ttfb_ms_p90' 0
                row "$s" "TTFB p99 (ms)" '.ttfb_ms_p99' 0
                row "$s" "TTFB max (ms)" '.ttfb_ms_max' 0
                row "$s" "per-listener kbit/s min" '.kbps_min' 1
                row "$s" "per-listener kbit/s p1" '.kbps_p1' 1
                row "$s" "per-listener kbit/s p50" '.kbps_p50' 1
                row "$s" "server CPU, connect phase (% of a core)" '.server_cpu_pct_connect' 1
                row "$s" "server CPU, hold (% of a core)" '.server_cpu_pct_hold' 1
                row "$s" "server CPU per 1000 held (% of a core)" '.server_cpu_pct_per_1000' 2
                row "$s" "server RSS at end (MiB)" '(.server_rss_kib_end // empty) / 1024' 1
                row "$s" "RSS per listener, delta (KiB)" '.rss_kib_per_listener_delta' 1
                row "$s" "RSS per listener, absolute (KiB)" '.rss_kib_per_listener_abs' 1
                ;;
            unpaced-*)
                row "$s" "aggregate delivered (Mbit/s)" '.aggregate_mbps' 1
                row "$s" "source accepted (Mbit/s)" '(.source_kbps // empty) / 1000' 1
                row "$s" "per-listener Mbit/s p50" '(.kbps_p50 // empty) / 1000' 1
                row "$s" "per-listener Mbit/s min" '(.kbps_min // empty) / 1000' 1
                row "$s" "server CPU, hold (% of a core)" '.server_cpu_pct_hold' 1
                ;;
        esac
        row "$s" "generator CPU, hold (% of a core)" '.gen_cpu_pct_hold' 1
    done
    for s in ${TLS_SCENARIOS[@]+"${TLS_SCENARIOS[@]}"}; do
        echo
        echo "### tls-$s"
        echo
        case "$s" in
            churn) echo "floecast with a certificate: 32 workers connect, HEAD the mount, close, for ${CHURN_SECS} s, plain then TLS (ECDSA P-256, no resumption)." ;;
            listeners-*) echo "floecast with a certificate: ${RAMP_RATE} connections/s up to ${s#listeners-} listeners, real-time 128 kbit/s source, ${HOLD} s hold, plain then TLS." ;;
        esac
        echo
        echo "| metric | plain HTTP | TLS | TLS/plain |"
        echo "|---|---:|---:|---:|"
        case "$s" in
            churn)
                tls_row "$s" "connections (handshakes) per second" '.connections_per_s' 0
                tls_row "$s" "failed" '.failed' 0
                tls_row "$s" "server CPU (% of a core)" '.server_cpu_pct_hold' 1
                tls_row "$s" "server CPU per connection (ms)" '.server_cpu_ms_per_connection' 3
                ;;
            listeners-*)
                tls_row "$s" "connected" '.connected' 0
                tls_row "$s" "failed" '.failed' 0
                tls_row "$s" "TTFB p99 (ms)" '.ttfb_ms_p99' 0
                tls_row "$s" "per-listener kbit/s p1" '.kbps_p1' 1
                tls_row "$s" "server CPU, connect phase (% of a core)" '.server_cpu_pct_connect' 1
                tls_row "$s" "server CPU, hold (% of a core)" '.server_cpu_pct_hold' 1
                tls_row "$s" "server CPU per 1000 held (% of a core)" '.server_cpu_pct_per_1000' 2
                tls_row "$s" "RSS per listener, delta (KiB)" '.rss_kib_per_listener_delta' 1
                ;;
        esac
        tls_row "$s" "generator CPU (% of a core)" '.gen_cpu_pct_hold' 1
    done
} >"$TABLE"

if [[ $WRITE -eq 1 && -f $MD ]] && grep -q '<!-- results:start -->' "$MD" && grep -q '<!-- results:end -->' "$MD"; then
    awk -v table="$TABLE" '
        /<!-- results:start -->/ { print; while ((getline l < table) > 0) print l; skip = 1; next }
        /<!-- results:end -->/ { skip = 0 }
        !skip { print }
    ' "$MD" >"$WORK/BENCHMARKS.md.new"
    cat "$WORK/BENCHMARKS.md.new" >"$MD"
    log "table written into $MD"
else
    cat "$TABLE"
fi

#!/usr/bin/env bash
# CI step: run the README's "Try it" commands as a new user would, in a fresh virtual environment.
#
# The commands are read from README.md itself (the first two ```bash blocks under "## Try it"),
# so this checks what the README says, not a copy of it:
#   block 1: install and serve the example model (run in the background);
#   block 2: the curl commands; a "# <output>" comment after a command is its expected output.
# The only change made to them: port 8080 becomes a free port, as CI machines may have 8080 taken.
# Then SIGTERM, and the server must exit 0.
set -euo pipefail
cd "$(dirname "$0")/.."

READY_TIMEOUT=${READY_TIMEOUT:-600}  # seconds, for `pip install .` into an empty venv plus startup

work=$(mktemp -d)
server=""
cleanup() {
    if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -KILL -- "-$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "readme-commands: $*" >&2
    [ -f "$work/server.log" ] && { echo "--- server output ---" >&2; tail -n 40 "$work/server.log" >&2; }
    exit 1
}

# The n-th ```bash block after the "## Try it" heading, one line per command.
readme_block() {
    awk -v want="$1" '
        /^## Try it/ { on = 1; next }
        on && /^```bash/ { n++; inside = (n == want); next }
        on && /^```/ { inside = 0; next }
        inside { print }
    ' README.md
}

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
serve_block=$(readme_block 1 | sed "s/8080/$port/g")
client_block=$(readme_block 2 | sed "s/8080/$port/g")
[ -n "$serve_block" ] || fail "no \`\`\`bash block under '## Try it' in README.md"
[ -n "$client_block" ] || fail "no second \`\`\`bash block under '## Try it' in README.md"

python3 -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"

echo "+ $serve_block"
# Its own session, so that cleanup can kill everything it started; bash runs the commands in order.
setsid bash -c "$serve_block" > "$work/server.log" 2>&1 &
server=$!

deadline=$((SECONDS + READY_TIMEOUT))
until [ "$(curl -s -o /dev/null -w '%{http_code}' "localhost:$port/ping")" = "200" ]; do
    kill -0 "$server" 2>/dev/null || fail "the serve command exited before the server was ready"
    [ "$SECONDS" -lt "$deadline" ] || fail "server not ready within $READY_TIMEOUT s"
    sleep 0.5
done

last_output=""
while IFS= read -r line; do
    case "$line" in
        "" ) ;;
        "# "*)
            expected=${line#\# }
            [ "$last_output" = "$expected" ] || fail "expected '$expected', got '$last_output'"
            echo "  ok: $expected" ;;
        *)
            echo "+ $line"
            last_output=$(eval "$line") || fail "command failed: $line"
            printf '%s\n' "$last_output"
            case "$last_output" in *'"code":'*|'') fail "no prediction from: $line" ;; esac ;;
    esac
done <<< "$client_block"

# Stop the way a container is stopped: SIGTERM to the server, which must drain and exit 0. The
# server is the block's last command: the bash running the block, or its child when bash did not
# exec it; its workers ignore SIGTERM by design, so only the server is signalled.
pid=$(pgrep -s "$server" -f "bin/sagemaker-inference serve" | head -n 1)  # not the bash -c line
[ -n "$pid" ] || fail "cannot find the server process"
kill -TERM "$pid"
status=0
wait "$server" || status=$?
server=""
[ "$status" -eq 0 ] || fail "server exited with $status after SIGTERM"
echo "readme-commands: OK"

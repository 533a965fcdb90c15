#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs the missing test peers from Debian's packages,
# the npm dependencies when absent, then runs every test and prints one closing line "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v baresip >/dev/null 2>&1 || need+=(baresip)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need+=(sox)
command -v opusinfo >/dev/null 2>&1 || need+=(opus-tools) # checks Ogg/Opus recordings (~0.3 MB with its two libraries)
# libopus.so.0: the media addon decodes Opus with FEC/PLC on it (src/media/opus-fec-native.ts); opus-tools pulls it in too.
{ ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null | grep 'libopus\.so\.0 ' >/dev/null || need+=(libopus0)
command -v rtpengine >/dev/null 2>&1 || need+=(rtpengine-daemon) # ICE-lite relay double (test/peers/rtpengine)
command -v promtool >/dev/null 2>&1 || need+=(prometheus) # promtool checks the shipped alert rules and dashboards as PromQL
# PostgreSQL server binaries (Debian keeps them off PATH, in /usr/lib/postgresql/<version>/bin): the call-record tests
# start a throwaway cluster with them (test/peers/postgres.ts).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing test peers from Debian: ${need[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "test.sh: WARNING: missing ${need[*]} and cannot apt-get install them (need root); tests that use them will skip" >&2
  fi
fi

[ -d node_modules ] || npm ci
# node_modules from before the addon existed: build it (npm ci does this itself).
[ -f build/Release/udp_batch.node ] || node scripts/build-native.mjs

# drachtio-server is built from source outside the repo (README); tests look for it here when DRACHTIO_BIN is unset.
if [ -z "${DRACHTIO_BIN:-}" ] && [ -x /opt/drachtio/bin/drachtio ]; then export DRACHTIO_BIN=/opt/drachtio/bin/drachtio; fi

results_dir=$(mktemp -d)
export WAGW_SKIP_LOG="$results_dir/skips.log"
: > "$WAGW_SKIP_LOG"
status=0
npx tsc --noEmit || status=$?
npx vitest run --reporter=default --reporter=json --outputFile.json="$results_dir/vitest.json" "$@" || status=$?
node scripts/test-summary.mjs "$results_dir/vitest.json" "$WAGW_SKIP_LOG" || status=$?
rm -rf "$results_dir"
exit $status

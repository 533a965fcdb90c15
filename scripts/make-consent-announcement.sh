#!/usr/bin/env bash
# Writes assets/consent-announcement.wav, the shipped default recording announcement: espeak-ng speech turned into
# 8 kHz mono 16-bit PCM by sox (about 5 s, < 100 KB). Run: bash scripts/make-consent-announcement.sh
set -euo pipefail
cd "$(dirname "$0")/.."
text="${1:-This call may be recorded. To agree, press 1.}"
tmp="$(mktemp --suffix=.wav)"
trap 'rm -f "$tmp"' EXIT
espeak-ng -v en-us -s 150 -w "$tmp" "$text"
sox "$tmp" -r 8000 -c 1 -b 16 -e signed-integer assets/consent-announcement.wav norm -3
sox --i assets/consent-announcement.wav

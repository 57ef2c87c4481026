#!/usr/bin/env bash
# `make docs-screenshots`: the built book as a reader sees it, through
# headless Chromium (Debian's). Usage: screenshot_docs.sh BOOK_DIR OUT_DIR
set -euo pipefail
book=$(realpath "$1"); out=$2
mkdir -p "$out"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
shoot() { # page, file, height
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$profile" --window-size=1280,"$3" \
    --screenshot="$out/$2" "file://$book/$1" 2>/dev/null
  echo "$out/$2"
}
shoot index.html landing.png 1400
shoot filters/aws-lambda.html aws-lambda.png 2200
shoot operating/troubleshooting.html troubleshooting.png 2200

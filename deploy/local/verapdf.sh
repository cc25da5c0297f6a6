#!/usr/bin/env bash
# veraPDF from Maven Central (deploy/verapdf/pom.xml) into .cache/verapdf/libs, once: the council PDF's PDF/UA-1
# check (tests/support/verapdf.py). `verapdf.sh ensure|libs`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LIBS="$ROOT/.cache/verapdf/libs"
say() { printf '[verapdf] %s\n' "$*"; }

ensure() {
  if [ -f "$LIBS/.complete" ] && cmp -s "$ROOT/deploy/verapdf/pom.xml" "$LIBS/.complete"; then
    say "$(basename "$LIBS"/greenfield-apps-*.jar .jar) cached in $LIBS"
    return 0
  fi
  if ! command -v mvn >/dev/null; then
    say "WARNING: Maven (mvn) is missing; the council PDF's PDF/UA check needs it: apt-get install -y maven"
    return 0
  fi
  say "fetching veraPDF from Maven Central into $LIBS (once; about 19 MB, 15 s) ..."
  rm -rf "$LIBS"
  mvn -B -ntp -f "$ROOT/deploy/verapdf/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$LIBS" \
    | grep -E 'BUILD|ERROR' | sed 's/^/[verapdf]   /' || true
  ls "$LIBS"/greenfield-apps-*.jar >/dev/null 2>&1 || { say "ERROR: the Maven fetch gave no greenfield-apps jar" >&2; exit 1; }
  cp "$ROOT/deploy/verapdf/pom.xml" "$LIBS/.complete"
  say "$(basename "$LIBS"/greenfield-apps-*.jar .jar) in $LIBS"
}

case "${1:-}" in
  ensure) ensure ;; libs) echo "$LIBS" ;;
  *) echo "usage: $0 ensure|libs" >&2; exit 2 ;;
esac

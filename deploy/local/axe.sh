#!/usr/bin/env bash
# axe-core (npm) for the accessibility checks of the pages' browser tests (tests/support/axe.py):
# fetched once into .cache/axe-core/<version>, idempotent. `axe.sh ensure|path`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VERSION=4.14.1
SHA512=FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ== # npm's dist.integrity
DIR="$ROOT/.cache/axe-core/$VERSION"
FILE="$DIR/node_modules/axe-core/axe.min.js"
say() { printf '[axe-core] %s\n' "$*"; }

ensure() {
  if [ -s "$FILE" ]; then
    say "axe-core $VERSION cached ($FILE)"
    return 0
  fi
  mkdir -p "$DIR"
  if command -v npm >/dev/null; then
    say "fetching axe-core $VERSION with npm (once)"
    npm install --prefix "$DIR" --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
      "axe-core@$VERSION" >/dev/null
  else # no npm (a bare CI machine): the same tarball from the npm registry, checked against its integrity
    say "fetching axe-core $VERSION from registry.npmjs.org (once; no npm here)"
    "${PYTHON:-python3}" - "$VERSION" "$SHA512" "$DIR/node_modules" <<'PY'
import base64, hashlib, io, sys, tarfile, urllib.request
version, sha512, into = sys.argv[1:]
url = f"https://registry.npmjs.org/axe-core/-/axe-core-{version}.tgz"
data = urllib.request.urlopen(url, timeout=60).read()
if base64.b64encode(hashlib.sha512(data).digest()).decode() != sha512:
    sys.exit(f"[axe-core] ERROR: {url} is not the registry's sha512 integrity")
with tarfile.open(fileobj=io.BytesIO(data)) as tgz:  # npm's layout: package/ -> node_modules/axe-core/
    for member in tgz.getmembers():
        member.name = member.name.replace("package/", "axe-core/", 1)
    tgz.extractall(into, filter="data")  # Python 3.11.4+
PY
  fi
  test -s "$FILE" || { say "ERROR: npm installed no $FILE" >&2; exit 1; }
  say "axe-core $VERSION in $FILE"
}

case "${1:-}" in
  ensure) ensure ;; path) echo "$FILE" ;;
  *) echo "usage: $0 ensure|path" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Download a model's published weights (resumable, checked against the declared SHA-256, atomic)
# into the artifacts location: --artifacts, else $SPEECH_REPS_ARTIFACTS, else the toolkit's artifacts/.
set -euo pipefail
artifacts=
url=
python=$(command -v python3)
names=$("$python" -c 'from speech_reps.download import artifacts; print(" ".join(sorted(artifacts())))') || exit 1
help_message="Usage: $0 [--artifacts <dir>] [--url <mirror-url>] <name>
 e.g.: $0 decoar      (names: $names)"
. "$(dirname "$0")/parse_options.sh"
if [ $# -ne 1 ]; then printf '%s\n' "$help_message" >&2; exit 1; fi
"$python" -c 'import sys
from speech_reps.download import DownloadError, download
try:
    print(download(sys.argv[1], sys.argv[2] or None, sys.argv[3] or None))
except DownloadError as e:
    sys.exit(f"download_models.sh: {e}")' "$1" "$artifacts" "$url"

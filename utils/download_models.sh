#!/usr/bin/env bash
# Download a model's published weights into artifacts/ (resumable, checked, atomic).
set -euo pipefail
artifacts=artifacts
url=
help_message="Usage: $0 [--artifacts <dir>] [--url <mirror-url>] <model>
 e.g.: $0 decoar      (models: decoar decoar-pt decoar2 bertphone wav2vec wav2vec2 hubert)"
. "$(dirname "$0")/parse_options.sh"
if [ $# -ne 1 ]; then printf '%s\n' "$help_message" >&2; exit 1; fi
python3 -c 'import sys
from speech_reps.download import DownloadError, download
try:
    print(download(sys.argv[1], sys.argv[2], sys.argv[3] or None))
except DownloadError as e:
    sys.exit(f"download_models.sh: {e}")' "$1" "$artifacts" "$url"

#!/bin/bash
# The end-to-end tests' log writer: LINES numbered lines on stdout, JSON and plain in turn, every LONG_EVERY-th one
# longer than the engine's 16 KiB line limit so the runtime splits it; PACE lines per tenth of a second, so that the
# engine's log rotation and the collector's restarts happen while it writes.
set -euo pipefail
LINES=${LINES:-1000}
PACE=${PACE:-50}
LONG_EVERY=${LONG_EVERY:-250}
LONG=$(head -c 20000 /dev/zero | tr '\0' 'x')

for ((i = 1; i <= LINES; i++)); do
  if ((i % LONG_EVERY == 0)); then
    printf 'seq=%d long=%s\n' "$i" "$LONG"
  elif ((i % 2 == 0)); then
    printf '{"seq":%d,"msg":"json line %d"}\n' "$i" "$i"
  else
    printf 'seq=%d plain line\n' "$i"
  fi
  if ((i % PACE == 0)); then sleep 0.1; fi
done

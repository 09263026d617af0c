#!/usr/bin/env bash
# Regenerates the IVR prompt recordings in prompts/ from prompts/manifest.tsv with espeak-ng (offline
# text-to-speech) and sox. Reproducible: same manifest, same espeak-ng/sox versions -> same files.
#   apt-get install espeak-ng sox      (Debian: espeak-ng 1.51, sox 14.4.2)
#   ops/prompts/generate.sh            (from the repository root)
# Output: 8 kHz mono G.711 mu-law WAV (the telephone network's own format; Twilio, Vonage, Africa's Talking
# and FreeSWITCH play it), leading/trailing silence trimmed. Human replacements may be any WAV or MP3.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v espeak-ng >/dev/null || { echo "espeak-ng is not installed (apt-get install espeak-ng)" >&2; exit 1; }
command -v sox >/dev/null || { echo "sox is not installed (apt-get install sox)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
count=0
while IFS=$'\t' read -r id lang file voice text; do
    case "$id" in ''|'#'*) continue ;; esac
    mkdir -p "prompts/$(dirname "$file")"
    if [ "$lang" = tg ]; then
        # No Tajik voice: the Russian voice reads the Cyrillic text; map the letters Russian lacks.
        text=$(printf '%s' "$text" | sed 's/ғ/г/g; s/Ғ/Г/g; s/ӣ/и/g; s/қ/к/g; s/Қ/К/g; s/ӯ/у/g; s/ҳ/х/g; s/Ҳ/Х/g; s/ҷ/дж/g; s/Ҷ/Дж/g')
    fi
    espeak-ng -v "$voice" -s 165 -w "$tmp/raw.wav" -- "$text"
    sox -D "$tmp/raw.wav" -r 8000 -c 1 -b 8 -e u-law "prompts/$file" \
        silence 1 0.05 0.5% reverse silence 1 0.05 0.5% reverse pad 0.05 0.1
    count=$((count + 1))
done < prompts/manifest.tsv
echo "generated $count prompt recordings in prompts/ ($(du -sh prompts | cut -f1))"

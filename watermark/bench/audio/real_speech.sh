#!/usr/bin/env bash
# Links the corpus's real (human) speech into one folder for the audio harness's
# window mode (`audio_harness --windows 5 --half tune|report DIR`):
#   media/audio/real/*         except the real_speech_derived_* files (re-encodings
#                              of files already there),
#   detection/audio/*          rows of detection/LABELS.tsv with modality speech, label real.
# Names get the source folder as a prefix so the sorted order (and so the
# tuning / report split by position) is stable.
# usage: real_speech.sh OUT_DIR [CORPUS_DIR]
set -euo pipefail
out=${1:?out dir}
corpus=${2:-/work/shared/corpus}
mkdir -p "$out"
n=0
for f in "$corpus"/media/audio/real/*; do
  case $(basename "$f") in real_speech_derived_*) continue ;; esac
  ln -sf "$f" "$out/media_$(basename "$f")"
  n=$((n + 1))
done
while IFS=$'\t' read -r file modality label _; do
  [ "$modality" = speech ] && [ "$label" = real ] || continue
  ln -sf "$corpus/detection/$file" "$out/detection_$(basename "$file")"
  n=$((n + 1))
done < "$corpus/detection/LABELS.tsv"
echo "$n real speech files in $out"

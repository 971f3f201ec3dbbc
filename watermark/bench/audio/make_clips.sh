#!/usr/bin/env bash
# Builds the 10 s speech clips of the audio robustness harness from the shared corpus.
# Files of one sample rate are concatenated in name order and cut into 10 s pieces
# (the corpus has only 5 files >= 10 s). Every 4th clip is converted to 44.1 kHz stereo
# and every 4th (offset 2) to 48 kHz stereo, so the harness also covers multichannel
# input at CD/video rates (the right channel is the left one 6 dB lower).
# usage: make_clips.sh OUT_DIR [CORPUS_DIR]
set -euo pipefail
out=${1:?out dir}
corpus=${2:-/work/shared/corpus}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=0
for rate in 8000 16000 22050; do
  files=()
  for f in "$corpus"/media/audio/real/*.wav "$corpus"/detection/audio/*.wav; do
    [ "$(soxi -r "$f")" = "$rate" ] && files+=("$f")
  done
  [ ${#files[@]} -eq 0 ] && continue
  if [ ${#files[@]} -eq 1 ]; then cp "${files[0]}" "$tmp/long.wav"; else sox "${files[@]}" -c 1 "$tmp/long.wav"; fi
  rm -f "$tmp"/piece*.wav
  sox "$tmp/long.wav" "$tmp/piece.wav" trim 0 10 : newfile : restart
  for p in "$tmp"/piece*.wav; do
    d=$(soxi -D "$p")
    awk -v d="$d" 'BEGIN{exit !(d>=9.99)}' || continue
    name=$(printf 'clip_%03d' "$i")
    case $((i % 4)) in
      1) sox -G "$p" -r 44100 -c 2 "$out/${name}_44k1_stereo.wav" remix 1 1v0.5 ;;
      3) sox -G "$p" -r 48000 -c 2 "$out/${name}_48k_stereo.wav" remix 1 1v0.5 ;;
      *) cp "$p" "$out/${name}_${rate}.wav" ;;
    esac
    i=$((i + 1))
  done
done
echo "$i clips in $out"

#!/bin/sh
# The same as the Makefile as a shell loop: each image of a folder to a .txt of its text, one
# after the other, through one dw daemon (the first run starts it; the others find the models loaded).
#   ./ocr-all.sh [IMAGES [TEXTS]]     (DW=dw when dw is on PATH; default: npx --no-install dw)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
images=${1:-$here/../../workflows/samples}
texts=${2:-texts}
dw=${DW:-npx --no-install dw}
mkdir -p "$texts"
for image in "$images"/*.png "$images"/*.jpg "$images"/*.jpeg "$images"/*.webp; do
  [ -e "$image" ] || continue
  out="$texts/$(basename "$image").txt"
  $dw run --quiet "$here/../../workflows/ocr.json" --arg image="$image" > "$out.part"
  mv "$out.part" "$out"
done

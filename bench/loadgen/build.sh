#!/usr/bin/env bash
# Build the native gRPC load generator (var/bin/grpc-loadgen) against Debian's libgrpc++,
# installing libgrpc++-dev if it is missing. The bench falls back to its Python client when
# this cannot be built (no compiler, no package repository).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=var/bin/grpc-loadgen
SRC=bench/loadgen/loadgen.cc
[ -x "$OUT" ] && [ "$OUT" -nt "$SRC" ] && exit 0
if ! pkg-config --exists grpc++ 2>/dev/null; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  [ -f var/.apt-updated ] || { $SUDO apt-get update -qq && mkdir -p var && touch var/.apt-updated; }
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libgrpc++-dev pkg-config >/dev/null
fi
mkdir -p var/bin
g++ -O2 -std=c++17 -o "$OUT" "$SRC" $(pkg-config --cflags --libs grpc++)
echo "built $OUT"

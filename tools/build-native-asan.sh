#!/bin/sh
# Builds a second copy of the native addon with AddressSanitizer and UndefinedBehaviorSanitizer,
# in a directory of your choice (never native/build), to check the TCP pump
# (native/src/tcp_relay.c) for memory errors under the stress test:
#
#   tools/build-native-asan.sh /tmp/tvs-asan            # → /tmp/tvs-asan/build/Release/tvs_native.node
#   tools/build-native-asan.sh --tight /tmp/tvs-tight   # the same with tiny buffers and batches
#   TVS_NATIVE_PATH=/tmp/tvs-asan/build/Release/tvs_native.node \
#   LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
#   ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
#     node --import tsx --test src/dataplane/proxy/native-relay-stress.test.ts src/dataplane/proxy/relay.test.ts
#
# --tight shrinks the pump's read buffer (4 KiB), reads before yielding (2), rounds per wake-up
# (1), records per call into JavaScript (160) and the first connection and listener tables (2, 1),
# so partial writes, yielding to the idle handle, JavaScript calls in the middle of a batch and
# table growth happen all the time instead of rarely.
# ASan is preloaded because node is not built with it; detect_leaks=0 because node itself leaves
# memory allocated at exit. Nothing built here is part of the package.
set -eu
extra=""
if [ "${1:-}" = "--tight" ]; then
  extra="-DRELAY_BUF=4096 -DMAX_READS=2 -DMAX_ROUNDS=1 -DMAX_RECORDS=160 -DFIRST_SLOTS=2 -DFIRST_LISTENERS=1"
  shift
fi
out="${1:?usage: tools/build-native-asan.sh [--tight] OUTPUT_DIR}"
root="$(cd "$(dirname "$0")/.." && pwd)"
rm -rf "$out"
mkdir -p "$out"
cp -r "$root/native/binding.gyp" "$root/native/src" "$out/"
gyp="$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || gyp=/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
prefix="$(dirname "$(command -v node)")/.."
nodedir=""
[ -f "$prefix/include/node/node_api.h" ] && nodedir="--nodedir=$prefix"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
cd "$out"
CFLAGS="$san $extra" LDFLAGS="$san" node "$gyp" rebuild --loglevel=warn $nodedir
echo "built $out/build/Release/tvs_native.node"

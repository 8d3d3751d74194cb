#!/bin/sh
# Builds a second copy of the native addon with AddressSanitizer and UndefinedBehaviorSanitizer,
# in a temporary directory (never native/build), and prints how to run tests against it. Used to
# check the TCP pump (native/src/tcp_relay.c) for memory errors under the stress test:
#
#   tools/build-native-asan.sh /tmp/tvs-asan        # builds /tmp/tvs-asan/build/Release/tvs_native.node
#   TVS_NATIVE_PATH=/tmp/tvs-asan/build/Release/tvs_native.node \
#   LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
#   ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
#     node --import tsx --test src/dataplane/proxy/native-relay-stress.test.ts
#
# detect_leaks=0: node itself leaves memory allocated at exit. ASan must be preloaded because node
# is not built with it. The build is not part of the package; nothing here is committed output.
set -eu
out="${1:?usage: tools/build-native-asan.sh OUTPUT_DIR}"
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
CFLAGS="$san" LDFLAGS="$san" node "$gyp" rebuild --loglevel=warn $nodedir
echo "built $out/build/Release/tvs_native.node"

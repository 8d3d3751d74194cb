# Build description for tvs's small N-API addon (raw-frame I/O, raw IP sockets, TUN; Linux only).
# Built by tools/build-native.mjs (npm install / npm run build:native) with npm's node-gyp.
{
  "targets": [
    {
      "target_name": "tvs_native",
      "sources": ["src/tvs_native.c", "src/tcp_probe.c", "src/tcp_relay.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}

// TCP connect probes for health checking (tcp_probe.c), registered by tvs_native.c.
#pragma once
#include <node_api.h>

napi_value tcp_probe_open(napi_env env, napi_callback_info info);
napi_value tcp_probe_connect(napi_env env, napi_callback_info info);
napi_value tcp_probe_collect(napi_env env, napi_callback_info info);

// The socket data plane's TCP byte pump (tcp_relay.c), registered by tvs_native.c.
#pragma once
#include <node_api.h>

napi_value tcp_relay_open(napi_env env, napi_callback_info info);
napi_value tcp_relay_listen(napi_env env, napi_callback_info info);
napi_value tcp_relay_unlisten(napi_env env, napi_callback_info info);
napi_value tcp_relay_connect(napi_env env, napi_callback_info info);
napi_value tcp_relay_reconnect(napi_env env, napi_callback_info info);
napi_value tcp_relay_abort(napi_env env, napi_callback_info info);
napi_value tcp_relay_reset(napi_env env, napi_callback_info info);
napi_value tcp_relay_local(napi_env env, napi_callback_info info);
napi_value tcp_relay_ref(napi_env env, napi_callback_info info);
napi_value tcp_relay_close(napi_env env, napi_callback_info info);

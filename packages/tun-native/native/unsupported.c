// TUN devices are opened by this addon on Linux only; other platforms get an
// addon that loads and says so, so that importing the package never crashes.
#include <node_api.h>

static napi_value js_unsupported(napi_env env, napi_callback_info info) {
  (void)info;
  napi_throw_error(env, "ERR_TUN_NATIVE", "tun-native supports Linux only");
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  const char *names[] = {"open", "start", "write", "close"};
  for (int i = 0; i < 4; i++) {
    napi_value fn;
    napi_create_function(env, names[i], NAPI_AUTO_LENGTH, js_unsupported, NULL, &fn);
    napi_set_named_property(env, exports, names[i], fn);
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

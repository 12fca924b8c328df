// Entry point of the native addon: wires the parts together, nothing else.
#include "modules.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  vlab::InitCryptodev(env, exports);
  vlab::InitVhost(env, exports);
  vlab::InitEvpEngine(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(vlab_addon, Init)

#include "modules.h"

namespace vlab {

void InitCryptodev(Napi::Env, Napi::Object) {}

}  // namespace vlab

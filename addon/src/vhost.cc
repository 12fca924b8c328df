#include "modules.h"

namespace vlab {

void InitVhost(Napi::Env, Napi::Object) {}

}  // namespace vlab

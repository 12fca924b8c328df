// How every part of the addon reports failure to JavaScript.
#ifndef VLAB_ADDON_JS_ERRORS_H
#define VLAB_ADDON_JS_ERRORS_H

#include <napi.h>

#include <string>

namespace vlab {

// Throws an Error for a failed syscall/ioctl: message "<syscall>: <strerror> (<ECODE>)" with the
// properties errno (number), code ("EINVAL") and syscall (the name passed here).
void ThrowErrnoError(Napi::Env env, int err, const char* syscall);

// Throws a TypeError (bad argument from JavaScript); the message names the argument.
void ThrowTypeError(Napi::Env env, const std::string& message);

}  // namespace vlab

#endif  // VLAB_ADDON_JS_ERRORS_H

// Each part of the addon registers its functions on the exports object.
#ifndef VLAB_ADDON_MODULES_H
#define VLAB_ADDON_MODULES_H

#include <napi.h>

namespace vlab {

// /dev/crypto (cryptodev-linux) ioctls: cryptodev.cc
void InitCryptodev(Napi::Env env, Napi::Object exports);

// vhost-user plumbing: fd passing, mmap, eventfd, fd polling: vhost.cc
void InitVhost(Napi::Env env, Napi::Object exports);

// OpenSSL EVP engine of the back-end: per-session contexts working on guest memory: evp_engine.cc
void InitEvpEngine(Napi::Env env, Napi::Object exports);

}  // namespace vlab

#endif  // VLAB_ADDON_MODULES_H

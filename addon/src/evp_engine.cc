// Native crypto engine for the TypeScript back-end: OpenSSL EVP with one context per session.
// A cipher session holds an encrypt and a decrypt EVP_CIPHER_CTX with the key schedule done once
// (AES's decrypt schedule differs from its encrypt one, so one context cannot serve both); each
// request only sets the IV (EVP_CipherInit_ex with key NULL) and runs over the caller's views,
// which on the data path are mapped guest memory: src is read and dst written in place, nothing is
// copied or allocated per request. A digest session holds an EVP_MD_CTX (plain hash) or an
// EVP_MAC_CTX (HMAC, key set once, re-initialised with a NULL key per request).
// Policy (algorithms, lengths against the request) lives in backend/crypto; this file re-checks
// what memory safety needs: argument types, src/dst lengths, IV length, block alignment.
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <time.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "js_errors.h"
#include "modules.h"

namespace vlab {
namespace {

// Tags that tell our externals apart from any other External handed back by JavaScript.
const napi_type_tag kCipherTag = {0x6a1c2f0e5b7d4c11ULL, 0x9e3a8b47d2c65f01ULL};
const napi_type_tag kDigestTag = {0x3f5d9a2b1c4e7a62ULL, 0x84b1c0d9e7f26a02ULL};

constexpr size_t kMaxDigest = EVP_MAX_MD_SIZE;
constexpr size_t kMaxKey = 512;

struct CipherState {
  EVP_CIPHER_CTX* enc = nullptr;
  EVP_CIPHER_CTX* dec = nullptr;
  int ivLen = 0;
  int blockSize = 1;
};

struct DigestState {
  EVP_MD* md = nullptr;
  EVP_MD_CTX* mdCtx = nullptr;  // plain hash
  EVP_MAC_CTX* macCtx = nullptr;  // HMAC
  size_t size = 0;
};

void FreeCipher(CipherState* s) {
  EVP_CIPHER_CTX_free(s->enc);  // cleanses the key schedule
  EVP_CIPHER_CTX_free(s->dec);
  s->enc = nullptr;
  s->dec = nullptr;
}

void FreeDigest(DigestState* s) {
  EVP_MAC_CTX_free(s->macCtx);  // cleanses the key
  EVP_MD_CTX_free(s->mdCtx);
  EVP_MD_free(s->md);
  s->macCtx = nullptr;
  s->mdCtx = nullptr;
  s->md = nullptr;
}

// Throws an Error naming the failed OpenSSL call and its reason; leaves the (thread-shared) error
// queue empty so node:crypto never sees our failures.
void ThrowOpenssl(Napi::Env env, const char* what) {
  unsigned long code = ERR_get_error();
  char reason[256] = "unknown error";
  if (code != 0) ERR_error_string_n(code, reason, sizeof(reason));
  ERR_clear_error();
  Napi::Error::New(env, std::string(what) + ": " + reason).ThrowAsJavaScriptException();
}

// A Uint8Array (or Buffer) argument; null/undefined allowed when `optional`.
bool GetBytes(const Napi::CallbackInfo& info, size_t i, const char* name, bool optional, uint8_t** data, size_t* len) {
  *data = nullptr;
  *len = 0;
  if (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined()) {
    if (optional) return true;
    ThrowTypeError(info.Env(), std::string(name) + " must be a Uint8Array");
    return false;
  }
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowTypeError(info.Env(), std::string(name) + " must be a Uint8Array");
    return false;
  }
  Napi::Uint8Array a = info[i].As<Napi::Uint8Array>();
  *data = a.Data();
  *len = a.ByteLength();
  return true;
}

bool GetString(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out) {
  if (info.Length() <= i || !info[i].IsString()) {
    ThrowTypeError(info.Env(), std::string(name) + " must be a string");
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  return true;
}

template <typename T>
T* GetState(const Napi::CallbackInfo& info, size_t i, const napi_type_tag& tag, const char* name) {
  if (info.Length() <= i || !info[i].IsExternal()) {
    ThrowTypeError(info.Env(), std::string(name) + " must be a handle from the matching create call");
    return nullptr;
  }
  Napi::External<T> ext = info[i].As<Napi::External<T>>();
  if (!ext.CheckTypeTag(&tag)) {
    ThrowTypeError(info.Env(), std::string(name) + " is a handle of another kind");
    return nullptr;
  }
  return ext.Data();
}

EVP_CIPHER_CTX* NewCipherCtx(const EVP_CIPHER* cipher, const uint8_t* key, int enc) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return nullptr;
  if (EVP_CipherInit_ex(ctx, cipher, nullptr, key, nullptr, enc) != 1 || EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

// evpCipherCreate(name, key) -> handle. The key is read once; only OpenSSL's schedule keeps it.
Napi::Value CipherCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  uint8_t* key;
  size_t keyLen;
  if (!GetString(info, 0, "name", &name) || !GetBytes(info, 1, "key", false, &key, &keyLen)) return env.Null();
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, name.c_str(), nullptr);
  if (cipher == nullptr) {
    ThrowOpenssl(env, ("EVP_CIPHER_fetch " + name).c_str());
    return env.Null();
  }
  if (static_cast<size_t>(EVP_CIPHER_get_key_length(cipher)) != keyLen) {
    EVP_CIPHER_free(cipher);
    ThrowTypeError(env, name + " needs a " + std::to_string(EVP_CIPHER_get_key_length(cipher)) + "-byte key");
    return env.Null();
  }
  auto* s = new CipherState();
  s->ivLen = EVP_CIPHER_get_iv_length(cipher);
  s->blockSize = EVP_CIPHER_get_block_size(cipher);
  s->enc = NewCipherCtx(cipher, key, 1);
  s->dec = s->enc != nullptr ? NewCipherCtx(cipher, key, 0) : nullptr;
  EVP_CIPHER_free(cipher);  // the contexts hold their own references
  if (s->dec == nullptr) {
    FreeCipher(s);
    delete s;
    ThrowOpenssl(env, ("EVP_CipherInit_ex " + name).c_str());
    return env.Null();
  }
  Napi::External<CipherState> ext = Napi::External<CipherState>::New(env, s, [](Napi::Env, CipherState* st) {
    FreeCipher(st);
    delete st;
  });
  ext.TypeTag(&kCipherTag);
  return ext;
}

// Runs one whole operation with the session's context: IV set, update, final. Returns false
// (OpenSSL error queue filled) on failure.
bool RunCipher(EVP_CIPHER_CTX* ctx, const uint8_t* iv, const uint8_t* src, uint8_t* dst, size_t len) {
  int out1 = 0;
  int out2 = 0;
  if (EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, iv, -1) != 1) return false;
  if (EVP_CipherUpdate(ctx, dst, &out1, src, static_cast<int>(len)) != 1) return false;
  if (EVP_CipherFinal_ex(ctx, dst + out1, &out2) != 1) return false;
  return static_cast<size_t>(out1) + static_cast<size_t>(out2) == len;
}

// The two per-request entry points below use the C N-API directly: one napi_get_typedarray_info
// per view and no wrapper objects, because on the data path the call itself is a measurable part
// of a 64-byte request (docs/backend.md, Benchmark).

// A Uint8Array argument; null/undefined gives (nullptr, 0) when `optional`. Throws TypeError otherwise.
bool RawBytes(napi_env env, napi_value v, bool optional, const char* name, uint8_t** data, size_t* len) {
  napi_typedarray_type type;
  size_t length = 0;
  void* ptr = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, nullptr, nullptr) == napi_ok && type == napi_uint8_array) {
    *data = static_cast<uint8_t*>(ptr);
    *len = length;
    return true;
  }
  napi_valuetype vt = napi_undefined;
  napi_typeof(env, v, &vt);
  if (optional && (vt == napi_null || vt == napi_undefined)) {
    *data = nullptr;
    *len = 0;
    return true;
  }
  napi_throw_type_error(env, nullptr, (std::string(name) + " must be a Uint8Array").c_str());
  return false;
}

template <typename T>
T* RawState(napi_env env, napi_value v, const napi_type_tag& tag) {
  bool tagged = false;
  void* data = nullptr;
  if (napi_check_object_type_tag(env, v, &tag, &tagged) != napi_ok || !tagged || napi_get_value_external(env, v, &data) != napi_ok) {
    napi_throw_type_error(env, nullptr, "handle must be a handle from the matching create call");
    return nullptr;
  }
  return static_cast<T*>(data);
}

// evpCipherRun(handle, encrypt, iv | null, src, dst): dst.length === src.length; may be the same memory.
napi_value CipherRun(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr) != napi_ok || argc < 5) {
    napi_throw_type_error(env, nullptr, "evpCipherRun(handle, encrypt, iv, src, dst)");
    return nullptr;
  }
  CipherState* s = RawState<CipherState>(env, argv[0], kCipherTag);
  if (s == nullptr) return nullptr;
  if (s->enc == nullptr) {
    napi_throw_error(env, nullptr, "cipher used after free");
    return nullptr;
  }
  bool encrypt = false;
  if (napi_get_value_bool(env, argv[1], &encrypt) != napi_ok) {
    napi_throw_type_error(env, nullptr, "encrypt must be a boolean");
    return nullptr;
  }
  uint8_t *iv, *src, *dst;
  size_t ivLen, srcLen, dstLen;
  if (!RawBytes(env, argv[2], true, "iv", &iv, &ivLen) || !RawBytes(env, argv[3], false, "src", &src, &srcLen) ||
      !RawBytes(env, argv[4], false, "dst", &dst, &dstLen)) {
    return nullptr;
  }
  if (srcLen != dstLen || srcLen > INT32_MAX) {
    napi_throw_type_error(env, nullptr, "dst must have src's length");
    return nullptr;
  }
  if (s->ivLen > 0 && (iv == nullptr || ivLen != static_cast<size_t>(s->ivLen))) {
    napi_throw_type_error(env, nullptr, ("iv must be " + std::to_string(s->ivLen) + " bytes").c_str());
    return nullptr;
  }
  if (s->blockSize > 1 && srcLen % static_cast<size_t>(s->blockSize) != 0) {
    napi_throw_type_error(env, nullptr, "input is not a whole number of blocks");
    return nullptr;
  }
  if (srcLen > 0 && !RunCipher(encrypt ? s->enc : s->dec, s->ivLen > 0 ? iv : nullptr, src, dst, srcLen)) {
    ThrowOpenssl(Napi::Env(env), "EVP_Cipher");
  }
  return nullptr;
}

// evpCipherFree(handle): the key schedule is cleansed now, not at garbage collection.
Napi::Value CipherFree(const Napi::CallbackInfo& info) {
  CipherState* s = GetState<CipherState>(info, 0, kCipherTag, "handle");
  if (s != nullptr) FreeCipher(s);
  return info.Env().Undefined();
}

// evpDigestCreate(name, key | null) -> handle: a plain hash without a key, an HMAC with one.
Napi::Value DigestCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  uint8_t* key;
  size_t keyLen;
  if (!GetString(info, 0, "name", &name) || !GetBytes(info, 1, "key", true, &key, &keyLen)) return env.Null();
  bool hmac = !(info[1].IsNull() || info[1].IsUndefined());
  if (keyLen > kMaxKey) {
    ThrowTypeError(env, "key longer than " + std::to_string(kMaxKey) + " bytes");
    return env.Null();
  }
  auto* s = new DigestState();
  s->md = EVP_MD_fetch(nullptr, name.c_str(), nullptr);
  bool ok = s->md != nullptr;
  if (ok) s->size = static_cast<size_t>(EVP_MD_get_size(s->md));
  if (ok && !hmac) {
    s->mdCtx = EVP_MD_CTX_new();
    ok = s->mdCtx != nullptr;
  } else if (ok) {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    s->macCtx = mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr;
    EVP_MAC_free(mac);
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(name.c_str()), 0), OSSL_PARAM_construct_end()};
    // A zero-length key still needs a non-NULL pointer (NULL means "keep the current key").
    static const uint8_t kEmpty = 0;
    ok = s->macCtx != nullptr && EVP_MAC_init(s->macCtx, keyLen > 0 ? key : &kEmpty, keyLen, params) == 1;
  }
  if (!ok) {
    FreeDigest(s);
    delete s;
    ThrowOpenssl(env, (std::string(hmac ? "HMAC " : "digest ") + name).c_str());
    return env.Null();
  }
  Napi::External<DigestState> ext = Napi::External<DigestState>::New(env, s, [](Napi::Env, DigestState* st) {
    FreeDigest(st);
    delete st;
  });
  ext.TypeTag(&kDigestTag);
  return ext;
}

// evpDigestRun(handle, out, ...parts): writes min(out.length, digest size) bytes of the digest of
// the parts' concatenation into out.
constexpr size_t kMaxDigestParts = 8;
napi_value DigestRun(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 2 + kMaxDigestParts;
  napi_value argv[2 + kMaxDigestParts];
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr) != napi_ok || argc < 2 || argc > 2 + kMaxDigestParts) {
    napi_throw_type_error(env, nullptr, "evpDigestRun(handle, out, ...parts): at most 8 parts");
    return nullptr;
  }
  DigestState* s = RawState<DigestState>(env, argv[0], kDigestTag);
  if (s == nullptr) return nullptr;
  if (s->mdCtx == nullptr && s->macCtx == nullptr) {
    napi_throw_error(env, nullptr, "digest used after free");
    return nullptr;
  }
  uint8_t* out;
  size_t outLen;
  if (!RawBytes(env, argv[1], false, "out", &out, &outLen)) return nullptr;
  bool ok = s->macCtx != nullptr ? EVP_MAC_init(s->macCtx, nullptr, 0, nullptr) == 1 : EVP_DigestInit_ex(s->mdCtx, s->md, nullptr) == 1;
  for (size_t i = 2; ok && i < argc; i++) {
    uint8_t* p;
    size_t n;
    if (!RawBytes(env, argv[i], false, "part", &p, &n)) return nullptr;
    if (n == 0) continue;
    ok = s->macCtx != nullptr ? EVP_MAC_update(s->macCtx, p, n) == 1 : EVP_DigestUpdate(s->mdCtx, p, n) == 1;
  }
  uint8_t md[kMaxDigest];
  size_t mdLen = 0;
  if (ok && s->macCtx != nullptr) {
    ok = EVP_MAC_final(s->macCtx, md, &mdLen, sizeof(md)) == 1;
  } else if (ok) {
    unsigned int n = 0;
    ok = EVP_DigestFinal_ex(s->mdCtx, md, &n) == 1;
    mdLen = n;
  }
  if (!ok) {
    ThrowOpenssl(Napi::Env(env), "digest");
    return nullptr;
  }
  std::memcpy(out, md, outLen < mdLen ? outLen : mdLen);
  OPENSSL_cleanse(md, sizeof(md));
  return nullptr;
}

Napi::Value DigestFree(const Napi::CallbackInfo& info) {
  DigestState* s = GetState<DigestState>(info, 0, kDigestTag, "handle");
  if (s != nullptr) FreeDigest(s);
  return info.Env().Undefined();
}

double NowSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// evpCipherLoop(handle, encrypt, iv | null, buf, iterations) -> seconds: the host limit for the
// benchmark — the same context reuse as CipherRun, in place on the same buffer, no JS in between.
Napi::Value CipherLoop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CipherState* s = GetState<CipherState>(info, 0, kCipherTag, "handle");
  if (s == nullptr) return env.Null();
  bool encrypt = info.Length() > 1 && info[1].ToBoolean().Value();
  uint8_t *iv, *buf;
  size_t ivLen, len;
  if (!GetBytes(info, 2, "iv", true, &iv, &ivLen) || !GetBytes(info, 3, "buf", false, &buf, &len)) return env.Null();
  if (s->enc == nullptr || (s->ivLen > 0 && ivLen != static_cast<size_t>(s->ivLen)) || len > INT32_MAX ||
      (s->blockSize > 1 && len % static_cast<size_t>(s->blockSize) != 0) || info.Length() < 5 || !info[4].IsNumber()) {
    ThrowTypeError(env, "evpCipherLoop: bad arguments");
    return env.Null();
  }
  int64_t n = info[4].As<Napi::Number>().Int64Value();
  double t0 = NowSeconds();
  for (int64_t k = 0; k < n; k++) {
    if (!RunCipher(encrypt ? s->enc : s->dec, s->ivLen > 0 ? iv : nullptr, buf, buf, len)) {
      ThrowOpenssl(env, "EVP_Cipher");
      return env.Null();
    }
  }
  return Napi::Number::New(env, NowSeconds() - t0);
}

// evpDigestLoop(handle, buf, iterations) -> seconds: the raw digest/HMAC loop of the benchmark.
Napi::Value DigestLoop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DigestState* s = GetState<DigestState>(info, 0, kDigestTag, "handle");
  if (s == nullptr) return env.Null();
  uint8_t* buf;
  size_t len;
  if (!GetBytes(info, 1, "buf", false, &buf, &len)) return env.Null();
  if ((s->mdCtx == nullptr && s->macCtx == nullptr) || info.Length() < 3 || !info[2].IsNumber()) {
    ThrowTypeError(env, "evpDigestLoop: bad arguments");
    return env.Null();
  }
  int64_t n = info[2].As<Napi::Number>().Int64Value();
  uint8_t md[kMaxDigest];
  double t0 = NowSeconds();
  for (int64_t k = 0; k < n; k++) {
    bool ok;
    size_t mdLen = 0;
    unsigned int u = 0;
    if (s->macCtx != nullptr) {
      ok = EVP_MAC_init(s->macCtx, nullptr, 0, nullptr) == 1 && EVP_MAC_update(s->macCtx, buf, len) == 1 &&
           EVP_MAC_final(s->macCtx, md, &mdLen, sizeof(md)) == 1;
    } else {
      ok = EVP_DigestInit_ex(s->mdCtx, s->md, nullptr) == 1 && EVP_DigestUpdate(s->mdCtx, buf, len) == 1 &&
           EVP_DigestFinal_ex(s->mdCtx, md, &u) == 1;
    }
    if (!ok) {
      ThrowOpenssl(env, "digest");
      return env.Null();
    }
  }
  return Napi::Number::New(env, NowSeconds() - t0);
}

Napi::Value RawFunction(Napi::Env env, const char* name, napi_callback cb) {
  napi_value fn = nullptr;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn);
  return Napi::Value(env, fn);
}

}  // namespace

void InitEvpEngine(Napi::Env env, Napi::Object exports) {
  exports.Set("evpCipherCreate", Napi::Function::New(env, CipherCreate, "evpCipherCreate"));
  exports.Set("evpCipherRun", RawFunction(env, "evpCipherRun", CipherRun));
  exports.Set("evpCipherFree", Napi::Function::New(env, CipherFree, "evpCipherFree"));
  exports.Set("evpCipherLoop", Napi::Function::New(env, CipherLoop, "evpCipherLoop"));
  exports.Set("evpDigestCreate", Napi::Function::New(env, DigestCreate, "evpDigestCreate"));
  exports.Set("evpDigestRun", RawFunction(env, "evpDigestRun", DigestRun));
  exports.Set("evpDigestFree", Napi::Function::New(env, DigestFree, "evpDigestFree"));
  exports.Set("evpDigestLoop", Napi::Function::New(env, DigestLoop, "evpDigestLoop"));
}

}  // namespace vlab

// Thin binding for the cryptodev-linux /dev/crypto ioctls. Policy (which algorithm, key sizes,
// buffer shapes) is validated in addon/lib/cryptodev.ts; this file re-checks only what memory
// safety needs (types, buffer lengths the kernel will read or write) and reports every failed
// syscall as an Error carrying errno, code and the ioctl's name.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "cryptodev_abi.h"
#include "js_errors.h"
#include "modules.h"

namespace vlab {
namespace {

namespace abi = cryptodev_abi;

// The kernel copies at most one cipher block of IV and at most AALG_MAX_RESULT_LEN of MAC.
constexpr size_t kIvBytes = 16;
constexpr size_t kMacBufferMin = 64;
// COP_FLAG_WRITE_IV: the kernel writes the chaining IV back into cop.iv.
constexpr uint16_t kCopFlagWriteIv = 4;

bool CheckArgCount(const Napi::CallbackInfo& info, size_t n, const char* fn) {
  if (info.Length() < n) {
    ThrowTypeError(info.Env(), std::string(fn) + ": expected " + std::to_string(n) + " arguments");
    return false;
  }
  return true;
}

// Reads a non-negative 32-bit integer argument; throws TypeError naming it otherwise.
bool GetU32(const Napi::CallbackInfo& info, size_t i, const char* what, uint32_t* out) {
  if (!info[i].IsNumber()) {
    ThrowTypeError(info.Env(), std::string(what) + " must be a number");
    return false;
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= 4294967295.0) || v != static_cast<double>(static_cast<uint64_t>(v))) {
    ThrowTypeError(info.Env(), std::string(what) + " must be an unsigned 32-bit integer");
    return false;
  }
  *out = static_cast<uint32_t>(v);
  return true;
}

bool GetFd(const Napi::CallbackInfo& info, size_t i, int* fd) {
  uint32_t v = 0;
  if (!GetU32(info, i, "fd", &v)) return false;
  if (v > static_cast<uint32_t>(INT_MAX)) {
    ThrowTypeError(info.Env(), "fd out of range");
    return false;
  }
  *fd = static_cast<int>(v);
  return true;
}

// Optional Buffer: null/undefined yields an empty span.
bool GetOptionalBuffer(const Napi::CallbackInfo& info, size_t i, const char* what, uint8_t** data, size_t* len) {
  *data = nullptr;
  *len = 0;
  if (info[i].IsNull() || info[i].IsUndefined()) return true;
  if (!info[i].IsBuffer()) {
    ThrowTypeError(info.Env(), std::string(what) + " must be a Buffer or null");
    return false;
  }
  auto buf = info[i].As<Napi::Buffer<uint8_t>>();
  *data = buf.Data();
  *len = buf.Length();
  return true;
}

int IoctlRetry(int fd, unsigned long request, void* arg) {
  int rc;
  do {
    rc = ioctl(fd, request, arg);
  } while (rc < 0 && errno == EINTR);
  return rc;
}

// cryptodevOpen(path: string): number
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArgCount(info, 1, "cryptodevOpen")) return env.Undefined();
  if (!info[0].IsString()) {
    ThrowTypeError(env, "path must be a string");
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd;
  do {
    fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    ThrowErrnoError(env, errno, "open");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// cryptodevClone(fd): number — CRIOGET hands back a second descriptor on the same device.
Napi::Value Clone(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!CheckArgCount(info, 1, "cryptodevClone") || !GetFd(info, 0, &fd)) return env.Undefined();
  uint32_t cloned = 0;
  if (IoctlRetry(fd, abi::kCrioGet, &cloned) < 0) {
    ThrowErrnoError(env, errno, "CRIOGET");
    return env.Undefined();
  }
  // cryptodev-linux returns the new fd without FD_CLOEXEC; match open()'s O_CLOEXEC.
  if (fcntl(static_cast<int>(cloned), F_SETFD, FD_CLOEXEC) < 0) {
    int err = errno;
    close(static_cast<int>(cloned));
    ThrowErrnoError(env, err, "fcntl");
    return env.Undefined();
  }
  return Napi::Number::New(env, cloned);
}

// cryptodevClose(fd): undefined
Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!CheckArgCount(info, 1, "cryptodevClose") || !GetFd(info, 0, &fd)) return env.Undefined();
  // Linux releases the descriptor even when close() reports EINTR, so never retry it.
  if (close(fd) < 0 && errno != EINTR) ThrowErrnoError(env, errno, "close");
  return env.Undefined();
}

// cryptodevCreateSession(fd, cipher, key|null, mac, macKey|null): number (session id)
Napi::Value CreateSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  abi::SessionOp op{};
  size_t keylen = 0;
  size_t mackeylen = 0;
  if (!CheckArgCount(info, 5, "cryptodevCreateSession") || !GetFd(info, 0, &fd) ||
      !GetU32(info, 1, "cipher", &op.cipher) || !GetOptionalBuffer(info, 2, "key", &op.key, &keylen) ||
      !GetU32(info, 3, "mac", &op.mac) || !GetOptionalBuffer(info, 4, "macKey", &op.mackey, &mackeylen)) {
    return env.Undefined();
  }
  if (keylen > UINT32_MAX || mackeylen > UINT32_MAX) {
    ThrowTypeError(env, "key too long");
    return env.Undefined();
  }
  op.keylen = static_cast<uint32_t>(keylen);
  op.mackeylen = static_cast<uint32_t>(mackeylen);
  if (IoctlRetry(fd, abi::kCiocGSession, &op) < 0) {
    ThrowErrnoError(env, errno, "CIOCGSESSION");
    return env.Undefined();
  }
  return Napi::Number::New(env, op.ses);
}

// cryptodevFreeSession(fd, ses): undefined
Napi::Value FreeSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  uint32_t ses = 0;
  if (!CheckArgCount(info, 2, "cryptodevFreeSession") || !GetFd(info, 0, &fd) || !GetU32(info, 1, "session", &ses)) {
    return env.Undefined();
  }
  if (IoctlRetry(fd, abi::kCiocFSession, &ses) < 0) ThrowErrnoError(env, errno, "CIOCFSESSION");
  return env.Undefined();
}

// Parsed, checked arguments of a CIOCCRYPT call.
struct CryptArgs {
  int fd = -1;
  abi::CryptOp cop{};
};

// (fd, ses, op, flags, src, dst|null, iv|null, mac|null). dst must hold src.length bytes; iv, when
// given, is exactly one 16-byte block (written back with COP_FLAG_WRITE_IV); mac, when given, must
// have room for the largest digest the kernel may write.
bool ParseCryptArgs(const Napi::CallbackInfo& info, const char* fn, CryptArgs* out) {
  Napi::Env env = info.Env();
  uint32_t ses = 0, op = 0, flags = 0;
  uint8_t *dst = nullptr, *iv = nullptr, *mac = nullptr;
  size_t dstLen = 0, ivLen = 0, macLen = 0;
  if (!CheckArgCount(info, 8, fn) || !GetFd(info, 0, &out->fd) || !GetU32(info, 1, "session", &ses) ||
      !GetU32(info, 2, "op", &op) || !GetU32(info, 3, "flags", &flags)) {
    return false;
  }
  if (!info[4].IsBuffer()) {
    ThrowTypeError(env, "src must be a Buffer");
    return false;
  }
  auto srcBuf = info[4].As<Napi::Buffer<uint8_t>>();
  size_t srcLen = srcBuf.Length();
  if (!GetOptionalBuffer(info, 5, "dst", &dst, &dstLen) || !GetOptionalBuffer(info, 6, "iv", &iv, &ivLen) ||
      !GetOptionalBuffer(info, 7, "mac", &mac, &macLen)) {
    return false;
  }
  if (op > 1 || flags > 0xffff) {
    ThrowTypeError(env, "op must be 0 (encrypt) or 1 (decrypt) and flags a 16-bit value");
    return false;
  }
  if (srcLen > UINT32_MAX) {
    ThrowTypeError(env, "src too long");
    return false;
  }
  if (dst != nullptr && dstLen < srcLen) {
    ThrowTypeError(env, "dst is shorter than src");
    return false;
  }
  if (iv != nullptr && ivLen != kIvBytes) {
    ThrowTypeError(env, "iv must be 16 bytes");
    return false;
  }
  if (mac != nullptr && macLen < kMacBufferMin) {
    ThrowTypeError(env, "mac buffer must be at least 64 bytes");
    return false;
  }
  out->cop.ses = ses;
  out->cop.op = static_cast<uint16_t>(op);
  out->cop.flags = static_cast<uint16_t>(flags);
  out->cop.len = static_cast<uint32_t>(srcLen);
  out->cop.src = srcBuf.Data();
  out->cop.dst = dst;
  out->cop.iv = iv;
  out->cop.mac = mac;
  return true;
}

// cryptodevCrypt(fd, ses, op, flags, src, dst|null, iv|null, mac|null): undefined — on the JS thread.
Napi::Value Crypt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CryptArgs args;
  if (!ParseCryptArgs(info, "cryptodevCrypt", &args)) return env.Undefined();
  if (IoctlRetry(args.fd, abi::kCiocCrypt, &args.cop) < 0) ThrowErrnoError(env, errno, "CIOCCRYPT");
  return env.Undefined();
}

// Runs one CIOCCRYPT on a libuv worker thread. A reference keeps a JS object alive, not its memory:
// an ArrayBuffer can be detached (transferred with structuredClone/postMessage) while the worker
// runs, and its memory freed. So the kernel never sees JS memory here: src (and iv) are copied into
// buffers the worker owns when the call is made, the kernel writes into owned buffers, and the
// results are copied into dst/iv/mac on the JS thread at completion — after checking that each is
// still attached and as long as before; if one is not, the promise rejects and nothing is written.
class CryptWorker : public Napi::AsyncWorker {
 public:
  CryptWorker(Napi::Env env, const CryptArgs& args, const Napi::CallbackInfo& info)
      : Napi::AsyncWorker(env, "cryptodevCryptAsync"), args_(args), deferred_(Napi::Promise::Deferred::New(env)) {
    size_t len = args.cop.len;
    in_.assign(args.cop.src, args.cop.src + len);
    args_.cop.src = in_.data();
    if (args.cop.dst != nullptr) {
      out_.resize(len);
      args_.cop.dst = out_.data();
      dst_ = Napi::Persistent(info[5].As<Napi::Uint8Array>());
    }
    if (args.cop.iv != nullptr) {
      iv_.assign(args.cop.iv, args.cop.iv + kIvBytes);
      args_.cop.iv = iv_.data();
      if ((args.cop.flags & kCopFlagWriteIv) != 0) ivRef_ = Napi::Persistent(info[6].As<Napi::Uint8Array>());
    }
    if (args.cop.mac != nullptr) {
      size_t macLen = info[7].As<Napi::Uint8Array>().ByteLength();
      mac_.assign(args.cop.mac, args.cop.mac + macLen);
      args_.cop.mac = mac_.data();
      macRef_ = Napi::Persistent(info[7].As<Napi::Uint8Array>());
    }
  }

  ~CryptWorker() override {
    // Plaintext and ciphertext copies do not outlive the operation.
    for (auto* v : {&in_, &out_, &iv_, &mac_}) {
      if (!v->empty()) explicit_bzero(v->data(), v->size());
    }
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    if (IoctlRetry(args_.fd, abi::kCiocCrypt, &args_.cop) < 0) err_ = errno;
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) {
      const char* name = strerrorname_np(err_);
      std::string code = name != nullptr ? name : "E" + std::to_string(err_);
      Napi::Error error = Napi::Error::New(env, std::string("CIOCCRYPT: ") + std::strerror(err_) + " (" + code + ")");
      error.Set("errno", Napi::Number::New(env, err_));
      error.Set("code", Napi::String::New(env, code));
      error.Set("syscall", Napi::String::New(env, "CIOCCRYPT"));
      deferred_.Reject(error.Value());
      return;
    }
    // Check every target before writing any, so a rejection leaves all of them untouched.
    const char* lost = nullptr;
    if (!dst_.IsEmpty() && dst_.Value().ByteLength() < out_.size()) lost = "dst";
    if (!ivRef_.IsEmpty() && ivRef_.Value().ByteLength() < iv_.size()) lost = "iv";
    if (!macRef_.IsEmpty() && macRef_.Value().ByteLength() < mac_.size()) lost = "mac";
    if (lost != nullptr) {
      Napi::Error error = Napi::Error::New(env, std::string("CIOCCRYPT: ") + lost +
                                                    " was detached while the operation ran; the result is discarded");
      error.Set("code", Napi::String::New(env, "ERR_CRYPTODEV_BUFFER_DETACHED"));
      error.Set("syscall", Napi::String::New(env, "CIOCCRYPT"));
      deferred_.Reject(error.Value());
      return;
    }
    if (!dst_.IsEmpty()) std::memcpy(dst_.Value().Data(), out_.data(), out_.size());
    if (!ivRef_.IsEmpty()) std::memcpy(ivRef_.Value().Data(), iv_.data(), iv_.size());
    if (!macRef_.IsEmpty()) std::memcpy(macRef_.Value().Data(), mac_.data(), mac_.size());
    deferred_.Resolve(env.Undefined());
  }

 private:
  CryptArgs args_;
  int err_ = 0;
  Napi::Promise::Deferred deferred_;
  std::vector<uint8_t> in_, out_, iv_, mac_;
  Napi::Reference<Napi::Uint8Array> dst_, ivRef_, macRef_;
};

// cryptodevCryptAsync(same arguments as cryptodevCrypt): Promise<undefined> — off the JS thread.
Napi::Value CryptAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CryptArgs args;
  if (!ParseCryptArgs(info, "cryptodevCryptAsync", &args)) return env.Undefined();
  auto* worker = new CryptWorker(env, args, info);  // owned by libuv; deletes itself after OnOK
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// cryptodevSessionInfo(fd, ses): { cipherName, cipherDriver, hashName, hashDriver, alignmask, flags }
Napi::Value SessionInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  abi::SessionInfoOp op{};
  if (!CheckArgCount(info, 2, "cryptodevSessionInfo") || !GetFd(info, 0, &fd) || !GetU32(info, 1, "session", &op.ses)) {
    return env.Undefined();
  }
  if (IoctlRetry(fd, abi::kCiocGSessInfo, &op) < 0) {
    ThrowErrnoError(env, errno, "CIOCGSESSINFO");
    return env.Undefined();
  }
  // The kernel NUL-terminates, but a hostile or buggy driver must not make us read past the field.
  auto field = [&](const char* s) { return Napi::String::New(env, std::string(s, strnlen(s, abi::kAlgNameMax))); };
  Napi::Object out = Napi::Object::New(env);
  out.Set("cipherName", field(op.cipher_info.cra_name));
  out.Set("cipherDriver", field(op.cipher_info.cra_driver_name));
  out.Set("hashName", field(op.hash_info.cra_name));
  out.Set("hashDriver", field(op.hash_info.cra_driver_name));
  out.Set("alignmask", Napi::Number::New(env, op.alignmask));
  out.Set("flags", Napi::Number::New(env, op.flags));
  return out;
}

}  // namespace

void InitCryptodev(Napi::Env env, Napi::Object exports) {
  exports.Set("cryptodevOpen", Napi::Function::New(env, Open, "cryptodevOpen"));
  exports.Set("cryptodevClone", Napi::Function::New(env, Clone, "cryptodevClone"));
  exports.Set("cryptodevClose", Napi::Function::New(env, Close, "cryptodevClose"));
  exports.Set("cryptodevCreateSession", Napi::Function::New(env, CreateSession, "cryptodevCreateSession"));
  exports.Set("cryptodevFreeSession", Napi::Function::New(env, FreeSession, "cryptodevFreeSession"));
  exports.Set("cryptodevCrypt", Napi::Function::New(env, Crypt, "cryptodevCrypt"));
  exports.Set("cryptodevCryptAsync", Napi::Function::New(env, CryptAsync, "cryptodevCryptAsync"));
  exports.Set("cryptodevSessionInfo", Napi::Function::New(env, SessionInfo, "cryptodevSessionInfo"));
}

}  // namespace vlab

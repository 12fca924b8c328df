// Thin binding for the vhost-user plumbing the TypeScript backend (and its test frontend) needs:
// unix sockets with SCM_RIGHTS fd passing, shared-memory mappings exposed as external
// ArrayBuffers, eventfds, memfds and fd readiness through libuv so callbacks run on the JS thread.
// Protocol policy lives in backend/; this file checks only argument types and syscall results.
// Every fd it creates is O_CLOEXEC|O_NONBLOCK, every error carries errno, code and syscall.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "js_errors.h"
#include "modules.h"

namespace vlab {
namespace {

// vhost-user never passes more than 8 fds with one message (VHOST_MEMORY_BASELINE_NREGIONS).
constexpr size_t kMaxFdsPerMessage = 16;
// A single read is capped: the protocol layer asks for exact lengths far below this.
constexpr uint32_t kMaxReadBytes = 1 << 20;
// Mappings are guest RAM regions: cap them so a typo cannot reserve absurd address space.
constexpr double kMaxMapBytes = 64.0 * 1024 * 1024 * 1024;

// Argument readers: each throws a TypeError naming the argument and returns false on mismatch.
bool ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name, double min, double max, int64_t* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    ThrowTypeError(info.Env(), std::string(name) + " must be a number");
    return false;
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= min && v <= max) || v != static_cast<double>(static_cast<int64_t>(v))) {
    ThrowTypeError(info.Env(), std::string(name) + " must be an integer in [" + std::to_string(static_cast<int64_t>(min)) +
                                   ", " + std::to_string(static_cast<int64_t>(max)) + "]");
    return false;
  }
  *out = static_cast<int64_t>(v);
  return true;
}

bool ArgFd(const Napi::CallbackInfo& info, size_t i, const char* name, int* fd) {
  int64_t v = 0;
  if (!ArgInt(info, i, name, 0, INT32_MAX, &v)) return false;
  *fd = static_cast<int>(v);
  return true;
}

bool ArgString(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out) {
  if (info.Length() <= i || !info[i].IsString()) {
    ThrowTypeError(info.Env(), std::string(name) + " must be a string");
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  return true;
}

bool FillUnixAddress(Napi::Env env, const std::string& path, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr->sun_path)) {
    ThrowTypeError(env, "path must be 1.." + std::to_string(sizeof(addr->sun_path) - 1) + " bytes");
    return false;
  }
  std::memcpy(addr->sun_path, path.data(), path.size());
  return true;
}

// listenUnix(path, backlog) -> fd, the socket file mode 0600 from its creation. The caller removes
// a stale socket file first.
Napi::Value ListenUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  int64_t backlog = 0;
  if (!ArgString(info, 0, "path", &path) || !ArgInt(info, 1, "backlog", 1, 128, &backlog)) return env.Undefined();
  sockaddr_un addr;
  if (!FillUnixAddress(env, path, &addr)) return env.Undefined();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    ThrowErrnoError(env, errno, "socket");
    return env.Undefined();
  }
  // The socket file is created by bind() with the socket inode's mode & ~umask: set the inode to
  // 0600 first, so the file is never connectable by another uid, whatever the process umask
  // (no window between bind and a later chmod).
  if (fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
    int err = errno;
    close(fd);
    ThrowErrnoError(env, err, "fchmod");
    return env.Undefined();
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    ThrowErrnoError(env, err, "bind");
    return env.Undefined();
  }
  if (listen(fd, static_cast<int>(backlog)) != 0) {
    int err = errno;
    close(fd);
    ThrowErrnoError(env, err, "listen");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// connectUnix(path) -> fd (non-blocking once connected; unix connect completes at once).
Napi::Value ConnectUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!ArgString(info, 0, "path", &path)) return env.Undefined();
  sockaddr_un addr;
  if (!FillUnixAddress(env, path, &addr)) return env.Undefined();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowErrnoError(env, errno, "socket");
    return env.Undefined();
  }
  int rc;
  do {
    rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    close(fd);
    ThrowErrnoError(env, err, "connect");
    return env.Undefined();
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    int err = errno;
    close(fd);
    ThrowErrnoError(env, err, "fcntl");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// accept(listenFd) -> fd, or null when no connection is pending.
Napi::Value Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ArgFd(info, 0, "listenFd", &fd)) return env.Undefined();
  int conn;
  do {
    conn = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  } while (conn < 0 && errno == EINTR);
  if (conn < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    ThrowErrnoError(env, errno, "accept4");
    return env.Undefined();
  }
  return Napi::Number::New(env, conn);
}

// peerCred(fd) -> { pid, uid, gid } of a connected unix socket's peer (SO_PEERCRED: as of connect()).
Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ArgFd(info, 0, "fd", &fd)) return env.Undefined();
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    ThrowErrnoError(env, errno, "getsockopt(SO_PEERCRED)");
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, cred.pid));
  out.Set("uid", Napi::Number::New(env, cred.uid));
  out.Set("gid", Napi::Number::New(env, cred.gid));
  return out;
}

// Zeroes a byte vector when the scope ends (explicit_bzero: not optimised away).
class WipeOnExit {
 public:
  explicit WipeOnExit(std::vector<uint8_t>& v) : v_(v) {}
  ~WipeOnExit() { explicit_bzero(v_.data(), v_.size()); }
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;

 private:
  std::vector<uint8_t>& v_;
};

// recvMsg(fd, maxBytes, maxFds) -> { bytes: Buffer, fds: number[], truncatedFds: boolean } or null
// on EAGAIN. bytes.length === 0 means the peer closed. Received fds are O_CLOEXEC; if the kernel
// truncated the control data the fds that did arrive are still returned so the caller closes them.
Napi::Value RecvMsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  int64_t maxBytes = 0, maxFds = 0;
  if (!ArgFd(info, 0, "fd", &fd) || !ArgInt(info, 1, "maxBytes", 1, kMaxReadBytes, &maxBytes) ||
      !ArgInt(info, 2, "maxFds", 0, kMaxFdsPerMessage, &maxFds)) {
    return env.Undefined();
  }
  std::vector<uint8_t> data(static_cast<size_t>(maxBytes));
  // The staging copy may hold session keys (CREATE_CRYPTO_SESSION): wiped on every return path
  // before the vector frees it. The Buffer handed to JavaScript is the caller's to wipe.
  WipeOnExit wipe(data);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  iovec iov{data.data(), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (maxFds > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * static_cast<size_t>(maxFds));
  }
  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    ThrowErrnoError(env, errno, "recvmsg");
    return env.Undefined();
  }
  Napi::Array fds = Napi::Array::New(env);
  uint32_t count = 0;
  for (cmsghdr* c = msg.msg_controllen > 0 ? CMSG_FIRSTHDR(&msg) : nullptr; c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t bytes = c->cmsg_len - CMSG_LEN(0);
    for (size_t k = 0; k + sizeof(int) <= bytes; k += sizeof(int)) {
      int received;
      std::memcpy(&received, CMSG_DATA(c) + k, sizeof(int));
      fds.Set(count++, Napi::Number::New(env, received));
    }
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("bytes", Napi::Buffer<uint8_t>::Copy(env, data.data(), static_cast<size_t>(n)));
  result.Set("fds", fds);
  result.Set("truncatedFds", Napi::Boolean::New(env, (msg.msg_flags & MSG_CTRUNC) != 0));
  return result;
}

// sendMsg(fd, bytes: Uint8Array, fds: number[]) -> bytes sent (may be short; the caller checks).
Napi::Value SendMsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ArgFd(info, 0, "fd", &fd)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowTypeError(env, "bytes must be a Uint8Array");
    return env.Undefined();
  }
  if (info.Length() < 3 || !info[2].IsArray()) {
    ThrowTypeError(env, "fds must be an array of fds");
    return env.Undefined();
  }
  Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
  Napi::Array fdArray = info[2].As<Napi::Array>();
  if (fdArray.Length() > kMaxFdsPerMessage) {
    ThrowTypeError(env, "fds must hold at most " + std::to_string(kMaxFdsPerMessage) + " fds");
    return env.Undefined();
  }
  std::vector<int> fds;
  for (uint32_t k = 0; k < fdArray.Length(); k++) {
    Napi::Value v = fdArray.Get(k);
    if (!v.IsNumber() || v.As<Napi::Number>().Int32Value() < 0) {
      ThrowTypeError(env, "fds[" + std::to_string(k) + "] must be a non-negative fd");
      return env.Undefined();
    }
    fds.push_back(v.As<Napi::Number>().Int32Value());
  }
  iovec iov{bytes.Data(), bytes.ByteLength()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  if (!fds.empty()) {
    std::memset(control, 0, sizeof(control));
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    ThrowErrnoError(env, errno, "sendmsg");
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// ---- shared memory -------------------------------------------------------------------------

struct Mapping {
  void* base;      // what mmap returned (page aligned)
  size_t length;   // what was mapped
  bool mapped;
};

// Live mappings by the data pointer handed to JS, so munmap(ArrayBuffer) can find them. The
// finalizer compares before erasing because the same address may be reused after an unmap.
std::mutex gMappingsLock;
std::unordered_map<void*, Mapping*> gMappings;

void FinalizeMapping(napi_env, void* data, void* hint) {
  Mapping* m = static_cast<Mapping*>(hint);
  {
    std::lock_guard<std::mutex> guard(gMappingsLock);
    auto it = gMappings.find(data);
    if (it != gMappings.end() && it->second == m) gMappings.erase(it);
  }
  if (m->mapped) munmap(m->base, m->length);
  delete m;
}

// mmap(fd, offset, length, writable) -> ArrayBuffer over a MAP_SHARED mapping of [offset, +length).
// offset need not be page aligned: the mapping starts at the page below and the buffer skips the gap.
Napi::Value Mmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  int64_t offset = 0, length = 0;
  if (!ArgFd(info, 0, "fd", &fd) || !ArgInt(info, 1, "offset", 0, 9007199254740991.0, &offset) ||
      !ArgInt(info, 2, "length", 1, kMaxMapBytes, &length)) {
    return env.Undefined();
  }
  if (info.Length() < 4 || !info[3].IsBoolean()) {
    ThrowTypeError(env, "writable must be a boolean");
    return env.Undefined();
  }
  bool writable = info[3].As<Napi::Boolean>().Value();
  // Touching a shared mapping past the end of its file is SIGBUS, not an error code: refuse a
  // region the file does not cover (memfds are regular files; devices have no meaningful size).
  struct stat fileInfo;
  if (fstat(fd, &fileInfo) != 0) {
    ThrowErrnoError(env, errno, "fstat");
    return env.Undefined();
  }
  if (S_ISREG(fileInfo.st_mode) && offset + length > static_cast<int64_t>(fileInfo.st_size)) {
    ThrowErrnoError(env, EINVAL, "mmap (region extends past the end of the file)");
    return env.Undefined();
  }
  long page = sysconf(_SC_PAGESIZE);
  if (page <= 0) page = 4096;
  int64_t aligned = offset - (offset % page);
  size_t gap = static_cast<size_t>(offset - aligned);
  size_t total = static_cast<size_t>(length) + gap;
  void* base = mmap(nullptr, total, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, static_cast<off_t>(aligned));
  if (base == MAP_FAILED) {
    ThrowErrnoError(env, errno, "mmap");
    return env.Undefined();
  }
  Mapping* m = new Mapping{base, total, true};
  void* data = static_cast<uint8_t*>(base) + gap;
  napi_value ab;
  napi_status st = napi_create_external_arraybuffer(env, data, static_cast<size_t>(length), FinalizeMapping, m, &ab);
  if (st != napi_ok) {
    munmap(base, total);
    delete m;
    Napi::Error::New(env, "napi_create_external_arraybuffer failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  {
    std::lock_guard<std::mutex> guard(gMappingsLock);
    gMappings[data] = m;
  }
  return Napi::Value(env, ab);
}

// munmap(buffer) -> unmaps now and detaches the buffer (later access sees length 0, not a fault).
// Returns false if the buffer is not a live mapping made by mmap().
Napi::Value Munmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) {
    ThrowTypeError(env, "buffer must be an ArrayBuffer returned by mmap()");
    return env.Undefined();
  }
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  void* data = ab.Data();
  Mapping* m = nullptr;
  {
    std::lock_guard<std::mutex> guard(gMappingsLock);
    auto it = gMappings.find(data);
    if (it == gMappings.end()) return Napi::Boolean::New(env, false);
    m = it->second;
    gMappings.erase(it);
  }
  // Unmap before detaching: if detaching runs the finalizer it must see mapped == false, and m
  // must not be touched afterwards because that finalizer deletes it.
  m->mapped = false;
  if (munmap(m->base, m->length) != 0) {
    ThrowErrnoError(env, errno, "munmap");
    return env.Undefined();
  }
  if (napi_detach_arraybuffer(env, ab) != napi_ok) {
    Napi::Error::New(env, "napi_detach_arraybuffer failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

// memfdCreate(name, size, seal) -> fd of an anonymous shared file of that size (test guest memory).
// With seal, the size is fixed by F_SEAL_SHRINK | F_SEAL_GROW, as QEMU's memory-backend-memfd does.
Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  int64_t size = 0;
  if (!ArgString(info, 0, "name", &name) || !ArgInt(info, 1, "size", 0, kMaxMapBytes, &size)) return env.Undefined();
  if (info.Length() < 3 || !info[2].IsBoolean()) {
    ThrowTypeError(env, "seal must be a boolean");
    return env.Undefined();
  }
  bool seal = info[2].As<Napi::Boolean>().Value();
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    ThrowErrnoError(env, errno, "memfd_create");
    return env.Undefined();
  }
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int err = errno;
    close(fd);
    ThrowErrnoError(env, err, "ftruncate");
    return env.Undefined();
  }
  if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
    int err = errno;
    close(fd);
    ThrowErrnoError(env, err, "fcntl(F_ADD_SEALS)");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// fdStatus(fd) -> { mode, size, nonBlocking, seals, target }: what the back-end's policy needs to
// judge an fd a front-end sent. seals is null for files that cannot carry seals (not shmem/memfd);
// target is readlink(/proc/self/fd/N), e.g. "anon_inode:[eventfd]".
Napi::Value FdStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ArgFd(info, 0, "fd", &fd)) return env.Undefined();
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ThrowErrnoError(env, errno, "fstat");
    return env.Undefined();
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) {
    ThrowErrnoError(env, errno, "fcntl(F_GETFL)");
    return env.Undefined();
  }
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 && errno != EINVAL) {
    ThrowErrnoError(env, errno, "fcntl(F_GET_SEALS)");
    return env.Undefined();
  }
  char target[256];
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
  if (n < 0) {
    ThrowErrnoError(env, errno, "readlink");
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("mode", Napi::Number::New(env, st.st_mode));
  out.Set("size", Napi::Number::New(env, static_cast<double>(st.st_size)));
  out.Set("nonBlocking", Napi::Boolean::New(env, (flags & O_NONBLOCK) != 0));
  out.Set("seals", seals < 0 ? env.Null() : Napi::Number::New(env, seals));
  out.Set("target", Napi::String::New(env, std::string(target, static_cast<size_t>(n))));
  return out;
}

// ---- eventfd ---------------------------------------------------------------------------------

Napi::Value EventfdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t initial = 0;
  if (!ArgInt(info, 0, "initial", 0, UINT32_MAX, &initial)) return env.Undefined();
  int fd = eventfd(static_cast<unsigned>(initial), EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) {
    ThrowErrnoError(env, errno, "eventfd");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// eventfdRead(fd) -> counter value (0 when nothing was signalled).
Napi::Value EventfdRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ArgFd(info, 0, "fd", &fd)) return env.Undefined();
  uint64_t value = 0;
  ssize_t n;
  do {
    n = read(fd, &value, sizeof(value));
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) return Napi::Number::New(env, 0);
    ThrowErrnoError(env, errno, "read");
    return env.Undefined();
  }
  if (n != sizeof(value)) {
    ThrowErrnoError(env, EIO, "read");
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(value));
}

Napi::Value EventfdWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  int64_t add = 0;
  if (!ArgFd(info, 0, "fd", &fd) || !ArgInt(info, 1, "value", 1, UINT32_MAX, &add)) return env.Undefined();
  uint64_t value = static_cast<uint64_t>(add);
  ssize_t n;
  do {
    n = write(fd, &value, sizeof(value));
  } while (n < 0 && errno == EINTR);
  // EAGAIN means the counter is saturated: the peer has a wakeup pending already.
  if (n < 0 && errno != EAGAIN) {
    ThrowErrnoError(env, errno, "write");
    return env.Undefined();
  }
  return env.Undefined();
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ArgFd(info, 0, "fd", &fd)) return env.Undefined();
  // Linux closes the fd even when close() reports EINTR: never retry.
  if (close(fd) != 0 && errno != EINTR) ThrowErrnoError(env, errno, "close");
  return env.Undefined();
}

// ---- readiness through libuv -------------------------------------------------------------------

// One uv_poll_t per watched fd. Lives until pollStop(): the handle is closed asynchronously and the
// struct freed in the close callback, after which no callback can reach JS.
struct Poller {
  uv_poll_t handle;
  napi_env env;
  Napi::FunctionReference callback;
  Napi::AsyncContext* context;
  bool drainEventfd;
  bool stopped;
  int fd;
};

// What JS holds: a handle owned by the garbage collector, pointing at the Poller until pollStop.
// The Poller is freed by libuv's close callback, which can run long before JS drops the handle, so
// JS never points at the Poller directly: pollStop clears `poller` before closing it, and any later
// pollStop on the same handle sees nullptr (a stale pointer here was a use-after-free).
struct PollHandle {
  Poller* poller;
};

void FinalizePollHandle(napi_env, PollHandle* h) { delete h; }

void OnPollClosed(uv_handle_t* handle) {
  Poller* p = static_cast<Poller*>(handle->data);
  delete p->context;
  p->callback.Reset();
  delete p;
}

void OnPollEvent(uv_poll_t* handle, int status, int /*events*/) {
  Poller* p = static_cast<Poller*>(handle->data);
  if (p->stopped) return;
  double count = 1;
  if (status == 0 && p->drainEventfd) {
    // Reading the eventfd here saves a JS->C++ round trip per kick; a spurious wakeup reads EAGAIN.
    uint64_t value = 0;
    ssize_t n = read(p->fd, &value, sizeof(value));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n == sizeof(value)) count = static_cast<double>(value);
    else status = n < 0 ? -errno : UV_EIO;
  }
  Napi::Env env(p->env);
  Napi::HandleScope scope(env);
  napi_value args[2] = {Napi::Number::New(env, status), Napi::Number::New(env, count)};
  napi_value global;
  napi_get_global(p->env, &global);
  napi_value result;
  napi_status st = napi_make_callback(p->env, *p->context, global, p->callback.Value(), 2, args, &result);
  if (st == napi_pending_exception) {
    // An exception thrown by the JS callback is an uncaught exception of the process, exactly as
    // if an EventEmitter listener had thrown.
    napi_value error;
    napi_get_and_clear_last_exception(p->env, &error);
    napi_fatal_exception(p->env, error);
  }
}

// pollStart(fd, drainEventfd, callback(status, count)) -> handle for pollStop. status < 0 is a
// libuv error (e.g. UV_EBADF); for eventfds with drainEventfd the counter is read before calling.
Napi::Value PollStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!ArgFd(info, 0, "fd", &fd)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsBoolean()) {
    ThrowTypeError(env, "drainEventfd must be a boolean");
    return env.Undefined();
  }
  if (info.Length() < 3 || !info[2].IsFunction()) {
    ThrowTypeError(env, "callback must be a function");
    return env.Undefined();
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    Napi::Error::New(env, "napi_get_uv_event_loop failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Poller* p = new Poller();
  p->env = env;
  p->drainEventfd = info[1].As<Napi::Boolean>().Value();
  p->stopped = false;
  p->fd = fd;
  int rc = uv_poll_init(loop, &p->handle, fd);
  if (rc != 0) {
    delete p;
    ThrowErrnoError(env, -rc, "uv_poll_init");
    return env.Undefined();
  }
  p->handle.data = p;
  p->callback = Napi::Persistent(info[2].As<Napi::Function>());
  p->context = new Napi::AsyncContext(env, "vlab.poll");
  rc = uv_poll_start(&p->handle, UV_READABLE, OnPollEvent);
  if (rc != 0) {
    p->stopped = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), OnPollClosed);
    ThrowErrnoError(env, -rc, "uv_poll_start");
    return env.Undefined();
  }
  PollHandle* h = new PollHandle{p};
  return Napi::External<PollHandle>::New(env, h, FinalizePollHandle);
}

// pollStop(handle): idempotent, also after the watcher's memory is gone. Must be called before the
// fd is closed.
Napi::Value PollStop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsExternal()) {
    ThrowTypeError(env, "handle must be a value returned by pollStart()");
    return env.Undefined();
  }
  PollHandle* h = info[0].As<Napi::External<PollHandle>>().Data();
  if (h == nullptr || h->poller == nullptr) return env.Undefined();
  Poller* p = h->poller;
  h->poller = nullptr;  // from here on only libuv owns p; OnPollClosed frees it
  p->stopped = true;
  uv_poll_stop(&p->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), OnPollClosed);
  return env.Undefined();
}

}  // namespace

void InitVhost(Napi::Env env, Napi::Object exports) {
  exports.Set("vhostListenUnix", Napi::Function::New(env, ListenUnix, "vhostListenUnix"));
  exports.Set("vhostConnectUnix", Napi::Function::New(env, ConnectUnix, "vhostConnectUnix"));
  exports.Set("vhostAccept", Napi::Function::New(env, Accept, "vhostAccept"));
  exports.Set("vhostPeerCred", Napi::Function::New(env, PeerCred, "vhostPeerCred"));
  exports.Set("vhostRecvMsg", Napi::Function::New(env, RecvMsg, "vhostRecvMsg"));
  exports.Set("vhostSendMsg", Napi::Function::New(env, SendMsg, "vhostSendMsg"));
  exports.Set("vhostMmap", Napi::Function::New(env, Mmap, "vhostMmap"));
  exports.Set("vhostMunmap", Napi::Function::New(env, Munmap, "vhostMunmap"));
  exports.Set("vhostMemfdCreate", Napi::Function::New(env, MemfdCreate, "vhostMemfdCreate"));
  exports.Set("vhostFdStatus", Napi::Function::New(env, FdStatus, "vhostFdStatus"));
  exports.Set("vhostEventfd", Napi::Function::New(env, EventfdCreate, "vhostEventfd"));
  exports.Set("vhostEventfdRead", Napi::Function::New(env, EventfdRead, "vhostEventfdRead"));
  exports.Set("vhostEventfdWrite", Napi::Function::New(env, EventfdWrite, "vhostEventfdWrite"));
  exports.Set("vhostClose", Napi::Function::New(env, Close, "vhostClose"));
  exports.Set("vhostPollStart", Napi::Function::New(env, PollStart, "vhostPollStart"));
  exports.Set("vhostPollStop", Napi::Function::New(env, PollStop, "vhostPollStop"));
}

}  // namespace vlab

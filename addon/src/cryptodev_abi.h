// The cryptodev-linux userspace ABI (x86_64 / LP64), written from the measured layout in
// docs/platform.md#cryptodev-abi. Only what the binding uses is declared; static_asserts pin the
// sizes so a layout mistake fails the build instead of corrupting the kernel's view of our memory.
#ifndef VLAB_CRYPTODEV_ABI_H
#define VLAB_CRYPTODEV_ABI_H

#include <cstddef>
#include <cstdint>
#include <sys/ioctl.h>

namespace vlab::cryptodev_abi {

constexpr std::size_t kAlgNameMax = 64;

// CIOCGSESSION argument: the kernel reads cipher/mac/keys and writes back `ses`.
struct SessionOp {
  uint32_t cipher;
  uint32_t mac;
  uint32_t keylen;
  uint8_t* key;
  uint32_t mackeylen;
  uint8_t* mackey;
  uint32_t ses;
};

// CIOCCRYPT argument. With COP_FLAG_WRITE_IV the kernel writes the chaining IV back into *iv.
struct CryptOp {
  uint32_t ses;
  uint16_t op;
  uint16_t flags;
  uint32_t len;
  uint8_t* src;
  uint8_t* dst;
  uint8_t* mac;
  uint8_t* iv;
};

struct AlgInfo {
  char cra_name[kAlgNameMax];
  char cra_driver_name[kAlgNameMax];
};

// CIOCGSESSINFO argument: `ses` in, the rest out.
struct SessionInfoOp {
  uint32_t ses;
  AlgInfo cipher_info;
  AlgInfo hash_info;
  uint16_t alignmask;
  uint32_t flags;
};

static_assert(sizeof(SessionOp) == 48, "session_op must be 48 bytes");
static_assert(offsetof(SessionOp, key) == 16 && offsetof(SessionOp, mackey) == 32 && offsetof(SessionOp, ses) == 40,
              "session_op field offsets");
static_assert(sizeof(CryptOp) == 48, "crypt_op must be 48 bytes");
static_assert(offsetof(CryptOp, len) == 8 && offsetof(CryptOp, src) == 16 && offsetof(CryptOp, iv) == 40,
              "crypt_op field offsets");
static_assert(sizeof(SessionInfoOp) == 268, "session_info_op must be 268 bytes");

// 'c' ioctls; the numbers are cross-checked against the measured values in the notes.
constexpr unsigned long kCrioGet = _IOWR('c', 101, uint32_t);
constexpr unsigned long kCiocGSession = _IOWR('c', 102, SessionOp);
constexpr unsigned long kCiocFSession = _IOW('c', 103, uint32_t);
constexpr unsigned long kCiocCrypt = _IOWR('c', 104, CryptOp);
constexpr unsigned long kCiocGSessInfo = _IOWR('c', 107, SessionInfoOp);

static_assert(kCrioGet == 0xc0046365UL, "CRIOGET");
static_assert(kCiocGSession == 0xc0306366UL, "CIOCGSESSION");
static_assert(kCiocFSession == 0x40046367UL, "CIOCFSESSION");
static_assert(kCiocCrypt == 0xc0306368UL, "CIOCCRYPT");
static_assert(kCiocGSessInfo == 0xc10c636bUL, "CIOCGSESSINFO");

constexpr uint16_t kCopEncrypt = 0;
constexpr uint16_t kCopDecrypt = 1;
constexpr uint16_t kCopFlagWriteIv = 4;

}  // namespace vlab::cryptodev_abi

#endif  // VLAB_CRYPTODEV_ABI_H

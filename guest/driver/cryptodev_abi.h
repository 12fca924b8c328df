/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The cryptodev-linux userspace ABI (x86_64 and its 32-bit compat layout),
 * restated from its public documentation so that the driver and the guest
 * test programs agree on every number and structure size.
 */
#ifndef VLAB_CRYPTODEV_ABI_H
#define VLAB_CRYPTODEV_ABI_H

#include <linux/types.h>
#include <linux/ioctl.h>

#ifndef __user
#define __user
#endif

/* Algorithm numbers of enum cryptodev_crypto_op_t (only those we name). */
#define CRYPTO_3DES_CBC		2
#define CRYPTO_MD5_HMAC		6
#define CRYPTO_SHA1_HMAC	7
#define CRYPTO_AES_CBC		11
#define CRYPTO_MD5		13
#define CRYPTO_SHA1		14
#define CRYPTO_NULL		16
#define CRYPTO_SHA2_256_HMAC	18
#define CRYPTO_SHA2_384_HMAC	19
#define CRYPTO_SHA2_512_HMAC	20
#define CRYPTO_AES_CTR		21
#define CRYPTO_AES_XTS		22
#define CRYPTO_AES_ECB		23
#define CRYPTO_AES_GCM		50
#define CRYPTO_SHA2_224		103
#define CRYPTO_SHA2_256		104
#define CRYPTO_SHA2_384		105
#define CRYPTO_SHA2_512		106
#define CRYPTO_SHA2_224_HMAC	107

#define CRYPTO_CIPHER_MAX_KEY_LEN	64
#define CRYPTO_HMAC_MAX_KEY_LEN		512
#define CRYPTODEV_MAX_ALG_NAME		64

#define COP_ENCRYPT	0
#define COP_DECRYPT	1

#define COP_FLAG_NONE		0
#define COP_FLAG_UPDATE		(1 << 0)
#define COP_FLAG_FINAL		(1 << 1)
#define COP_FLAG_WRITE_IV	(1 << 2)
#define COP_FLAG_NO_ZC		(1 << 3)
#define COP_FLAG_AEAD_TLS_TYPE	(1 << 4)
#define COP_FLAG_AEAD_SRTP_TYPE	(1 << 5)
#define COP_FLAG_RESET		(1 << 6)

#define SIOP_FLAG_KERNEL_DRIVER_ONLY	1

struct session_op {
	__u32 cipher;
	__u32 mac;
	__u32 keylen;
	__u8 __user *key;
	__u32 mackeylen;
	__u8 __user *mackey;
	__u32 ses;
};

struct crypt_op {
	__u32 ses;
	__u16 op;
	__u16 flags;
	__u32 len;
	__u8 __user *src;
	__u8 __user *dst;
	__u8 __user *mac;
	__u8 __user *iv;
};

/* CIOCAUTHCRYPT (72 bytes on x86_64). */
struct crypt_auth_op {
	__u32 ses;
	__u16 op;
	__u16 flags;
	__u32 len;
	__u32 auth_len;
	__u8 __user *auth_src;
	__u8 __user *src;
	__u8 __user *dst;
	__u8 __user *tag;
	__u32 tag_len;
	__u8 __user *iv;
	__u32 iv_len;
};

struct alg_info {
	char cra_name[CRYPTODEV_MAX_ALG_NAME];
	char cra_driver_name[CRYPTODEV_MAX_ALG_NAME];
};

struct session_info_op {
	__u32 ses;
	struct alg_info cipher_info;
	struct alg_info hash_info;
	__u16 alignmask;
	__u32 flags;
};

#define CRIOGET		_IOWR('c', 101, __u32)
#define CIOCGSESSION	_IOWR('c', 102, struct session_op)
#define CIOCFSESSION	_IOW('c', 103, __u32)
#define CIOCCRYPT	_IOWR('c', 104, struct crypt_op)
#define CIOCGSESSINFO	_IOWR('c', 107, struct session_info_op)
#define CIOCAUTHCRYPT	_IOWR('c', 109, struct crypt_auth_op)

/* CIOCCPHASH: dst_ses takes over a copy of src_ses's hash state. */
struct cphash_op {
	__u32 dst_ses;
	__u32 src_ses;
};

#define CIOCCPHASH	_IOW('c', 110, struct cphash_op)

/* 32-bit userland layouts: pointers are 4 bytes and u64 is 4-byte aligned. */
struct compat_session_op_abi {
	__u32 cipher;
	__u32 mac;
	__u32 keylen;
	__u32 key;
	__u32 mackeylen;
	__u32 mackey;
	__u32 ses;
};

struct compat_crypt_op_abi {
	__u32 ses;
	__u16 op;
	__u16 flags;
	__u32 len;
	__u32 src;
	__u32 dst;
	__u32 mac;
	__u32 iv;
};

#define COMPAT_CIOCGSESSION	_IOWR('c', 102, struct compat_session_op_abi)
#define COMPAT_CIOCCRYPT	_IOWR('c', 104, struct compat_crypt_op_abi)

#endif /* VLAB_CRYPTODEV_ABI_H */

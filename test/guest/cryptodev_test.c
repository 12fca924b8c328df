// SPDX-License-Identifier: MIT
/*
 * Guest-side test and benchmark tool for /dev/crypto (cryptodev-linux API).
 * Built on the host with gcc against libcrypto, run in the guest.
 *
 *   vlab-cryptodev-test kat                      NIST SP 800-38A + RFC 4231
 *   vlab-cryptodev-test errors [--mac]           invalid inputs -> errnos
 *   vlab-cryptodev-test roundtrip FILE           random cases vs host OpenSSL
 *   vlab-cryptodev-test stress PROCS SESS OPS    concurrent mixed sizes, every
 *                                                session kind, each op checked
 *   vlab-cryptodev-test bench dev|devnozc|sw SIZE PROCS MS [ALG]
 *                                                ALG aes-256-cbc (default),
 *                                                sha256 or hmac-sha256
 *   vlab-cryptodev-test speed [ALG] [SECONDS]    cryptodev-linux speed style
 *   vlab-cryptodev-test ivrace THREADS OPS LEN   implicit-IV CTR, threads
 *   vlab-cryptodev-test inflight THREADS OPS LEN [zc] concurrent big requests
 *                                                (NO_ZC bounce pages unless zc)
 *   vlab-cryptodev-test stale LEN                dst holds no stale bytes
 *   vlab-cryptodev-test wait SECS                one op, report its errno
 *   vlab-cryptodev-test algs [SEED]              hashes, HMAC, NULL, 3DES,
 *                                                XTS, GCM, TLS, SRTP, SESSINFO
 *   vlab-cryptodev-test nofallback [--mac]       fallback=0: device only
 *   vlab-cryptodev-test zc                       zero-copy buffer shapes
 *   vlab-cryptodev-test pin-movable GOFILE       a zero-copy pin of a ZONE_MOVABLE page
 *                                                (FOLL_LONGTERM migrates it first)
 *   vlab-cryptodev-test lat OPS SIZE [STATS]     per-op latency, one process
 *   vlab-cryptodev-test api-cbc-inplace          CBC decrypt in place: next IV
 *   vlab-cryptodev-test api-aead                 CIOCAUTHCRYPT AEAD convention
 *   vlab-cryptodev-test api-tls-oracle [REPS]    TLS-mode failures: one errno
 *   vlab-cryptodev-test api-cphash               CIOCCPHASH hash state copy
 *   vlab-cryptodev-test dbg-crypt LEN GOFILE     one CIOCCRYPT once GOFILE exists,
 *                                                prints the ciphertext's SHA-256
 *
 * Output: one line per check, "ok NAME" or "not ok NAME: why"; the exit
 * status is the number of failures (capped at 100).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/hmac.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include "../../guest/driver/cryptodev_abi.h"

static int failures;

static void check(int cond, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#include <stdarg.h>
static void check(int cond, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (cond) {
		printf("ok %s\n", name);
		return;
	}
	failures++;
	printf("not ok %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static size_t unhex(const char *s, uint8_t *out)
{
	size_t n = 0;

	while (s[0] && s[1]) {
		unsigned int v;

		sscanf(s, "%2x", &v);
		out[n++] = (uint8_t)v;
		s += 2;
	}
	return n;
}

static void tohex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * n] = 0;
}

static int open_crypto(void)
{
	int fd = open("/dev/crypto", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		perror("open /dev/crypto");
		exit(100);
	}
	return fd;
}

/* Returns 0 or -errno. */
static int new_session(int fd, uint32_t cipher, const uint8_t *key,
		       uint32_t keylen, uint32_t mac, const uint8_t *mackey,
		       uint32_t mackeylen, uint32_t *ses)
{
	struct session_op sop;

	memset(&sop, 0, sizeof(sop));
	sop.cipher = cipher;
	sop.key = (uint8_t *)key;
	sop.keylen = keylen;
	sop.mac = mac;
	sop.mackey = (uint8_t *)mackey;
	sop.mackeylen = mackeylen;
	if (ioctl(fd, CIOCGSESSION, &sop))
		return -errno;
	*ses = sop.ses;
	return 0;
}

static int do_crypt(int fd, uint32_t ses, int op, const void *src, void *dst,
		    uint32_t len, uint8_t *iv, uint8_t *mac, uint16_t flags)
{
	struct crypt_op cop;

	memset(&cop, 0, sizeof(cop));
	cop.ses = ses;
	cop.op = op;
	cop.flags = flags;
	cop.len = len;
	cop.src = (uint8_t *)src;
	cop.dst = dst;
	cop.iv = iv;
	cop.mac = mac;
	if (ioctl(fd, CIOCCRYPT, &cop))
		return -errno;
	return 0;
}

static void end_session(int fd, uint32_t ses)
{
	ioctl(fd, CIOCFSESSION, &ses);
}

static int fallback_on(void);

/* ---------------------------------------------------------------- KATs */

static const char *sp800_38a_pt =
	"6bc1bee22e409f96e93d7e117393172a"
	"ae2d8a571e03ac9c9eb76fac45af8e51"
	"30c81c46a35ce411e5fbc1191a0a52ef"
	"f69f2445df4f9b17ad2b417be66c3710";

struct cipher_kat {
	const char *name;
	uint32_t alg;
	const char *key, *iv, *ct;
};

/* NIST SP 800-38A, appendix F.1 (ECB), F.2 (CBC), F.5 (CTR). */
static const struct cipher_kat cipher_kats[] = {
	{ "F.1.1 ECB-AES128", CRYPTO_AES_ECB,
	  "2b7e151628aed2a6abf7158809cf4f3c", NULL,
	  "3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf"
	  "43b1cd7f598ece23881b00e3ed0306887b0c785e27e8ad3f8223207104725dd4" },
	{ "F.1.3 ECB-AES192", CRYPTO_AES_ECB,
	  "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b", NULL,
	  "bd334f1d6e45f25ff712a214571fa5cc974104846d0ad3ad7734ecb3ecee4eef"
	  "ef7afd2270e2e60adce0ba2face6444e9a4b41ba738d6c72fb16691603c18e0e" },
	{ "F.1.5 ECB-AES256", CRYPTO_AES_ECB,
	  "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
	  NULL,
	  "f3eed1bdb5d2a03c064b5a7e3db181f8591ccb10d410ed26dc5ba74a31362870"
	  "b6ed21b99ca6f4f9f153e7b1beafed1d23304b7a39f9f3ff067d8d8f9e24ecc7" },
	{ "F.2.1 CBC-AES128", CRYPTO_AES_CBC,
	  "2b7e151628aed2a6abf7158809cf4f3c",
	  "000102030405060708090a0b0c0d0e0f",
	  "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
	  "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7" },
	{ "F.2.3 CBC-AES192", CRYPTO_AES_CBC,
	  "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
	  "000102030405060708090a0b0c0d0e0f",
	  "4f021db243bc633d7178183a9fa071e8b4d9ada9ad7dedf4e5e738763f69145a"
	  "571b242012fb7ae07fa9baac3df102e008b0e27988598881d920a9e64f5615cd" },
	{ "F.2.5 CBC-AES256", CRYPTO_AES_CBC,
	  "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
	  "000102030405060708090a0b0c0d0e0f",
	  "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
	  "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b" },
	{ "F.5.1 CTR-AES128", CRYPTO_AES_CTR,
	  "2b7e151628aed2a6abf7158809cf4f3c",
	  "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
	  "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff"
	  "5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee" },
	{ "F.5.3 CTR-AES192", CRYPTO_AES_CTR,
	  "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
	  "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
	  "1abc932417521ca24f2b0459fe7e6e0b090339ec0aa6faefd5ccc2c6f4ce8e94"
	  "1e36b26bd1ebc670d1bd1d665620abf74f78a7f6d29809585a97daec58c6b050" },
	{ "F.5.5 CTR-AES256", CRYPTO_AES_CTR,
	  "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
	  "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
	  "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
	  "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6" },
};

struct mac_kat {
	const char *name;
	uint32_t alg;
	const char *key, *data, *mac;
};

/* RFC 4231 test cases 1, 2, 3, 6 and 7 (SHA-256, SHA-512). */
#define K20_0B "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"
#define K20_AA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define D50_DD "dddddddddddddddddddddddddddddddddddddddddddddddddd" \
	       "dddddddddddddddddddddddddddddddddddddddddddddddddd"
#define K131_AA K20_AA K20_AA K20_AA K20_AA K20_AA K20_AA \
	"aaaaaaaaaaaaaaaaaaaaaa"
#define D_TC6 "54657374205573696e67204c6172676572205468616e20426c6f63" \
	      "6b2d53697a65204b6579202d2048617368204b6579204669727374"
#define D_TC7 "5468697320697320612074657374207573696e672061206c617267" \
	      "6572207468616e20626c6f636b2d73697a65206b657920616e6420" \
	      "61206c6172676572207468616e20626c6f636b2d73697a65206461" \
	      "74612e20546865206b6579206e6565647320746f20626520686173" \
	      "686564206265666f7265206265696e672075736564206279207468" \
	      "6520484d414320616c676f726974686d2e"
static const struct mac_kat mac_kats[] = {
	{ "RFC4231 TC1 HMAC-SHA256", CRYPTO_SHA2_256_HMAC, K20_0B,
	  "4869205468657265",
	  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
	{ "RFC4231 TC1 HMAC-SHA512", CRYPTO_SHA2_512_HMAC, K20_0B,
	  "4869205468657265",
	  "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
	  "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854" },
	{ "RFC4231 TC2 HMAC-SHA256", CRYPTO_SHA2_256_HMAC, "4a656665",
	  "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
	  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
	{ "RFC4231 TC2 HMAC-SHA512", CRYPTO_SHA2_512_HMAC, "4a656665",
	  "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
	  "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
	  "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737" },
	{ "RFC4231 TC3 HMAC-SHA256", CRYPTO_SHA2_256_HMAC, K20_AA, D50_DD,
	  "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
	{ "RFC4231 TC6 HMAC-SHA256", CRYPTO_SHA2_256_HMAC, K131_AA, D_TC6,
	  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
	{ "RFC4231 TC7 HMAC-SHA256", CRYPTO_SHA2_256_HMAC, K131_AA, D_TC7,
	  "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
};

static void kat_cipher(int fd, const struct cipher_kat *k)
{
	uint8_t key[32], iv[16], iv2[16], pt[64], ct[64], out[64];
	char name[96];
	size_t keylen = unhex(k->key, key);
	uint32_t ses = 0;
	int err;

	unhex(sp800_38a_pt, pt);
	unhex(k->ct, ct);
	if (k->iv)
		unhex(k->iv, iv);
	err = new_session(fd, k->alg, key, keylen, 0, NULL, 0, &ses);
	snprintf(name, sizeof(name), "%s session", k->name);
	check(!err, name, "CIOCGSESSION: %s", strerror(-err));
	if (err)
		return;

	/* Whole message, then block by block with COP_FLAG_WRITE_IV chaining. */
	err = do_crypt(fd, ses, COP_ENCRYPT, pt, out, 64, k->iv ? iv : NULL,
		       NULL, 0);
	snprintf(name, sizeof(name), "%s encrypt", k->name);
	check(!err && !memcmp(out, ct, 64), name, "err %d or mismatch", err);
	err = do_crypt(fd, ses, COP_DECRYPT, ct, out, 64, k->iv ? iv : NULL,
		       NULL, 0);
	snprintf(name, sizeof(name), "%s decrypt", k->name);
	check(!err && !memcmp(out, pt, 64), name, "err %d or mismatch", err);

	if (k->iv) {
		memcpy(iv2, iv, 16);
		for (int b = 0; b < 4 && !err; b++)
			err = do_crypt(fd, ses, COP_ENCRYPT, pt + 16 * b,
				       out + 16 * b, 16, iv2, NULL,
				       COP_FLAG_WRITE_IV);
		snprintf(name, sizeof(name), "%s encrypt chained WRITE_IV",
			 k->name);
		check(!err && !memcmp(out, ct, 64), name, "err %d or mismatch",
		      err);
		memcpy(iv2, iv, 16);
		for (int b = 0; b < 4 && !err; b++)
			err = do_crypt(fd, ses, COP_DECRYPT, ct + 16 * b,
				       out + 16 * b, 16, iv2, NULL,
				       COP_FLAG_WRITE_IV);
		snprintf(name, sizeof(name), "%s decrypt chained WRITE_IV",
			 k->name);
		check(!err && !memcmp(out, pt, 64), name, "err %d or mismatch",
		      err);
		/* In place (src == dst) must work as cryptodev-linux does. */
		memcpy(out, pt, 64);
		err = do_crypt(fd, ses, COP_ENCRYPT, out, out, 64, iv, NULL, 0);
		snprintf(name, sizeof(name), "%s in place", k->name);
		check(!err && !memcmp(out, ct, 64), name, "err %d or mismatch",
		      err);
	}
	end_session(fd, ses);
}

/*
 * HMAC through a cipher+HMAC session: cryptodev-linux computes the MAC
 * over the plaintext (before encryption, after decryption), so the RFC
 * value must come out in both directions. CTR lets any length through.
 */
static void kat_mac(int fd, const struct mac_kat *k, int expect_mac)
{
	static const uint8_t ckey[16] = { 1, 2, 3, 4 };
	uint8_t key[200], data[200], want[64], mac[64], ct[200], out[200];
	uint8_t iv[16] = { 0 }, iv0[16] = { 0 };
	size_t keylen = unhex(k->key, key), len = unhex(k->data, data);
	size_t maclen = unhex(k->mac, want);
	char name[128];
	uint32_t ses = 0;
	int err;

	err = new_session(fd, CRYPTO_AES_CTR, ckey, 16, k->alg, key, keylen,
			  &ses);
	snprintf(name, sizeof(name), "%s ctr+hmac session", k->name);
	if (!expect_mac && !fallback_on()) {
		/* QEMU's builtin backend has no algorithm chaining. */
		check(err == -EINVAL, name, "want EINVAL, got %d", err);
		return;
	}
	check(!err, name, "CIOCGSESSION: %s", strerror(-err));
	if (err)
		return;
	memset(mac, 0, sizeof(mac));
	err = do_crypt(fd, ses, COP_ENCRYPT, data, ct, len, iv, mac, 0);
	snprintf(name, sizeof(name), "%s encrypt MAC", k->name);
	check(!err && !memcmp(mac, want, maclen), name, "err %d or mismatch",
	      err);
	memset(mac, 0, sizeof(mac));
	memcpy(iv, iv0, 16);
	err = do_crypt(fd, ses, COP_DECRYPT, ct, out, len, iv, mac, 0);
	snprintf(name, sizeof(name), "%s decrypt MAC", k->name);
	check(!err && !memcmp(mac, want, maclen) && !memcmp(out, data, len),
	      name, "err %d or mismatch", err);
	end_session(fd, ses);

	err = new_session(fd, 0, NULL, 0, k->alg, key, keylen, &ses);
	snprintf(name, sizeof(name), "%s mac-only", k->name);
	if (!err) {
		memset(mac, 0, sizeof(mac));
		err = do_crypt(fd, ses, COP_ENCRYPT, data, NULL, len, NULL,
			       mac, 0);
		end_session(fd, ses);
		check(!err && !memcmp(mac, want, maclen), name,
		      "err %d or mismatch", err);
	} else {
		/* A device without the MAC service: cryptodev's EINVAL. */
		check(err == -EINVAL, name, "want 0 or EINVAL, got %d", err);
	}
}

static int cmd_kat(int argc, char **argv)
{
	int fd = open_crypto();
	int expect_mac = argc > 0 && !strcmp(argv[0], "--mac");

	for (size_t i = 0; i < sizeof(cipher_kats) / sizeof(cipher_kats[0]); i++)
		kat_cipher(fd, &cipher_kats[i]);
	for (size_t i = 0; i < sizeof(mac_kats) / sizeof(mac_kats[0]); i++)
		kat_mac(fd, &mac_kats[i], expect_mac);
	close(fd);
	return failures;
}

/* -------------------------------------------------------------- errnos */

static void expect_errno(int got, int want, const char *name)
{
	check(got == -want, name, "want %s, got %s", want ? strerror(want) : "0",
	      got ? strerror(-got) : "0");
}

static int cmd_errors(int argc, char **argv)
{
	static uint8_t key[64], mackey[600], buf[256], iv[16], mac[64];
	int fd = open_crypto();
	int expect_mac = argc > 0 && !strcmp(argv[0], "--mac");
	uint8_t *bad = (uint8_t *)16;	/* never mapped */
	uint8_t *ro, *big;
	uint32_t ses, mses = 0, bogus;
	size_t bigsz = (1 << 20) + 4096;
	int err, fd2;

	ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	big = mmap(NULL, bigsz, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	/* ioctl level */
	expect_errno(ioctl(fd, _IO('c', 200)) ? -errno : 0, EINVAL,
		     "unknown ioctl");
	expect_errno(ioctl(fd, CIOCGSESSION, bad) ? -errno : 0, EFAULT,
		     "CIOCGSESSION bad argument pointer");

	/* CIOCGSESSION */
	expect_errno(new_session(fd, 0, NULL, 0, 0, NULL, 0, &ses), EINVAL,
		     "session without cipher and mac");
	expect_errno(new_session(fd, 9999, key, 16, 0, NULL, 0, &ses), EINVAL,
		     "unknown cipher");
	if (fallback_on()) {
		/* Not on the device: the kernel's xts(aes) serves it. */
		err = new_session(fd, CRYPTO_AES_XTS, key, 32, 0, NULL, 0, &ses);
		expect_errno(err, 0, "AES-XTS through the kernel fallback");
		if (!err)
			end_session(fd, ses);
		err = new_session(fd, 0, NULL, 0, CRYPTO_SHA2_256, NULL, 0, &ses);
		expect_errno(err, 0, "plain hash through the kernel fallback");
		if (!err)
			end_session(fd, ses);
	} else {
		expect_errno(new_session(fd, CRYPTO_AES_XTS, key, 32, 0, NULL,
					 0, &ses), EINVAL,
			     "cipher not offered (AES-XTS)");
		expect_errno(new_session(fd, 0, NULL, 0, CRYPTO_SHA2_256, NULL,
					 0, &ses), EINVAL,
			     "plain hash not offered");
	}
	expect_errno(new_session(fd, CRYPTO_AES_CBC, key, 16, 9999, mackey, 16,
				 &ses), EINVAL, "unknown mac");
	expect_errno(new_session(fd, CRYPTO_AES_CBC, key, 17, 0, NULL, 0, &ses),
		     EINVAL, "AES key length 17");
	expect_errno(new_session(fd, CRYPTO_AES_CBC, key, 0, 0, NULL, 0, &ses),
		     EINVAL, "AES key length 0");
	expect_errno(new_session(fd, CRYPTO_AES_CBC, key, 65, 0, NULL, 0, &ses),
		     EINVAL, "cipher key length 65 (> 64)");
	expect_errno(new_session(fd, CRYPTO_AES_CBC, bad, 16, 0, NULL, 0, &ses),
		     EFAULT, "bad key pointer");
	expect_errno(new_session(fd, CRYPTO_AES_CBC, key, 16,
				 CRYPTO_SHA2_256_HMAC, mackey, 513, &ses),
		     EINVAL, "mac key length 513 (> 512)");
	expect_errno(new_session(fd, CRYPTO_AES_CBC, key, 16,
				 CRYPTO_SHA2_256_HMAC, bad, 32, &ses),
		     EFAULT, "bad mac key pointer");

	/* A good session for the rest */
	err = new_session(fd, CRYPTO_AES_CBC, key, 16, 0, NULL, 0, &ses);
	expect_errno(err, 0, "AES-128-CBC session");
	bogus = ses ^ 0x5a5a5a5a;

	/* CIOCCRYPT */
	expect_errno(ioctl(fd, CIOCCRYPT, bad) ? -errno : 0, EFAULT,
		     "CIOCCRYPT bad argument pointer");
	expect_errno(do_crypt(fd, bogus, COP_ENCRYPT, buf, buf, 16, iv, NULL, 0),
		     EINVAL, "unknown session");
	expect_errno(do_crypt(fd, ses, 2, buf, buf, 16, iv, NULL, 0), EINVAL,
		     "op neither encrypt nor decrypt");
	expect_errno(do_crypt(fd, ses, COP_ENCRYPT, buf, buf, 15, iv, NULL, 0),
		     EINVAL, "CBC length not a block multiple");
	expect_errno(do_crypt(fd, ses, COP_ENCRYPT, buf, buf, 0, iv, NULL, 0), 0,
		     "zero length is a no-op");
	expect_errno(do_crypt(fd, ses, COP_ENCRYPT, big, big, (1 << 20) + 16,
			      iv, NULL, 0), EINVAL,
		     "length over the 1 MiB maximum");
	expect_errno(do_crypt(fd, ses, COP_ENCRYPT, big, big, 1 << 20, iv,
			      NULL, 0), 0, "length at the 1 MiB maximum");
	expect_errno(do_crypt(fd, ses, COP_ENCRYPT, bad, buf, 16, iv, NULL, 0),
		     EFAULT, "bad src pointer");
	expect_errno(do_crypt(fd, ses, COP_ENCRYPT, buf, bad, 16, iv, NULL, 0),
		     EFAULT, "bad dst pointer");
	expect_errno(do_crypt(fd, ses, COP_ENCRYPT, buf, ro, 16, iv, NULL, 0),
		     EFAULT, "read-only dst");
	expect_errno(do_crypt(fd, ses, COP_ENCRYPT, buf, buf, 16, bad, NULL, 0),
		     EFAULT, "bad iv pointer");
	expect_errno(do_crypt(fd, ses, COP_ENCRYPT, buf, buf, 16, (uint8_t *)ro,
			      NULL, COP_FLAG_WRITE_IV), EFAULT,
		     "WRITE_IV into read-only iv");

	/* The argument is read, then written back: a read-only one fails. */
	{
		struct session_op *rsop = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
					       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct crypt_op *rcop = (struct crypt_op *)(rsop + 1);

		rsop->cipher = CRYPTO_AES_CBC;
		rsop->key = key;
		rsop->keylen = 16;
		rcop->ses = ses;
		rcop->op = COP_ENCRYPT;
		rcop->len = 16;
		rcop->src = buf;
		rcop->dst = buf;
		rcop->iv = iv;
		mprotect(rsop, 4096, PROT_READ);
		expect_errno(ioctl(fd, CIOCGSESSION, rsop) ? -errno : 0, EFAULT,
			     "CIOCGSESSION into a read-only argument (session rolled back)");
		expect_errno(ioctl(fd, CIOCCRYPT, rcop) ? -errno : 0, EFAULT,
			     "CIOCCRYPT with a read-only argument");

		/*
		 * Rolled-back sessions must not count: after 1100 of them a
		 * fresh file still gets its full 1024, then ENOMEM -- or,
		 * on a device with fewer sessions (QEMU's builtin backend
		 * has 256 for the whole VM, two per cipher session), at
		 * least 100 before the device says no (EINVAL). A leak of
		 * the rolled-back ones would exhaust either at once.
		 */
		int fd3 = open_crypto(), made = 0, last = 0, rolled = 0;
		uint32_t s3;

		for (int i = 0; i < 1100; i++)
			rolled += ioctl(fd3, CIOCGSESSION, rsop) && errno == EFAULT;
		while (made < 2000 &&
		       !(last = new_session(fd3, CRYPTO_AES_CBC, key, 16, 0,
					    NULL, 0, &s3)))
			made++;
		check(rolled == 1100 && made >= 100 &&
		      (made == 1024 ? last == -ENOMEM : last == -EINVAL),
		      "1024 sessions per file or the device's limit; rolled-back ones do not count",
		      "rolled back %d, made %d, then %s", rolled, made,
		      strerror(-last));
		close(fd3);	/* release frees all 1024 */
		munmap(rsop, 4096);
	}

	/* CIOCGSESSINFO */
	{
		struct session_info_op si;

		memset(&si, 0, sizeof(si));
		si.ses = bogus;
		expect_errno(ioctl(fd, CIOCGSESSINFO, &si) ? -errno : 0, EINVAL,
			     "CIOCGSESSINFO unknown session");
		si.ses = ses;
		err = ioctl(fd, CIOCGSESSINFO, &si) ? -errno : 0;
		check(!err && !strcmp(si.cipher_info.cra_name, "cbc(aes)") &&
		      (si.flags & SIOP_FLAG_KERNEL_DRIVER_ONLY) &&
		      si.hash_info.cra_name[0] == 0,
		      "CIOCGSESSINFO names and SIOP_FLAG_KERNEL_DRIVER_ONLY",
		      "err %d name '%s' driver '%s' flags %u", err,
		      si.cipher_info.cra_name, si.cipher_info.cra_driver_name,
		      si.flags);
		expect_errno(ioctl(fd, CIOCGSESSINFO, bad) ? -errno : 0, EFAULT,
			     "CIOCGSESSINFO bad argument pointer");
	}

	/* Sessions belong to their file; CRIOGET shares the file. */
	fd2 = open_crypto();
	expect_errno(do_crypt(fd2, ses, COP_ENCRYPT, buf, buf, 16, iv, NULL, 0),
		     EINVAL, "session of another open file");
	close(fd2);
	fd2 = -1;
	err = ioctl(fd, CRIOGET, &fd2) ? -errno : 0;
	check(!err && fd2 > fd && !do_crypt(fd2, ses, COP_ENCRYPT, buf, buf, 16,
					     iv, NULL, 0),
	      "CRIOGET clone shares sessions", "err %d fd2 %d", err, fd2);
	if (fd2 >= 0)
		close(fd2);
	expect_errno(ioctl(fd, CRIOGET, bad) ? -errno : 0, EFAULT,
		     "CRIOGET bad argument pointer");

	/* CIOCFSESSION */
	expect_errno(ioctl(fd, CIOCFSESSION, &bogus) ? -errno : 0, ENOENT,
		     "CIOCFSESSION unknown session");
	expect_errno(ioctl(fd, CIOCFSESSION, bad) ? -errno : 0, EFAULT,
		     "CIOCFSESSION bad argument pointer");
	expect_errno(ioctl(fd, CIOCFSESSION, &ses) ? -errno : 0, 0,
		     "CIOCFSESSION");
	expect_errno(ioctl(fd, CIOCFSESSION, &ses) ? -errno : 0, ENOENT,
		     "CIOCFSESSION twice");
	expect_errno(do_crypt(fd, ses, COP_ENCRYPT, buf, buf, 16, iv, NULL, 0),
		     EINVAL, "crypt on a finished session");

	/* MAC sessions: only where the device chains cipher + HMAC. */
	err = new_session(fd, CRYPTO_AES_CBC, key, 16, CRYPTO_SHA2_256_HMAC,
			  mackey, 32, &mses);
	if (!expect_mac && !fallback_on()) {
		expect_errno(err, EINVAL, "cipher+HMAC session on a device without chaining");
	} else {
		expect_errno(err, 0, "cipher+HMAC session");
		expect_errno(do_crypt(fd, mses, COP_ENCRYPT, buf, buf, 16, iv,
				      bad, 0), EFAULT, "bad mac pointer");
		/* Multi-part MAC state: the kernel's, or EINVAL device-only. */
		expect_errno(do_crypt(fd, mses, COP_ENCRYPT, buf, buf, 16, iv,
				      mac, COP_FLAG_UPDATE),
			     fallback_on() ? 0 : EINVAL,
			     "COP_FLAG_UPDATE on a MAC session");
		end_session(fd, mses);
	}
	close(fd);
	return failures;
}

/* ---------------------------------------------------------- round trips */

/* Plaintext both sides derive: block i = SHA-256(seed as u64 LE || i as u32 LE). */
static void fill_plaintext(uint8_t *p, size_t len, uint64_t seed)
{
	uint8_t in[12], h[32];

	for (uint32_t i = 0; (size_t)i * 32 < len; i++) {
		for (int b = 0; b < 8; b++)
			in[b] = (uint8_t)(seed >> (8 * b));
		for (int b = 0; b < 4; b++)
			in[8 + b] = (uint8_t)(i >> (8 * b));
		SHA256(in, sizeof(in), h);
		memcpy(p + (size_t)i * 32,
		       h, len - (size_t)i * 32 < 32 ? len - (size_t)i * 32 : 32);
	}
}

static int cmd_roundtrip(int argc, char **argv)
{
	FILE *f = argc > 0 ? fopen(argv[0], "r") : NULL;
	char line[512], khex[160], ivhex[40], hex[65];
	int fd = open_crypto(), n = 0;

	if (!f) {
		fprintf(stderr, "roundtrip: cannot open case file\n");
		return 100;
	}
	while (fgets(line, sizeof(line), f)) {
		uint8_t key[64], iv[16], iv2[16], h[32], *pt, *ct, *back;
		unsigned int alg, len;
		unsigned long long seed;
		char name[64];
		uint32_t ses = 0;
		size_t keylen;
		int err;

		if (sscanf(line, "%u %159s %39s %u %llu", &alg, khex, ivhex, &len,
			   &seed) != 5)
			continue;
		n++;
		keylen = unhex(khex, key);
		unhex(ivhex, iv);
		memcpy(iv2, iv, 16);
		pt = malloc(len);
		ct = malloc(len);
		back = malloc(len);
		fill_plaintext(pt, len, seed);
		snprintf(name, sizeof(name), "case %d", n);
		err = new_session(fd, alg, key, keylen, 0, NULL, 0, &ses);
		if (!err)
			err = do_crypt(fd, ses, COP_ENCRYPT, pt, ct, len,
				       alg == CRYPTO_AES_ECB ? NULL : iv, NULL, 0);
		if (!err)
			err = do_crypt(fd, ses, COP_DECRYPT, ct, back, len,
				       alg == CRYPTO_AES_ECB ? NULL : iv2, NULL,
				       0);
		if (!err)
			end_session(fd, ses);
		SHA256(ct, len, h);
		tohex(h, 32, hex);
		if (err)
			check(0, name, "errno %s", strerror(-err));
		else if (memcmp(back, pt, len))
			check(0, name, "decrypt did not give the plaintext back");
		else
			printf("ct %d %s\n", n, hex);
		free(pt);
		free(ct);
		free(back);
	}
	fclose(f);
	close(fd);
	printf("cases %d\n", n);
	return failures;
}

/* -------------------------------------------------------------- stress */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint32_t stress_size(void)
{
	static const uint32_t sizes[] = { 16, 32, 64, 256, 1024, 4096, 4096 + 16,
					  16384, 65536 };
	uint64_t r = rnd() % 100;

	if (r < 60)
		return sizes[rnd() % 4];
	if (r < 95)
		return sizes[4 + rnd() % 3];
	return sizes[7 + rnd() % 2];
}

/*
 * Session kinds of the stress test. Session 0 of every child is a device
 * AES session (so a removed device ends every child with ENODEV); the others
 * cycle through every kind cryptodev-linux offers, whichever path serves it.
 */
enum stress_kind {
	SK_AES_CBC, SK_AES_CTR, SK_AES_ECB,	/* device ciphers */
	SK_AES_XTS, SK_3DES, SK_NULL, SK_SHA1, SK_SHA256, SK_SHA512, SK_MD5,
	SK_HMAC, SK_CBC_HMAC, SK_GCM, SK_TLS, SK_SRTP, SK_KINDS
};

#define SK_FIRST_MIXED SK_AES_XTS

static const char *const stress_kind_name[SK_KINDS] = {
	"AES-CBC", "AES-CTR", "AES-ECB", "AES-XTS", "3DES-CBC", "NULL",
	"SHA1", "SHA256", "SHA512", "MD5", "HMAC-SHA256",
	"AES-CBC+HMAC-SHA1", "AES-GCM", "TLS", "SRTP"
};

/* Operations per kind, summed over all children (shared, anonymous). */
static uint64_t *stress_ops;

static int do_auth(int fd, uint32_t ses, int op, uint16_t flags,
		   const uint8_t *auth, uint32_t auth_len, uint8_t *src,
		   uint8_t *dst, uint32_t *len, uint8_t *tag, uint32_t tag_len,
		   uint8_t *iv);

struct stress_ses {
	enum stress_kind kind;
	uint32_t id;
	uint8_t key[32], mkey[32];
};

static void stress_rand(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

static int stress_open(int fd, struct stress_ses *s)
{
	static const struct {
		uint32_t cipher, keylen, mac, mackeylen;
	} p[SK_KINDS] = {
		[SK_AES_CBC] = { CRYPTO_AES_CBC, 16, 0, 0 },
		[SK_AES_CTR] = { CRYPTO_AES_CTR, 24, 0, 0 },
		[SK_AES_ECB] = { CRYPTO_AES_ECB, 32, 0, 0 },
		[SK_AES_XTS] = { CRYPTO_AES_XTS, 32, 0, 0 },
		[SK_3DES] = { CRYPTO_3DES_CBC, 24, 0, 0 },
		[SK_NULL] = { CRYPTO_NULL, 0, 0, 0 },
		[SK_SHA1] = { 0, 0, CRYPTO_SHA1, 0 },
		[SK_SHA256] = { 0, 0, CRYPTO_SHA2_256, 0 },
		[SK_SHA512] = { 0, 0, CRYPTO_SHA2_512, 0 },
		[SK_MD5] = { 0, 0, CRYPTO_MD5, 0 },
		[SK_HMAC] = { 0, 0, CRYPTO_SHA2_256_HMAC, 32 },
		[SK_CBC_HMAC] = { CRYPTO_AES_CBC, 16, CRYPTO_SHA1_HMAC, 20 },
		[SK_GCM] = { CRYPTO_AES_GCM, 16, 0, 0 },
		[SK_TLS] = { CRYPTO_AES_CBC, 16, CRYPTO_SHA2_256_HMAC, 32 },
		[SK_SRTP] = { CRYPTO_AES_CTR, 16, CRYPTO_SHA1_HMAC, 20 },
	};

	stress_rand(s->key, sizeof(s->key));
	stress_rand(s->mkey, sizeof(s->mkey));
	return new_session(fd, p[s->kind].cipher, s->key, p[s->kind].keylen,
			   p[s->kind].mac, s->mkey, p[s->kind].mackeylen, &s->id);
}

/* The reference cipher (the guest's OpenSSL) for the cipher kinds. */
static const EVP_CIPHER *stress_evp(enum stress_kind k)
{
	switch (k) {
	case SK_AES_CBC:
	case SK_CBC_HMAC:
		return EVP_aes_128_cbc();
	case SK_AES_CTR:
		return EVP_aes_192_ctr();
	case SK_AES_ECB:
		return EVP_aes_256_ecb();
	case SK_AES_XTS:
		return EVP_aes_128_xts();
	case SK_3DES:
		return EVP_des_ede3_cbc();
	default:
		return NULL;
	}
}

static const EVP_MD *stress_md(enum stress_kind k)
{
	switch (k) {
	case SK_SHA1:
		return EVP_sha1();
	case SK_SHA256:
		return EVP_sha256();
	case SK_SHA512:
		return EVP_sha512();
	case SK_MD5:
		return EVP_md5();
	default:
		return NULL;
	}
}

/* One-shot, or UPDATE (with RESET) .. FINAL in two or three parts. */
static int stress_digest(int fd, uint32_t ses, const uint8_t *m, uint32_t len,
			 uint8_t *out)
{
	uint32_t a, b;
	int err;

	if (len < 3 || rnd() % 2)
		return do_crypt(fd, ses, COP_ENCRYPT, m, NULL, len, NULL, out, 0);
	a = 1 + (uint32_t)(rnd() % (len - 2));
	b = a + (uint32_t)(rnd() % (len - a));
	err = do_crypt(fd, ses, COP_ENCRYPT, m, NULL, a, NULL, out,
		       COP_FLAG_UPDATE | COP_FLAG_RESET);
	if (!err && b > a)
		err = do_crypt(fd, ses, COP_ENCRYPT, m + a, NULL, b - a, NULL,
			       out, COP_FLAG_UPDATE);
	if (!err)
		err = do_crypt(fd, ses, COP_ENCRYPT, m + b, NULL, len - b, NULL,
			       out, COP_FLAG_FINAL);
	return err;
}

/*
 * One checked operation (or pair). Returns 0, 3 for a failed ioctl (ENODEV
 * after a removal, for example) or 4 for output that does not match.
 */
static int stress_op(int fd, const struct stress_ses *s, uint8_t *pt,
		     uint8_t *ct, uint8_t *back, uint32_t len)
{
	const EVP_CIPHER *evp = stress_evp(s->kind);
	const EVP_MD *md = stress_md(s->kind);
	uint8_t iv[16], iv2[16], mac[64], mac2[64], want[64], aad[20];
	unsigned int wl = 0;
	uint32_t n;
	int err, ol = 0, ol2 = 0;

	stress_rand(iv, sizeof(iv));
	memcpy(iv2, iv, sizeof(iv));
	stress_rand(aad, sizeof(aad));
	switch (s->kind) {
	case SK_NULL:
		if (do_crypt(fd, s->id, COP_ENCRYPT, pt, ct, len, NULL, NULL, 0))
			return 3;
		return memcmp(pt, ct, len) ? 4 : 0;
	case SK_SHA1:
	case SK_SHA256:
	case SK_SHA512:
	case SK_MD5:
		if (stress_digest(fd, s->id, pt, len, mac))
			return 3;
		EVP_Digest(pt, len, want, &wl, md, NULL);
		return memcmp(mac, want, wl) ? 4 : 0;
	case SK_HMAC:
		if (stress_digest(fd, s->id, pt, len, mac))
			return 3;
		HMAC(EVP_sha256(), s->mkey, 32, pt, len, want, &wl);
		return memcmp(mac, want, wl) ? 4 : 0;
	case SK_GCM:
		/* ciphertext || tag, back with the tag checked; a flipped tag is EBADMSG. */
		n = len;
		if (do_auth(fd, s->id, COP_ENCRYPT, 0, aad, 20, pt, ct, &n, NULL,
			    0, iv))
			return 3;
		if (n != len + 16)
			return 4;
		if (rnd() % 8 == 0) {
			ct[len + (rnd() % 16)] ^= 0x10;
			err = do_auth(fd, s->id, COP_DECRYPT, 0, aad, 20, ct, back,
				      &n, NULL, 0, iv);
			return err == -EBADMSG ? 0 : err ? 3 : 4;
		}
		if (do_auth(fd, s->id, COP_DECRYPT, 0, aad, 20, ct, back, &n, NULL,
			    0, iv))
			return 3;
		return n != len || memcmp(pt, back, len) ? 4 : 0;
	case SK_TLS:
		/* In place: record = CBC(pt || HMAC(aad || pt) || padding). */
		memcpy(back, pt, len);
		n = len;
		if (do_auth(fd, s->id, COP_ENCRYPT, COP_FLAG_AEAD_TLS_TYPE, aad, 13,
			    back, back, &n, NULL, 0, iv))
			return 3;
		if (n % 16 || n < len + 32 + 1)
			return 4;
		if (do_auth(fd, s->id, COP_DECRYPT, COP_FLAG_AEAD_TLS_TYPE, aad, 13,
			    back, back, &n, NULL, 0, iv2))
			return 3;
		return n != len || memcmp(pt, back, len) ? 4 : 0;
	case SK_SRTP:
		/* A 12-byte header authenticated, the payload ciphered in place. */
		if (len > 8192)
			len = 8192;
		memcpy(back, pt, len + 12);
		n = len;
		if (do_auth(fd, s->id, COP_ENCRYPT, COP_FLAG_AEAD_SRTP_TYPE, back,
			    len + 12, back + 12, back + 12, &n, mac, 10, iv))
			return 3;
		if (memcmp(back, pt, 12))
			return 4;
		HMAC(EVP_sha1(), s->mkey, 20, back, len + 12, want, &wl);
		if (memcmp(mac, want, 10))
			return 4;
		if (do_auth(fd, s->id, COP_DECRYPT, COP_FLAG_AEAD_SRTP_TYPE, back,
			    len + 12, back + 12, back + 12, &n, mac, 10, iv))
			return 3;
		return memcmp(pt, back, len + 12) ? 4 : 0;
	default:
		break;
	}
	/* Ciphers (and AES-CBC + HMAC-SHA1): OpenSSL's ciphertext, then back. */
	{
		EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
		int ivl = s->kind == SK_AES_ECB ? 0 : 1;
		uint8_t *ref = malloc(len + 32);

		if (!c || !ref) {
			EVP_CIPHER_CTX_free(c);
			free(ref);
			return 4;
		}
		EVP_EncryptInit_ex(c, evp, NULL, s->key, ivl ? iv : NULL);
		EVP_CIPHER_CTX_set_padding(c, 0);
		EVP_EncryptUpdate(c, ref, &ol, pt, (int)len);
		EVP_EncryptFinal_ex(c, ref + ol, &ol2);
		EVP_CIPHER_CTX_free(c);
		err = do_crypt(fd, s->id, COP_ENCRYPT, pt, ct, len,
			       ivl ? iv2 : NULL, s->kind == SK_CBC_HMAC ? mac : NULL, 0);
		if (err) {
			free(ref);
			return 3;
		}
		err = ol + ol2 != (int)len || memcmp(ref, ct, len);
		free(ref);
		if (err)
			return 4;
		memcpy(iv2, iv, sizeof(iv));
		if (do_crypt(fd, s->id, COP_DECRYPT, ct, back, len,
			     ivl ? iv2 : NULL, s->kind == SK_CBC_HMAC ? mac2 : NULL, 0))
			return 3;
		if (memcmp(pt, back, len))
			return 4;
		if (s->kind == SK_CBC_HMAC) {
			/* cryptodev-linux's order: the MAC of the plaintext both ways. */
			HMAC(EVP_sha1(), s->mkey, 20, pt, len, want, &wl);
			if (memcmp(mac, want, 20) || memcmp(mac2, want, 20))
				return 4;
		}
	}
	return 0;
}

static int stress_child(int id, int nsess, int nops)
{
	static uint8_t pt[65536 + 64], ct[65536 + 64], back[65536 + 64];
	struct stress_ses ses[64];
	int fd = open_crypto();

	rng_state = 0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1);
	for (int s = 0; s < nsess && s < 64; s++) {
		int mixed = id * (nsess - 1) + s - 1;

		ses[s].kind = s == 0 ? (enum stress_kind)(id % SK_FIRST_MIXED) :
			      (enum stress_kind)(SK_FIRST_MIXED + mixed %
						 (SK_KINDS - SK_FIRST_MIXED));
		if (stress_open(fd, &ses[s])) {
			fprintf(stderr, "child %d: %s session: %s\n", id,
				stress_kind_name[ses[s].kind], strerror(errno));
			return 2;
		}
	}
	for (int op = 0; op < nops; op++) {
		int s = (int)(rnd() % (uint64_t)nsess);
		uint32_t len = stress_size();
		int r;

		for (uint32_t i = 0; i < len + 16; i += 8) {
			uint64_t v = rnd();

			memcpy(pt + i, &v, 8);
		}
		r = stress_op(fd, &ses[s], pt, ct, back, len);
		if (r) {
			fprintf(stderr, "child %d: %s op %d len %u: %s\n", id,
				stress_kind_name[ses[s].kind], op, len,
				r == 3 ? "ioctl failed" : "wrong output");
			return r;
		}
		__atomic_add_fetch(&stress_ops[ses[s].kind], 1, __ATOMIC_RELAXED);
	}
	/* Sessions left open on purpose: release must free them. */
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmd_stress(int argc, char **argv)
{
	int procs = argc > 0 ? atoi(argv[0]) : 8;
	int nsess = argc > 1 ? atoi(argv[1]) : 4;
	int nops = argc > 2 ? atoi(argv[2]) : 2000;
	int nkill = argc > 3 ? atoi(argv[3]) : 0;
	pid_t pids[64];
	int ok = 0, killed = 0, bad = 0, missing = 0;
	double t0 = now_s();

	if (procs > 64)
		procs = 64;
	if (nsess < 1 || nsess > 64)
		nsess = nsess < 1 ? 1 : 64;
	stress_ops = mmap(NULL, SK_KINDS * sizeof(*stress_ops),
			  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			  -1, 0);
	if (stress_ops == MAP_FAILED) {
		perror("mmap");
		return 100;
	}
	fflush(stdout);
	for (int i = 0; i < procs; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(stress_child(i, nsess, nops));
	}
	/* Kill the first nkill children while their requests are in flight. */
	if (nkill) {
		usleep(500 * 1000);
		for (int i = 0; i < nkill && i < procs; i++) {
			kill(pids[i], SIGKILL);
			usleep(37 * 1000);
		}
	}
	for (int i = 0; i < procs; i++) {
		int st;

		waitpid(pids[i], &st, 0);
		if (i < nkill && WIFSIGNALED(st))
			killed++;
		else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
		else {
			bad++;
			printf("child %d: status %#x\n", i, st);
		}
	}
	printf("stress procs %d sessions %d ops %d killed %d ok %d bad %d seconds %.1f\n",
	       procs, nsess, nops, killed, ok, bad, now_s() - t0);
	for (int k = 0; k < SK_KINDS; k++) {
		printf("stress kind %s ops %" PRIu64 "\n", stress_kind_name[k],
		       stress_ops[k]);
		if (!stress_ops[k])
			missing++;
	}
	check(bad == 0 && ok + killed == procs, "stress",
	      "%d children failed", bad);
	/* Enough sessions for every kind: each one ran and was checked. */
	if (procs * (nsess - 1) >= SK_KINDS - SK_FIRST_MIXED && procs >= SK_FIRST_MIXED)
		check(missing == 0, "stress ran every session kind",
		      "%d kinds without an operation", missing);
	munmap(stress_ops, SK_KINDS * sizeof(*stress_ops));
	return failures;
}

/* ------------------------------------------------------ device removal */

/*
 * Keeps a session open across a device removal (the test unbinds the
 * driver meanwhile): afterwards the open file answers ENODEV, a new open
 * fails with ENODEV, and closing is safe.
 */
static int cmd_hold(int argc, char **argv)
{
	static uint8_t key[16], buf[64], iv[16];
	int secs = argc > 0 ? atoi(argv[0]) : 5;
	int fd = open_crypto(), fd2, err;
	uint32_t ses = 0;

	err = new_session(fd, CRYPTO_AES_CBC, key, 16, 0, NULL, 0, &ses);
	if (!err)
		err = do_crypt(fd, ses, COP_ENCRYPT, buf, buf, 64, iv, NULL, 0);
	expect_errno(err, 0, "crypt before removal");
	printf("holding\n");
	sleep(secs);
	expect_errno(do_crypt(fd, ses, COP_ENCRYPT, buf, buf, 64, iv, NULL, 0),
		     ENODEV, "crypt on an open file after removal");
	expect_errno(new_session(fd, CRYPTO_AES_CBC, key, 16, 0, NULL, 0, &ses),
		     ENODEV, "new session after removal");
	fd2 = open("/dev/crypto", O_RDWR);
	expect_errno(fd2 < 0 ? -errno : 0, ENODEV, "open after removal");
	if (fd2 >= 0)
		close(fd2);
	expect_errno(ioctl(fd, CIOCFSESSION, &ses) ? -errno : 0, 0,
		     "finish session after removal");
	close(fd);
	return failures;
}

/* ------------------------------------------------- implicit IV races */

/*
 * THREADS threads each run OPS CIOCCRYPTs of LEN zero bytes on one AES-CTR
 * session with cop->iv == NULL, so every output is keystream. cryptodev
 * keeps the counter between calls: whatever the interleaving, the blocks
 * of all outputs together must be exactly the blocks of one sequential
 * keystream from the session's IV (zero). A counter block used twice shows
 * up as a duplicate and a missing block.
 */
struct race_arg {
	int fd;
	uint32_t ses;
	int ops;
	uint32_t len;
	uint8_t *out;		/* ops * len bytes */
	int err;
};

static void *race_thread(void *p)
{
	struct race_arg *a = p;
	uint8_t *zero = calloc(1, a->len);

	for (int i = 0; i < a->ops && !a->err; i++)
		a->err = do_crypt(a->fd, a->ses, COP_ENCRYPT, zero,
				  a->out + (size_t)i * a->len, a->len, NULL,
				  NULL, 0);
	free(zero);
	return NULL;
}

static int cmp_block(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

static int cmd_ivrace(int argc, char **argv)
{
	static const uint8_t key[16] = { 0x2b, 0x7e, 0x15, 0x16 };
	int threads = argc > 0 ? atoi(argv[0]) : 8;
	int ops = argc > 1 ? atoi(argv[1]) : 50;
	uint32_t len = argc > 2 ? (uint32_t)atoi(argv[2]) : 64;
	struct race_arg args[64];
	pthread_t tids[64];
	size_t total, nblk, dups = 0, miss = 0;
	uint8_t *all, *ref, *zero, iv[16] = { 0 }, next[16], want[16];
	EVP_CIPHER_CTX *ctx;
	int fd = open_crypto(), outl, err = 0;
	uint32_t ses = 0;

	if (threads < 1 || threads > 64 || ops < 1 || len < 16 || len % 16)
		return 100;
	total = (size_t)threads * ops * len;
	nblk = total / 16;
	all = malloc(total);
	ref = malloc(total + 16);
	zero = calloc(1, total + 16);
	if (new_session(fd, CRYPTO_AES_CTR, key, 16, 0, NULL, 0, &ses))
		return 100;
	for (int t = 0; t < threads; t++) {
		args[t] = (struct race_arg){ fd, ses, ops, len,
					     all + (size_t)t * ops * len, 0 };
		pthread_create(&tids[t], NULL, race_thread, &args[t]);
	}
	for (int t = 0; t < threads; t++) {
		pthread_join(tids[t], NULL);
		if (args[t].err)
			err = args[t].err;
	}
	expect_errno(err, 0, "ivrace: every operation succeeded");
	/* One more op: the session's counter must stand right after them. */
	err = do_crypt(fd, ses, COP_ENCRYPT, zero, next, 16, NULL, NULL, 0);
	expect_errno(err, 0, "ivrace: the follow-up operation");

	ctx = EVP_CIPHER_CTX_new();
	EVP_EncryptInit_ex(ctx, EVP_aes_128_ctr(), NULL, key, iv);
	EVP_EncryptUpdate(ctx, ref, &outl, zero, (int)total + 16);
	EVP_CIPHER_CTX_free(ctx);
	memcpy(want, ref + total, 16);

	qsort(all, nblk, 16, cmp_block);
	qsort(ref, nblk, 16, cmp_block);
	for (size_t i = 1; i < nblk; i++)
		if (!memcmp(all + 16 * (i - 1), all + 16 * i, 16))
			dups++;
	for (size_t i = 0, j = 0; i < nblk; i++) {
		while (j < nblk && memcmp(all + 16 * j, ref + 16 * i, 16) < 0)
			j++;
		if (j == nblk || memcmp(all + 16 * j, ref + 16 * i, 16))
			miss++;
	}
	printf("ivrace threads %d ops %d len %u blocks %zu duplicated %zu missing %zu\n",
	       threads, ops, len, nblk, dups, miss);
	check(!dups && !miss && !memcmp(all, ref, nblk * 16),
	      "ivrace: outputs are one sequential keystream (no counter reused)",
	      "%zu duplicated, %zu missing of %zu blocks", dups, miss, nblk);
	check(!memcmp(next, want, 16), "ivrace: the counter ends after all blocks",
	      "the follow-up block is not keystream block %zu", nblk);
	end_session(fd, ses);
	close(fd);
	free(all);
	free(ref);
	free(zero);
	return failures;
}

/* -------------------------------------------------- memory in flight */

/*
 * THREADS threads each run OPS CIOCCRYPTs of LEN bytes (explicit IV, so
 * they may run in parallel) from one shared buffer: the process itself
 * uses little memory, the kernel bounce pages are what the test measures.
 */
struct inflight_arg {
	int fd;
	uint32_t ses;
	int ops;
	uint32_t len;
	uint8_t *buf;
	int err;
	uint16_t flags;
};

static void *inflight_thread(void *p)
{
	struct inflight_arg *a = p;
	uint8_t iv[16] = { 1 };

	/* Bounce pages (COP_FLAG_NO_ZC) or the caller's own (zero-copy). */
	for (int i = 0; i < a->ops && !a->err; i++)
		a->err = do_crypt(a->fd, a->ses, COP_ENCRYPT, a->buf, a->buf,
				  a->len, iv, NULL, a->flags);
	return NULL;
}

static int cmd_inflight(int argc, char **argv)
{
	static const uint8_t key[16] = { 3 };
	int threads = argc > 0 ? atoi(argv[0]) : 16;
	int ops = argc > 1 ? atoi(argv[1]) : 4;
	uint32_t len = argc > 2 ? (uint32_t)atoi(argv[2]) : 1 << 20;
	int zc = argc > 3 && !strcmp(argv[3], "zc");
	struct inflight_arg args[64];
	pthread_t tids[64];
	int fd = open_crypto(), err = 0;
	uint32_t ses = 0;
	uint8_t *buf;

	if (threads < 1 || threads > 64 || len % 16)
		return 100;
	buf = calloc(1, len);
	if (new_session(fd, CRYPTO_AES_CBC, key, 16, 0, NULL, 0, &ses))
		return 100;
	for (int t = 0; t < threads; t++) {
		args[t] = (struct inflight_arg){ fd, ses, ops, len, buf, 0,
						 zc ? 0 : COP_FLAG_NO_ZC };
		pthread_create(&tids[t], NULL, inflight_thread, &args[t]);
	}
	for (int t = 0; t < threads; t++) {
		pthread_join(tids[t], NULL);
		if (args[t].err)
			err = args[t].err;
	}
	expect_errno(err, 0, "inflight: every operation succeeded");
	end_session(fd, ses);
	close(fd);
	return failures;
}

/* --------------------------------------------- stale bytes and waits */

/*
 * Fills dst with a marker, encrypts LEN bytes and prints the errno and how
 * many output bytes still hold the marker or are zero: a device that
 * writes less than it should must not make old kernel memory appear.
 */
static int cmd_stale(int argc, char **argv)
{
	static const uint8_t key[16] = { 5 };
	uint32_t len = argc > 0 ? (uint32_t)atoi(argv[0]) : 4096;
	int fd = open_crypto(), err;
	uint8_t *src, *dst, *ref, iv[16] = { 0 }, iv2[16] = { 0 };
	size_t same = 0, zero = 0, marker = 0, other = 0;
	EVP_CIPHER_CTX *ctx;
	uint32_t ses = 0;
	int outl;

	if (len % 16 || !len)
		return 100;
	src = malloc(len);
	dst = malloc(len);
	ref = malloc(len);
	fill_plaintext(src, len, 77);
	memset(dst, 0xa5, len);
	if (new_session(fd, CRYPTO_AES_CBC, key, 16, 0, NULL, 0, &ses))
		return 100;
	err = do_crypt(fd, ses, COP_ENCRYPT, src, dst, len, iv, NULL, 0);
	ctx = EVP_CIPHER_CTX_new();
	EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, iv2);
	EVP_CIPHER_CTX_set_padding(ctx, 0);
	EVP_EncryptUpdate(ctx, ref, &outl, src, (int)len);
	EVP_CIPHER_CTX_free(ctx);
	for (uint32_t i = 0; i < len; i++) {
		if (dst[i] == ref[i])
			same++;
		else if (dst[i] == 0xa5)
			marker++;
		else if (!dst[i])
			zero++;
		else
			other++;
	}
	printf("stale len %u errno %d same %zu zero %zu marker %zu other %zu\n",
	       len, -err, same, zero, marker, other);
	end_session(fd, ses);
	close(fd);
	return 0;
}

/*
 * One CIOCCRYPT (after SECS of sleep and, if GOFILE is given, once GOFILE
 * exists), then its errno (and, with GOFILE, how long it took); for stall
 * tests: wait SECS [LEN [GOFILE]].
 */
static int cmd_wait(int argc, char **argv)
{
	static const uint8_t key[16] = { 6 };
	static uint8_t buf[4096], iv[16];
	int secs = argc > 0 ? atoi(argv[0]) : 0;
	uint32_t len = argc > 1 ? (uint32_t)atoi(argv[1]) : 64;
	const char *go = argc > 2 ? argv[2] : NULL;
	int fd = open_crypto(), err;
	uint32_t ses = 0;
	double t0;

	err = new_session(fd, CRYPTO_AES_CBC, key, 16, 0, NULL, 0, &ses);
	printf("session errno %d\n", -err);
	sleep(secs);
	for (int i = 0; go && i < 3000 && access(go, F_OK); i++)
		usleep(100000);
	printf("crypt start\n");
	t0 = now_s();
	err = do_crypt(fd, ses, COP_ENCRYPT, buf, buf,
		       len > sizeof(buf) ? sizeof(buf) : len, iv, NULL, 0);
	printf("crypt errno %d\n", -err);
	if (go)
		printf("crypt ms %.0f\n", (now_s() - t0) * 1e3);
	err = ioctl(fd, CIOCFSESSION, &ses) ? -errno : 0;
	printf("finish errno %d\n", -err);
	close(fd);
	printf("closed\n");
	return 0;
}

/* --------------------------------------------------------------- life- */

static volatile sig_atomic_t life_signals;
static struct timespec life_stop_at;

static double life_ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1e3 + (t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void life_on_alarm(int sig)
{
	struct timespec t;
	static const struct itimerval off;

	(void)sig;
	life_signals++;
	if (!life_stop_at.tv_sec)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t);
	if (t.tv_sec > life_stop_at.tv_sec ||
	    (t.tv_sec == life_stop_at.tv_sec && t.tv_nsec >= life_stop_at.tv_nsec))
		setitimer(ITIMER_REAL, &off, NULL);
}

static void life_handler(int restart)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = life_on_alarm;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
}

static void life_itimer(long usec, long interval_usec)
{
	struct itimerval it;

	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = usec / 1000000;
	it.it_value.tv_usec = usec % 1000000;
	it.it_interval.tv_sec = interval_usec / 1000000;
	it.it_interval.tv_usec = interval_usec % 1000000;
	setitimer(ITIMER_REAL, &it, NULL);
}

/*
 * life-abandon LEN timeout|eintr ZC|NOZC GOFILE: one AES-128-CBC CIOCCRYPT
 * into an mmap'd dst filled with 0x5a on a stalled device; "eintr" first
 * arms a 0.5 s alarm whose handler has no SA_RESTART. After the ioctl
 * returns, dst is zeroed; once GOFILE exists (the host has released the
 * stall and the device can have answered), prints how many dst bytes are
 * no longer zero: the device must not have written them.
 */
static int cmd_life_abandon(int argc, char **argv)
{
	static const uint8_t key[16] = { 9 };
	uint32_t len = argc > 0 ? (uint32_t)atoi(argv[0]) : 4096;
	int eintr = argc > 1 && !strcmp(argv[1], "eintr");
	uint16_t flags = argc > 2 && !strcmp(argv[2], "NOZC") ? COP_FLAG_NO_ZC : 0;
	const char *go = argc > 3 ? argv[3] : "/tmp/life-go";
	int fd = open_crypto(), err;
	uint8_t *src, *dst, iv[16] = { 1 };
	struct timespec t0;
	size_t nonzero = 0;
	uint32_t ses = 0;
	int i;

	if (!len || len % 16)
		return 100;
	src = malloc(len);
	dst = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!src || dst == MAP_FAILED)
		return 100;
	fill_plaintext(src, len, 5);
	memset(dst, 0x5a, len);
	err = new_session(fd, CRYPTO_AES_CBC, key, 16, 0, NULL, 0, &ses);
	printf("life session errno %d\n", -err);
	if (err)
		return 1;
	if (eintr) {
		life_handler(0);
		life_itimer(500000, 0);
	}
	printf("life start\n");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = do_crypt(fd, ses, COP_ENCRYPT, src, dst, len, iv, NULL, flags);
	printf("life crypt errno %d ms %.0f signals %d\n", -err,
	       life_ms_since(&t0), (int)life_signals);
	memset(dst, 0, len);
	printf("life zeroed\n");
	for (i = 0; i < 1200 && access(go, F_OK); i++)
		usleep(100000);
	for (uint32_t k = 0; k < len; k++)
		nonzero += dst[k] != 0;
	printf("life dst len %u nonzero %zu\n", len, nonzero);
	end_session(fd, ses);
	close(fd);
	return 0;
}

/*
 * life-crypt LEN ALARM_S: one AES-128-CBC CIOCCRYPT of LEN bytes (zero-copy),
 * with an alarm of ALARM_S seconds (handler without SA_RESTART) when > 0.
 */
static int cmd_life_crypt(int argc, char **argv)
{
	static const uint8_t key[16] = { 10 };
	uint32_t len = argc > 0 ? (uint32_t)atoi(argv[0]) : 16;
	int secs = argc > 1 ? atoi(argv[1]) : 0;
	int fd = open_crypto(), err;
	uint8_t *src, *dst, iv[16] = { 2 };
	struct timespec t0;
	uint32_t ses = 0;

	if (!len || len % 16)
		return 100;
	src = calloc(1, len);
	dst = calloc(1, len);
	if (!src || !dst)
		return 100;
	err = new_session(fd, CRYPTO_AES_CBC, key, 16, 0, NULL, 0, &ses);
	printf("life session errno %d\n", -err);
	if (err)
		return 1;
	if (secs > 0) {
		life_handler(0);
		alarm(secs);
	}
	printf("life-crypt start\n");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = do_crypt(fd, ses, COP_ENCRYPT, src, dst, len, iv, NULL, 0);
	printf("life-crypt len %u errno %d ms %.0f\n", len, -err,
	       life_ms_since(&t0));
	end_session(fd, ses);
	close(fd);
	return 0;
}

/*
 * life-restart LEN USEC SECS: SIGALRM every USEC us (handler with
 * SA_RESTART), stopped by the handler after SECS s, during one AES-128-CBC
 * CIOCCRYPT of LEN bytes; checks the output against OpenSSL.
 */
static int cmd_life_restart(int argc, char **argv)
{
	static const uint8_t key[16] = { 11 };
	uint32_t len = argc > 0 ? (uint32_t)atoi(argv[0]) : (1u << 20);
	long usec = argc > 1 ? atol(argv[1]) : 500;
	int secs = argc > 2 ? atoi(argv[2]) : 20;
	int fd = open_crypto(), err, outl = 0;
	uint8_t *src, *dst, *ref, iv[16] = { 3 }, iv2[16] = { 3 };
	EVP_CIPHER_CTX *ctx;
	struct timespec t0;
	uint32_t ses = 0;

	if (!len || len % 16 || usec <= 0)
		return 100;
	src = malloc(len);
	dst = calloc(1, len);
	ref = malloc(len);
	if (!src || !dst || !ref)
		return 100;
	fill_plaintext(src, len, 6);
	err = new_session(fd, CRYPTO_AES_CBC, key, 16, 0, NULL, 0, &ses);
	printf("life session errno %d\n", -err);
	if (err)
		return 1;
	life_handler(1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	life_stop_at = t0;
	life_stop_at.tv_sec += secs;
	life_itimer(usec, usec);
	err = do_crypt(fd, ses, COP_ENCRYPT, src, dst, len, iv, NULL, 0);
	printf("life-restart len %u errno %d ms %.0f signals %d", len, -err,
	       life_ms_since(&t0), (int)life_signals);
	life_stop_at.tv_sec = 0;
	life_itimer(0, 0);
	ctx = EVP_CIPHER_CTX_new();
	EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, iv2);
	EVP_CIPHER_CTX_set_padding(ctx, 0);
	EVP_EncryptUpdate(ctx, ref, &outl, src, (int)len);
	EVP_CIPHER_CTX_free(ctx);
	printf(" match %d\n", !memcmp(dst, ref, len));
	end_session(fd, ses);
	close(fd);
	return 0;
}

/* --------------------------------------------------------------- bench */

/* What `bench` and `speed` measure: a cipher, a plain hash, an HMAC. */
enum bench_alg { BENCH_AES_256_CBC, BENCH_SHA256, BENCH_HMAC_SHA256 };

static const char *const bench_alg_names[] = {
	"aes-256-cbc", "sha256", "hmac-sha256",
};

/* -1 for an unknown name. */
static int bench_alg_of(const char *name)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(name, bench_alg_names[i]))
			return i;
	return -1;
}

/* One measuring loop's state: a /dev/crypto session or an OpenSSL context. */
struct bench_ctx {
	int alg, dev;		/* dev: 0 OpenSSL, 1 zero-copy, 2 NO_ZC */
	int fd;
	uint32_t ses;
	EVP_CIPHER_CTX *cctx;
	EVP_MD_CTX *mctx;
	EVP_MAC_CTX *hctx;
	uint8_t iv[16], digest[64];
};

static const uint8_t bench_key[32] = { 7 };

static int bench_open(struct bench_ctx *b, int alg, int dev)
{
	memset(b, 0, sizeof(*b));
	b->alg = alg;
	b->dev = dev;
	b->fd = -1;
	b->iv[0] = 9;
	if (dev) {
		int err;

		b->fd = open_crypto();
		if (alg == BENCH_AES_256_CBC)
			err = new_session(b->fd, CRYPTO_AES_CBC, bench_key, 32,
					  0, NULL, 0, &b->ses);
		else if (alg == BENCH_SHA256)
			err = new_session(b->fd, 0, NULL, 0, CRYPTO_SHA2_256,
					  NULL, 0, &b->ses);
		else
			err = new_session(b->fd, 0, NULL, 0,
					  CRYPTO_SHA2_256_HMAC, bench_key, 32,
					  &b->ses);
		return err;
	}
	if (alg == BENCH_AES_256_CBC) {
		b->cctx = EVP_CIPHER_CTX_new();
		return b->cctx ? 0 : -ENOMEM;
	}
	if (alg == BENCH_SHA256) {
		b->mctx = EVP_MD_CTX_new();
		return b->mctx ? 0 : -ENOMEM;
	} else {
		EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_utf8_string("digest",
							 (char *)"SHA256", 0),
			OSSL_PARAM_construct_end(),
		};

		b->hctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
		EVP_MAC_free(mac);
		if (!b->hctx ||
		    !EVP_MAC_init(b->hctx, bench_key, sizeof(bench_key), params))
			return -EINVAL;
		return 0;
	}
}

/* One operation on LEN bytes: what one CIOCCRYPT does, or its OpenSSL twin. */
static int bench_op(struct bench_ctx *b, const uint8_t *src, uint8_t *dst,
		    uint32_t len)
{
	size_t dl = 0;
	unsigned int ml = 0;
	int outl;

	if (b->dev) {
		uint16_t flags = b->dev == 2 ? COP_FLAG_NO_ZC : 0;

		if (b->alg == BENCH_AES_256_CBC)
			return do_crypt(b->fd, b->ses, COP_ENCRYPT, src, dst,
					len, b->iv, NULL, flags);
		return do_crypt(b->fd, b->ses, COP_ENCRYPT, src, NULL, len,
				NULL, b->digest, flags);
	}
	switch (b->alg) {
	case BENCH_AES_256_CBC:
		if (!EVP_EncryptInit_ex(b->cctx, EVP_aes_256_cbc(), NULL,
					bench_key, b->iv) ||
		    !EVP_CIPHER_CTX_set_padding(b->cctx, 0) ||
		    !EVP_EncryptUpdate(b->cctx, dst, &outl, src, (int)len))
			return -EINVAL;
		return 0;
	case BENCH_SHA256:
		if (!EVP_DigestInit_ex(b->mctx, EVP_sha256(), NULL) ||
		    !EVP_DigestUpdate(b->mctx, src, len) ||
		    !EVP_DigestFinal_ex(b->mctx, b->digest, &ml))
			return -EINVAL;
		return 0;
	default:
		/* NULL key: restart with the key set in bench_open. */
		if (!EVP_MAC_init(b->hctx, NULL, 0, NULL) ||
		    !EVP_MAC_update(b->hctx, src, len) ||
		    !EVP_MAC_final(b->hctx, b->digest, &dl, sizeof(b->digest)))
			return -EINVAL;
		return 0;
	}
}

static void bench_close(struct bench_ctx *b)
{
	if (b->fd >= 0) {
		end_session(b->fd, b->ses);
		close(b->fd);
	}
	EVP_CIPHER_CTX_free(b->cctx);
	EVP_MD_CTX_free(b->mctx);
	EVP_MAC_CTX_free(b->hctx);
}

/*
 * Operations done until the clock passes UNTIL (checked every 8, at least 8
 * done), or -1.
 */
static long bench_loop(struct bench_ctx *b, const uint8_t *buf, uint8_t *out,
		       uint32_t size, double until)
{
	long ops = 0;

	do {
		for (int i = 0; i < 8; i++)
			if (bench_op(b, buf, out, size))
				return -1;
		ops += 8;
	} while (now_s() < until);
	return ops;
}

/*
 * One measuring process: set up (open, session, OpenSSL context), say so on
 * READY, wait until GO closes, measure for MS, send the count on RESULT.
 * Setup is outside the window: under TCG an OpenSSL provider fetch or a
 * fork can take longer than a short window.
 */
static void bench_child(int dev, int alg, uint32_t size, double ms, int ready,
			int go, int result)
{
	uint8_t *buf = calloc(1, size), *out = calloc(1, size);
	struct bench_ctx b;
	long ops = -1;
	char c = 0;
	int ok = buf && out && !bench_open(&b, alg, dev);

	if (write(ready, &c, 1) != 1 || read(go, &c, 1) < 0)
		_exit(1);
	if (ok)
		ops = bench_loop(&b, buf, out, size, now_s() + ms / 1000);
	if (write(result, &ops, sizeof(ops)) != sizeof(ops))
		_exit(1);
	_exit(0);
}

/*
 * bench dev|devnozc|sw SIZE PROCS MS [ALG]: one JSON line. The PROCS
 * processes start measuring together once all are set up; seconds run from
 * that start to the last one's end.
 */
static int cmd_bench(int argc, char **argv)
{
	int dev, procs, alg = BENCH_AES_256_CBC, pfd[2], ready[2], go[2];
	uint32_t size;
	double ms, t0, secs;
	long total = 0;
	char c;

	if (argc < 4)
		return 100;
	/* dev: zero-copy; devnozc: COP_FLAG_NO_ZC (bounce pages); sw: OpenSSL */
	dev = !strcmp(argv[0], "dev") ? 1 : !strcmp(argv[0], "devnozc") ? 2 : 0;
	size = (uint32_t)atoi(argv[1]);
	procs = atoi(argv[2]);
	ms = atof(argv[3]);
	if (argc > 4)
		alg = bench_alg_of(argv[4]);
	if (alg < 0 || size < 1 || size > 1 << 20 || procs < 1 || procs > 64) {
		printf("{\"error\":\"bad arguments\"}\n");
		return 100;
	}
	if (pipe(pfd) || pipe(ready) || pipe(go))
		return 100;
	for (int i = 0; i < procs; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			close(go[1]);
			bench_child(dev, alg, size, ms, ready[1], go[0], pfd[1]);
		}
		if (pid < 0) {
			printf("{\"error\":\"fork failed\"}\n");
			return 1;
		}
	}
	/* Only the children hold the write ends now: a dead child reads as EOF. */
	close(ready[1]);
	close(pfd[1]);
	for (int i = 0; i < procs; i++)
		if (read(ready[0], &c, 1) != 1) {
			printf("{\"error\":\"child failed\"}\n");
			return 1;
		}
	t0 = now_s();
	close(go[1]);
	for (int i = 0; i < procs; i++) {
		long ops;

		if (read(pfd[0], &ops, sizeof(ops)) != sizeof(ops) || ops < 0) {
			printf("{\"error\":\"child failed\"}\n");
			return 1;
		}
		total += ops;
	}
	secs = now_s() - t0;
	while (wait(NULL) > 0)
		;
	printf("{\"mode\":\"%s\",\"alg\":\"%s\",\"size\":%u,\"procs\":%d,\"ops\":%ld,\"seconds\":%.3f,\"opsPerSec\":%.1f,\"MBps\":%.3f}\n",
	       argv[0], bench_alg_names[alg], size, procs, total, secs,
	       total / secs, total * (double)size / secs / 1e6);
	return 0;
}

/*
 * speed [ALG] [SECONDS]: cryptodev-linux's tests/speed style. For each size,
 * loop on /dev/crypto for SECONDS and print one line:
 *   Encrypting in chunks of 1024 bytes: done. 12.34 MB in 1.00 secs: 12.34 MB/sec
 * ("Hashing" for sha256 and hmac-sha256; MB are 10^6 bytes).
 */
static int cmd_speed(int argc, char **argv)
{
	static const uint32_t sizes[] = { 64, 1024, 16384, 65536 };
	int alg = argc > 0 ? bench_alg_of(argv[0]) : BENCH_AES_256_CBC;
	double secs = argc > 1 ? atof(argv[1]) : 5;
	uint8_t *buf = calloc(1, 65536), *out = calloc(1, 65536);
	int rc = 0;

	if (alg < 0 || !(secs > 0 && secs <= 600) || !buf || !out) {
		fprintf(stderr, "usage: speed [aes-256-cbc|sha256|hmac-sha256] [SECONDS]\n");
		return 100;
	}
	printf("Testing %s through /dev/crypto:\n", bench_alg_names[alg]);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && !rc; i++) {
		struct bench_ctx b;
		double t0, t;
		uint64_t bytes = 0;
		int err;

		printf("\t%s in chunks of %u bytes: ",
		       alg == BENCH_AES_256_CBC ? "Encrypting" : "Hashing",
		       sizes[i]);
		fflush(stdout);
		err = bench_open(&b, alg, 1);
		t0 = now_s();
		do {
			for (int k = 0; k < 8 && !err; k++) {
				err = bench_op(&b, buf, out, sizes[i]);
				bytes += sizes[i];
			}
			t = now_s() - t0;
		} while (!err && t < secs);
		bench_close(&b);
		if (err) {
			printf("failed: errno %d\n", -err);
			rc = 1;
			break;
		}
		printf("done. %.2f MB in %.2f secs: %.2f MB/sec\n",
		       bytes / 1e6, t, bytes / 1e6 / t);
	}
	free(buf);
	free(out);
	return rc;
}

/* ------------------------------------------- hashes, HMAC, AEAD, fallback */

/* The module's fallback parameter (Y/N); absent reads as on. */
static int fallback_on(void)
{
	FILE *f = fopen("/sys/module/vlab_cryptodev/parameters/fallback", "r");
	int c = f ? fgetc(f) : 'Y';

	if (f)
		fclose(f);
	return c == 'Y' || c == '1';
}

static int do_auth(int fd, uint32_t ses, int op, uint16_t flags,
		   const uint8_t *auth, uint32_t auth_len, uint8_t *src,
		   uint8_t *dst, uint32_t *len, uint8_t *tag, uint32_t tag_len,
		   uint8_t *iv)
{
	struct crypt_auth_op a;

	memset(&a, 0, sizeof(a));
	a.ses = ses;
	a.op = op;
	a.flags = flags;
	a.len = *len;
	a.auth_len = auth_len;
	a.auth_src = (uint8_t *)auth;
	a.src = src;
	a.dst = dst;
	a.tag = tag;
	a.tag_len = tag_len;
	a.iv = iv;
	if (ioctl(fd, CIOCAUTHCRYPT, &a))
		return -errno;
	*len = a.len;
	return 0;
}

struct alg_desc {
	uint32_t id;
	const char *name;
	const char *evp;	/* OpenSSL digest */
	int hmac;
};

static const struct alg_desc hash_algs[] = {
	{ CRYPTO_MD5, "MD5", "MD5", 0 },
	{ CRYPTO_SHA1, "SHA1", "SHA1", 0 },
	{ CRYPTO_SHA2_224, "SHA224", "SHA224", 0 },
	{ CRYPTO_SHA2_256, "SHA256", "SHA256", 0 },
	{ CRYPTO_SHA2_384, "SHA384", "SHA384", 0 },
	{ CRYPTO_SHA2_512, "SHA512", "SHA512", 0 },
	{ CRYPTO_MD5_HMAC, "HMAC-MD5", "MD5", 1 },
	{ CRYPTO_SHA1_HMAC, "HMAC-SHA1", "SHA1", 1 },
	{ CRYPTO_SHA2_224_HMAC, "HMAC-SHA224", "SHA224", 1 },
	{ CRYPTO_SHA2_256_HMAC, "HMAC-SHA256", "SHA256", 1 },
	{ CRYPTO_SHA2_384_HMAC, "HMAC-SHA384", "SHA384", 1 },
	{ CRYPTO_SHA2_512_HMAC, "HMAC-SHA512", "SHA512", 1 },
};

/* The reference: OpenSSL in the guest's own userspace. */
static unsigned int ref_mac(const struct alg_desc *a, const uint8_t *key,
			    size_t keylen, const uint8_t *d, size_t n,
			    uint8_t *out)
{
	const EVP_MD *md = EVP_get_digestbyname(a->evp);
	unsigned int len = 0;

	if (a->hmac)
		HMAC(md, key, (int)keylen, d, n, out, &len);
	else
		EVP_Digest(d, n, out, &len, md, NULL);
	return len;
}

struct hash_kat {
	uint32_t alg;
	const char *name, *key, *msg, *digest;
};

#define MSG_ABC "616263"
#define MSG_448 "6162636462636465636465666465666765666768666768696768696a" \
		"68696a6b696a6b6c6a6b6c6d6b6c6d6e6c6d6e6f6d6e6f706e6f7071"
#define HI_THERE "4869205468657265"
#define JEFE_MSG "7768617420646f2079612077616e7420666f72206e6f7468696e673f"
#define K16_0B "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"
#define K80_AA K20_AA K20_AA K20_AA K20_AA

/* FIPS 180-4 examples ("abc", the 448-bit message), RFC 1321, RFC 2202, RFC 4231. */
static const struct hash_kat hash_kats[] = {
	{ CRYPTO_MD5, "RFC1321 MD5 abc", NULL, MSG_ABC,
	  "900150983cd24fb0d6963f7d28e17f72" },
	{ CRYPTO_SHA1, "FIPS180-4 SHA1 abc", NULL, MSG_ABC,
	  "a9993e364706816aba3e25717850c26c9cd0d89d" },
	{ CRYPTO_SHA1, "FIPS180-4 SHA1 448-bit", NULL, MSG_448,
	  "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
	{ CRYPTO_SHA2_224, "FIPS180-4 SHA224 abc", NULL, MSG_ABC,
	  "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7" },
	{ CRYPTO_SHA2_256, "FIPS180-4 SHA256 abc", NULL, MSG_ABC,
	  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
	{ CRYPTO_SHA2_256, "FIPS180-4 SHA256 448-bit", NULL, MSG_448,
	  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	{ CRYPTO_SHA2_384, "FIPS180-4 SHA384 abc", NULL, MSG_ABC,
	  "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded163"
	  "1a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7" },
	{ CRYPTO_SHA2_512, "FIPS180-4 SHA512 abc", NULL, MSG_ABC,
	  "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
	  "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f" },
	{ CRYPTO_MD5_HMAC, "RFC2202 TC1 HMAC-MD5", K16_0B, HI_THERE,
	  "9294727a3638bb1c13f48ef8158bfc9d" },
	{ CRYPTO_MD5_HMAC, "RFC2202 TC2 HMAC-MD5", "4a656665", JEFE_MSG,
	  "750c783e6ab0b503eaa86e310a5db738" },
	{ CRYPTO_SHA1_HMAC, "RFC2202 TC1 HMAC-SHA1", K20_0B, HI_THERE,
	  "b617318655057264e28bc0b6fb378c8ef146be00" },
	{ CRYPTO_SHA1_HMAC, "RFC2202 TC2 HMAC-SHA1", "4a656665", JEFE_MSG,
	  "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79" },
	{ CRYPTO_SHA1_HMAC, "RFC2202 TC6 HMAC-SHA1 80-byte key", K80_AA,
	  "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a"
	  "65204b6579202d2048617368204b6579204669727374",
	  "aa4ae5e15272d00e95705637ce8a3b55ed402112" },
	{ CRYPTO_SHA2_224_HMAC, "RFC4231 TC1 HMAC-SHA224", K20_0B, HI_THERE,
	  "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22" },
	{ CRYPTO_SHA2_384_HMAC, "RFC4231 TC1 HMAC-SHA384", K20_0B, HI_THERE,
	  "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec6"
	  "82aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6" },
	{ CRYPTO_SHA2_384_HMAC, "RFC4231 TC6 HMAC-SHA384 131-byte key",
	  K131_AA, D_TC6,
	  "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f"
	  "3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952" },
	{ CRYPTO_SHA2_512_HMAC, "RFC4231 TC6 HMAC-SHA512 131-byte key",
	  K131_AA, D_TC6,
	  "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
	  "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598" },
};

static void print_info(int fd, uint32_t ses, const char *kind)
{
	struct session_info_op si;

	memset(&si, 0, sizeof(si));
	si.ses = ses;
	if (ioctl(fd, CIOCGSESSINFO, &si)) {
		printf("info %s errno %d\n", kind, errno);
		return;
	}
	printf("info %s cipher=%s/%s hash=%s/%s flags=%u\n", kind,
	       si.cipher_info.cra_name[0] ? si.cipher_info.cra_name : "-",
	       si.cipher_info.cra_driver_name[0] ?
	       si.cipher_info.cra_driver_name : "-",
	       si.hash_info.cra_name[0] ? si.hash_info.cra_name : "-",
	       si.hash_info.cra_driver_name[0] ?
	       si.hash_info.cra_driver_name : "-", si.flags);
}

static void algs_hash_kats(int fd)
{
	for (size_t i = 0; i < sizeof(hash_kats) / sizeof(hash_kats[0]); i++) {
		const struct hash_kat *k = &hash_kats[i];
		uint8_t key[200], msg[200], want[64], mac[64];
		size_t keylen = k->key ? unhex(k->key, key) : 0;
		size_t len = unhex(k->msg, msg), dl = unhex(k->digest, want);
		uint32_t ses = 0;
		int err;

		err = new_session(fd, 0, NULL, 0, k->alg, k->key ? key : NULL,
				  keylen, &ses);
		if (!err) {
			memset(mac, 0, sizeof(mac));
			err = do_crypt(fd, ses, COP_ENCRYPT, msg, NULL, len,
				       NULL, mac, 0);
			end_session(fd, ses);
		}
		check(!err && !memcmp(mac, want, dl), k->name,
		      "err %d or mismatch", err);
	}
}

/* Multi-part (UPDATE..FINAL) split at random points == one-shot == OpenSSL. */
static void algs_multipart(int fd, unsigned int seed)
{
	static uint8_t msg[20000];
	uint8_t key[200], want[64], one[64], multi[64], mac[64];
	char name[128];

	srand(seed);
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)rand();
	for (size_t a = 0; a < sizeof(hash_algs) / sizeof(hash_algs[0]); a++) {
		const struct alg_desc *d = &hash_algs[a];
		size_t keylen = d->hmac ? 1 + rand() % 150 : 0;
		int bad = 0, err = 0;
		uint32_t ses = 0;

		for (size_t i = 0; i < keylen; i++)
			key[i] = (uint8_t)rand();
		err = new_session(fd, 0, NULL, 0, d->id, keylen ? key : NULL,
				  keylen, &ses);
		snprintf(name, sizeof(name), "%s multi-part == one-shot == OpenSSL",
			 d->name);
		if (err) {
			check(0, name, "session: %s", strerror(-err));
			continue;
		}
		for (int round = 0; round < 6 && !err && !bad; round++) {
			size_t len = (size_t)rand() % sizeof(msg);
			size_t cut[3], off = 0;
			unsigned int wl = ref_mac(d, key, keylen, msg, len, want);

			for (int c = 0; c < 3; c++)
				cut[c] = len ? (size_t)rand() % (len + 1) : 0;
			/* sort the cuts */
			for (int x = 0; x < 3; x++)
				for (int y = x + 1; y < 3; y++)
					if (cut[y] < cut[x]) {
						size_t t = cut[x];

						cut[x] = cut[y];
						cut[y] = t;
					}
			err = do_crypt(fd, ses, COP_ENCRYPT, msg, NULL, len, NULL,
				       one, 0);
			/*
			 * A stale start, then RESET on the first update sent
			 * (a cut at 0 sends nothing) discards it.
			 */
			if (!err)
				err = do_crypt(fd, ses, COP_ENCRYPT, msg + 1, NULL,
					       7, NULL, mac, COP_FLAG_UPDATE);
			for (int c = 0; c < 3 && !err; c++) {
				if (cut[c] == off)
					continue;
				err = do_crypt(fd, ses, COP_ENCRYPT, msg + off,
					       NULL, (uint32_t)(cut[c] - off), NULL,
					       mac, COP_FLAG_UPDATE |
					       (off == 0 ? COP_FLAG_RESET : 0));
				off = cut[c];
			}
			if (!err && off == 0)
				err = do_crypt(fd, ses, COP_ENCRYPT, msg, NULL, 0,
					       NULL, mac, COP_FLAG_UPDATE |
					       COP_FLAG_RESET);
			if (!err)
				err = do_crypt(fd, ses, COP_ENCRYPT, msg + off,
					       NULL, (uint32_t)(len - off), NULL,
					       multi, COP_FLAG_FINAL);
			bad = memcmp(one, want, wl) || memcmp(multi, want, wl);
			if (bad || err)
				printf("# %s len %zu cuts %zu %zu %zu err %d\n",
				       d->name, len, cut[0], cut[1], cut[2], err);
		}
		end_session(fd, ses);
		check(!err && !bad, name, "err %d mismatch %d (seed %u)", err,
		      bad, seed);
	}
}

/* cryptodev-linux's order: MAC over the plaintext in both directions. */
static void algs_cipher_mac(int fd, uint32_t cipher, const EVP_CIPHER *evp,
			    size_t keylen, size_t ivlen, const struct alg_desc *d,
			    const char *name)
{
	static uint8_t pt[4096 + 64], ct[4096 + 64], out[4096 + 64];
	uint8_t key[64], mkey[64], iv[16], iv2[16], want[64], mac[64], wct[64];
	size_t len = 4096 + 48;
	int err, ok = 0, wl = 0, olen = 0;
	uint32_t ses;
	char n[128];

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1), mkey[i] = (uint8_t)(i * 3 + 5);
	for (size_t i = 0; i < len; i++)
		pt[i] = (uint8_t)(i * 13 + 11);
	memset(iv, 0x42, sizeof(iv));
	err = new_session(fd, cipher, key, (uint32_t)keylen, d ? d->id : 0,
			  mkey, 32, &ses);
	snprintf(n, sizeof(n), "%s session", name);
	check(!err, n, "%s", strerror(-err));
	if (err)
		return;
	print_info(fd, ses, name);
	memcpy(iv2, iv, 16);
	err = do_crypt(fd, ses, COP_ENCRYPT, pt, ct, (uint32_t)len,
		       ivlen ? iv2 : NULL, mac, 0);
	if (evp) {
		EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
		int l1 = 0, l2 = 0;

		EVP_EncryptInit_ex(c, evp, NULL, key, ivlen ? iv : NULL);
		EVP_CIPHER_CTX_set_padding(c, 0);
		EVP_EncryptUpdate(c, out, &l1, pt, (int)len);
		EVP_EncryptFinal_ex(c, out + l1, &l2);
		EVP_CIPHER_CTX_free(c);
		olen = l1 + l2;
		ok = olen == (int)len && !memcmp(out, ct, len);
	} else {
		ok = !memcmp(pt, ct, len);	/* CRYPTO_NULL */
	}
	if (d)
		wl = (int)ref_mac(d, mkey, 32, pt, len, want);
	snprintf(n, sizeof(n), "%s encrypt (ciphertext, MAC of plaintext)", name);
	check(!err && ok && (!d || !memcmp(mac, want, wl)), n,
	      "err %d cipher ok %d olen %d", err, ok, olen);
	memcpy(iv2, iv, 16);
	memset(mac, 0, sizeof(mac));
	err = do_crypt(fd, ses, COP_DECRYPT, ct, out, (uint32_t)len,
		       ivlen ? iv2 : NULL, mac, 0);
	snprintf(n, sizeof(n), "%s decrypt (plaintext, MAC of plaintext)", name);
	check(!err && !memcmp(out, pt, len) && (!d || !memcmp(mac, want, wl)),
	      n, "err %d", err);
	/* The session's IV chains across calls (cop->iv == NULL) as one op. */
	if (ivlen && !d && cipher != CRYPTO_AES_XTS) {
		memcpy(iv2, iv, 16);
		err = do_crypt(fd, ses, COP_ENCRYPT, pt, out, 64, iv2, NULL, 0);
		if (!err)
			err = do_crypt(fd, ses, COP_ENCRYPT, pt + 64, out + 64,
				       (uint32_t)len - 64, NULL, NULL, 0);
		snprintf(n, sizeof(n), "%s session IV chains across calls", name);
		check(!err && !memcmp(out, ct, len), n, "err %d", err);
	}
	(void)wct;
	end_session(fd, ses);
}

/* NIST GCM test case 4: AES-128, 12-byte IV, 20 bytes of AAD, 60 bytes. */
static void nist_gcm4(uint8_t key[16], uint8_t iv[12], uint8_t pt[60],
		      uint8_t aad[20], uint8_t ct[60], uint8_t tag[16])
{
	unhex("feffe9928665731c6d6a8f9467308308", key);
	unhex("cafebabefacedbaddecaf888", iv);
	unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39", pt);
	unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad);
	unhex("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
	      "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091", ct);
	unhex("5bc94fbc3221a5db94fae95ae7121a47", tag);
}

/* GCM through the device or the kernel: NIST test case 4. */
static void algs_gcm(int fd)
{
	uint8_t key[16], iv[12], pt[60], aad[20], ct[60], tag[16];
	uint8_t buf[128], out[128];
	uint32_t ses = 0, len;
	int err;

	nist_gcm4(key, iv, pt, aad, ct, tag);
	err = new_session(fd, CRYPTO_AES_GCM, key, 16, 0, NULL, 0, &ses);
	check(!err, "GCM session", "%s", strerror(-err));
	if (err)
		return;
	print_info(fd, ses, "gcm");
	len = 60;
	memset(buf, 0, sizeof(buf));
	err = do_auth(fd, ses, COP_ENCRYPT, 0, aad, 20, pt, buf, &len, NULL, 0, iv);
	check(!err && len == 76 && !memcmp(buf, ct, 60) && !memcmp(buf + 60, tag, 16),
	      "NIST GCM TC4 encrypt with AAD (ciphertext || tag)", "err %d len %u", err, len);
	len = 76;
	err = do_auth(fd, ses, COP_DECRYPT, 0, aad, 20, buf, out, &len, NULL, 0, iv);
	check(!err && len == 60 && !memcmp(out, pt, 60),
	      "NIST GCM TC4 decrypt verifies the tag", "err %d len %u", err, len);
	buf[70] ^= 1;
	len = 76;
	memset(out, 0x5a, sizeof(out));
	err = do_auth(fd, ses, COP_DECRYPT, 0, aad, 20, buf, out, &len, NULL, 0, iv);
	check(err == -EBADMSG && out[0] == 0x5a, "GCM flipped tag is EBADMSG, dst untouched",
	      "err %d", err);
	buf[70] ^= 1;
	aad[0] ^= 1;
	len = 76;
	err = do_auth(fd, ses, COP_DECRYPT, 0, aad, 20, buf, out, &len, NULL, 0, iv);
	check(err == -EBADMSG, "GCM changed AAD is EBADMSG", "err %d", err);
	aad[0] ^= 1;
	len = 60;
	err = do_auth(fd, ses, COP_ENCRYPT, 0, aad, 20, pt, buf, &len, NULL, 12, iv);
	check(!err && len == 72 && !memcmp(buf + 60, tag, 12),
	      "GCM 12-byte tag is the truncated tag", "err %d len %u", err, len);
	len = 60;
	err = do_auth(fd, ses, COP_ENCRYPT, 0, aad, 20, pt, buf, &len, NULL, 17, iv);
	check(err == -EINVAL, "GCM tag_len 17 is EINVAL", "err %d", err);
	len = 16;
	expect_errno(do_crypt(fd, ses, COP_ENCRYPT, pt, buf, 16, iv, NULL, 0),
		     EINVAL, "CIOCCRYPT on a GCM session");
	end_session(fd, ses);
}

static void hexline(const char *tag, const uint8_t *p, size_t n)
{
	char h[1024];

	tohex(p, n < 500 ? n : 500, h);
	printf("%s %s\n", tag, h);
}

/*
 * TLS mode: AES-CBC + HMAC, fixed inputs; the host recomputes the record
 * (HMAC(aad || pt) || pad, CBC) from the printed line.
 */
static void algs_tls(int fd, uint32_t mac, size_t keylen, size_t mackeylen,
		     const char *name)
{
	uint8_t key[32], mkey[32], iv[16], iv2[16], aad[13], pt[37];
	uint8_t buf[37 + 64 + 16];
	char n[128];
	uint32_t ses = 0, len;
	int err;

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(0x10 + i), mkey[i] = (uint8_t)(0x80 + i);
	for (size_t i = 0; i < sizeof(iv); i++)
		iv[i] = (uint8_t)(0xa0 + i);
	for (size_t i = 0; i < sizeof(aad); i++)
		aad[i] = (uint8_t)(0x30 + i);
	for (size_t i = 0; i < sizeof(pt); i++)
		pt[i] = (uint8_t)(0x50 + i);
	err = new_session(fd, CRYPTO_AES_CBC, key, (uint32_t)keylen, mac, mkey,
			  (uint32_t)mackeylen, &ses);
	snprintf(n, sizeof(n), "%s session", name);
	check(!err, n, "%s", strerror(-err));
	if (err)
		return;
	memset(buf, 0, sizeof(buf));
	memcpy(buf, pt, sizeof(pt));
	len = sizeof(pt);
	memcpy(iv2, iv, 16);
	err = do_auth(fd, ses, COP_ENCRYPT, COP_FLAG_AEAD_TLS_TYPE, aad, 13, buf,
		      buf, &len, NULL, 0, iv2);
	snprintf(n, sizeof(n), "%s encrypt", name);
	check(!err && len % 16 == 0 && len > sizeof(pt), n, "err %d len %u", err, len);
	if (!err)
		hexline(name, buf, len);
	memcpy(iv2, iv, 16);
	err = do_auth(fd, ses, COP_DECRYPT, COP_FLAG_AEAD_TLS_TYPE, aad, 13, buf,
		      buf, &len, NULL, 0, iv2);
	snprintf(n, sizeof(n), "%s decrypt checks padding and MAC", name);
	check(!err && len == sizeof(pt) && !memcmp(buf, pt, sizeof(pt)), n,
	      "err %d len %u", err, len);
	/* Again, then one flipped byte in the MAC's block. */
	len = sizeof(pt);
	memcpy(buf, pt, sizeof(pt));
	memcpy(iv2, iv, 16);
	err = do_auth(fd, ses, COP_ENCRYPT, COP_FLAG_AEAD_TLS_TYPE, aad, 13, buf,
		      buf, &len, NULL, 0, iv2);
	buf[len - 17] ^= 0x01;
	memcpy(iv2, iv, 16);
	err = err ? err : do_auth(fd, ses, COP_DECRYPT, COP_FLAG_AEAD_TLS_TYPE,
				  aad, 13, buf, buf, &len, NULL, 0, iv2);
	snprintf(n, sizeof(n), "%s flipped record is EBADMSG", name);
	check(err == -EBADMSG, n, "err %d", err);
	len = sizeof(pt);
	snprintf(n, sizeof(n), "%s src != dst is EINVAL", name);
	expect_errno(do_auth(fd, ses, COP_ENCRYPT, COP_FLAG_AEAD_TLS_TYPE, aad, 13,
			     pt, buf, &len, NULL, 0, iv2), EINVAL, n);
	end_session(fd, ses);
}

/* SRTP mode: AES-CTR + HMAC-SHA1, 12-byte header authenticated, 10-byte tag. */
static void algs_srtp(int fd)
{
	uint8_t key[16], mkey[20], iv[16], pkt[52], orig[52], tag[10];
	uint32_t ses = 0, len;
	int err;

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(0x20 + i);
	for (size_t i = 0; i < sizeof(mkey); i++)
		mkey[i] = (uint8_t)(0x90 + i);
	for (size_t i = 0; i < sizeof(iv); i++)
		iv[i] = (uint8_t)(0xc0 + i);
	for (size_t i = 0; i < sizeof(pkt); i++)
		pkt[i] = (uint8_t)(0x01 + 3 * i);
	memcpy(orig, pkt, sizeof(pkt));
	err = new_session(fd, CRYPTO_AES_CTR, key, 16, CRYPTO_SHA1_HMAC, mkey, 20,
			  &ses);
	check(!err, "SRTP session", "%s", strerror(-err));
	if (err)
		return;
	len = 40;
	err = do_auth(fd, ses, COP_ENCRYPT, COP_FLAG_AEAD_SRTP_TYPE, pkt, 52,
		      pkt + 12, pkt + 12, &len, tag, 10, iv);
	check(!err && len == 40 && !memcmp(pkt, orig, 12), "SRTP encrypt",
	      "err %d len %u", err, len);
	if (!err) {
		hexline("srtp", pkt, 52);
		hexline("srtp-tag", tag, 10);
	}
	err = do_auth(fd, ses, COP_DECRYPT, COP_FLAG_AEAD_SRTP_TYPE, pkt, 52,
		      pkt + 12, pkt + 12, &len, tag, 10, iv);
	check(!err && !memcmp(pkt, orig, 52), "SRTP decrypt checks the tag",
	      "err %d", err);
	err = do_auth(fd, ses, COP_ENCRYPT, COP_FLAG_AEAD_SRTP_TYPE, pkt, 52,
		      pkt + 12, pkt + 12, &len, tag, 10, iv);
	tag[0] ^= 0x80;
	memcpy(orig, pkt, sizeof(pkt));
	err = err ? err : do_auth(fd, ses, COP_DECRYPT, COP_FLAG_AEAD_SRTP_TYPE,
				  pkt, 52, pkt + 12, pkt + 12, &len, tag, 10, iv);
	check(err == -EBADMSG && !memcmp(pkt, orig, 52),
	      "SRTP flipped tag is EBADMSG, packet untouched", "err %d", err);
	{
		static uint8_t far[1024];

		expect_errno(do_auth(fd, ses, COP_ENCRYPT, COP_FLAG_AEAD_SRTP_TYPE,
				     far, 700, far + 300, far + 300, &len, tag,
				     10, iv), EINVAL,
			     "SRTP src too far into auth_src is EINVAL");
	}
	end_session(fd, ses);
}

static int cmd_algs(int argc, char **argv)
{
	unsigned int seed = argc > 0 ? (unsigned int)strtoul(argv[0], NULL, 0) :
			    (unsigned int)time(NULL);
	int fd = open_crypto();
	uint32_t ses = 0;

	printf("# seed %u fallback %d\n", seed, fallback_on());
	algs_hash_kats(fd);
	algs_multipart(fd, seed);
	algs_cipher_mac(fd, CRYPTO_AES_CBC, EVP_aes_128_cbc(), 16, 16, NULL,
			"AES-128-CBC");
	algs_cipher_mac(fd, CRYPTO_AES_CBC, EVP_aes_128_cbc(), 16, 16,
			&hash_algs[9], "AES-128-CBC+HMAC-SHA256");
	algs_cipher_mac(fd, CRYPTO_AES_CTR, EVP_aes_256_ctr(), 32, 16,
			&hash_algs[7], "AES-256-CTR+HMAC-SHA1");
	algs_cipher_mac(fd, CRYPTO_3DES_CBC, EVP_des_ede3_cbc(), 24, 8, NULL,
			"3DES-CBC");
	algs_cipher_mac(fd, CRYPTO_3DES_CBC, EVP_des_ede3_cbc(), 24, 8,
			&hash_algs[1], "3DES-CBC+SHA1");
	algs_cipher_mac(fd, CRYPTO_AES_XTS, EVP_aes_128_xts(), 32, 16, NULL,
			"AES-128-XTS");
	algs_cipher_mac(fd, CRYPTO_NULL, NULL, 0, 0, NULL, "NULL");
	algs_cipher_mac(fd, CRYPTO_NULL, NULL, 0, 0, &hash_algs[3],
			"NULL+SHA256");
	algs_gcm(fd);
	algs_tls(fd, CRYPTO_SHA1_HMAC, 16, 20, "tls-aes128-sha1");
	algs_tls(fd, CRYPTO_SHA2_256_HMAC, 32, 32, "tls-aes256-sha256");
	algs_srtp(fd);
	/* SESSINFO of the single-algorithm sessions. */
	for (size_t a = 0; a < sizeof(hash_algs) / sizeof(hash_algs[0]); a++) {
		static const uint8_t k[32];

		if (!new_session(fd, 0, NULL, 0, hash_algs[a].id, k, 32, &ses)) {
			print_info(fd, ses, hash_algs[a].name);
			end_session(fd, ses);
		}
	}
	close(fd);
	return failures;
}

/* fallback=0: only what the device serves; the rest is EINVAL. */
static int cmd_nofallback(int argc, char **argv)
{
	static const uint8_t key[32], mkey[32];
	int expect_mac = argc > 0 && !strcmp(argv[0], "--mac");
	uint8_t buf[64], mac[64], iv[16] = { 0 };
	int fd = open_crypto(), err;
	uint32_t ses = 0, len = 16;

	check(!fallback_on(), "fallback parameter is 0", "it is on");
	/* Hashes and HMACs: NO_CIPHER chains where the device chains. */
	err = new_session(fd, 0, NULL, 0, CRYPTO_SHA2_256, NULL, 0, &ses);
	expect_errno(err, expect_mac ? 0 : EINVAL, "fallback=0: SHA256 session");
	if (!err) {
		expect_errno(do_crypt(fd, ses, COP_ENCRYPT, buf, NULL, 16, NULL,
				      mac, COP_FLAG_UPDATE), EINVAL,
			     "fallback=0: COP_FLAG_UPDATE on a device hash session");
		end_session(fd, ses);
	}
	expect_errno(new_session(fd, CRYPTO_AES_GCM, key, 16, 0, NULL, 0, &ses),
		     EINVAL, "fallback=0: GCM session");
	expect_errno(new_session(fd, CRYPTO_NULL, key, 0, 0, NULL, 0, &ses),
		     EINVAL, "fallback=0: NULL session");
	expect_errno(new_session(fd, CRYPTO_3DES_CBC, key, 24, 0, NULL, 0, &ses),
		     EINVAL, "fallback=0: 3DES session");
	err = new_session(fd, 0, NULL, 0, CRYPTO_MD5_HMAC, mkey, 16, &ses);
	expect_errno(err, expect_mac ? 0 : EINVAL, "fallback=0: HMAC-MD5 session");
	if (!err)
		end_session(fd, ses);
	err = new_session(fd, CRYPTO_AES_CBC, key, 16, 0, NULL, 0, &ses);
	expect_errno(err, 0, "fallback=0: AES-CBC session");
	if (!err) {
		memset(buf, 0, sizeof(buf));
		expect_errno(do_auth(fd, ses, COP_ENCRYPT, COP_FLAG_AEAD_TLS_TYPE,
				     NULL, 0, buf, buf, &len, NULL, 0, iv),
			     EINVAL, "fallback=0: CIOCAUTHCRYPT");
		end_session(fd, ses);
	}
	err = new_session(fd, CRYPTO_AES_CBC, key, 16, CRYPTO_SHA2_256_HMAC,
			  mkey, 32, &ses);
	if (!expect_mac) {
		expect_errno(err, EINVAL, "fallback=0: AES-CBC+HMAC-SHA256 on a device without chaining");
	} else {
		expect_errno(err, 0, "fallback=0: AES-CBC+HMAC-SHA256 on the device");
		expect_errno(do_crypt(fd, ses, COP_ENCRYPT, buf, buf, 16, iv, mac,
				      COP_FLAG_UPDATE), EINVAL,
			     "fallback=0: COP_FLAG_UPDATE on a device MAC session");
		end_session(fd, ses);
	}
	close(fd);
	return failures;
}

/* ------------------------------------------------------------ zero-copy */

static int ref_cipher(const EVP_CIPHER *evp, const uint8_t *key,
		      const uint8_t *iv, const uint8_t *in, uint8_t *out, int len)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0;

	EVP_EncryptInit_ex(c, evp, NULL, key, iv);
	EVP_CIPHER_CTX_set_padding(c, 0);
	EVP_EncryptUpdate(c, out, &l1, in, len);
	EVP_EncryptFinal_ex(c, out + l1, &l2);
	EVP_CIPHER_CTX_free(c);
	return l1 + l2;
}

struct unmap_arg {
	int fd;
	uint32_t ses;
	uint8_t *region;
	volatile int unmapped;
	int ok, efault, other, after;
};

static void *unmap_thread(void *p)
{
	struct unmap_arg *a = p;
	uint8_t iv[16] = { 0 };

	for (int i = 0; i < 100000; i++) {
		int was = a->unmapped;
		int err = do_crypt(a->fd, a->ses, COP_ENCRYPT, a->region,
				   a->region + (256 << 10), 256 << 10, iv, NULL, 0);

		if (!err)
			a->ok++;
		else if (err == -EFAULT)
			a->efault++;
		else
			a->other++;
		if (was && ++a->after >= 3)
			break;
	}
	return NULL;
}

/*
 * The caller's pages go to the device as they are: unaligned and
 * page-crossing buffers, src == dst, odd CTR tails, the chaining IV read
 * from pinned pages, and a buffer unmapped by another thread mid-flight.
 */
static int cmd_zc(void)
{
	static const struct { uint32_t soff, doff, len; } shapes[] = {
		{ 0, 0, 4096 }, { 1, 3, 4096 }, { 4095, 1, 8192 },
		{ 10, 10, 4096 }, { 7, 4090, 16000 }, { 4090, 4090, 48 },
		{ 0, 0, 1 << 20 }, { 5, 9, (1 << 20) - 32 },
	};
	static const uint8_t key[16] = { 9, 8, 7 };
	size_t area = (2 << 20) + 3 * 4096;
	uint8_t *sbase = malloc(area), *dbase = malloc(area), *ref = malloc(area);
	uint8_t iv[16], iv2[16];
	int fd = open_crypto();
	char name[160];

	for (size_t i = 0; i < area; i++)
		sbase[i] = (uint8_t)(i * 31 + 7);
	for (int c = 0; c < 2; c++) {
		uint32_t alg = c ? CRYPTO_AES_CTR : CRYPTO_AES_CBC;
		const EVP_CIPHER *evp = c ? EVP_aes_128_ctr() : EVP_aes_128_cbc();
		uint32_t ses = 0;

		if (new_session(fd, alg, key, 16, 0, NULL, 0, &ses))
			return 100;
		for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
			uint32_t len = shapes[k].len - (c ? 5 : 0);
			uint8_t *src = sbase + shapes[k].soff;
			uint8_t *dst = dbase + shapes[k].doff;
			int err, err2, err3, same, same2, same3;

			memset(iv, 0x11 * (int)(k + 1), 16);
			ref_cipher(evp, key, iv, src, ref, (int)len);
			memset(dst, 0xa5, len);
			memcpy(iv2, iv, 16);
			err = do_crypt(fd, ses, COP_ENCRYPT, src, dst, len, iv2,
				       NULL, 0);
			same = !memcmp(dst, ref, len);
			/* The same through bounce pages. */
			memset(dst, 0xa5, len);
			err2 = do_crypt(fd, ses, COP_ENCRYPT, src, dst, len, iv2,
					NULL, COP_FLAG_NO_ZC);
			same2 = !memcmp(dst, ref, len);
			/* In place. */
			memcpy(dst, src, len);
			err3 = do_crypt(fd, ses, COP_ENCRYPT, dst, dst, len, iv2,
					NULL, 0);
			same3 = !memcmp(dst, ref, len);
			snprintf(name, sizeof(name),
				 "zc %s src+%u dst+%u len %u (zero-copy, NO_ZC, in place)",
				 c ? "CTR" : "CBC", shapes[k].soff, shapes[k].doff,
				 len);
			check(!err && !err2 && !err3 && same && same2 && same3,
			      name, "errs %d %d %d same %d %d %d", err, err2,
			      err3, same, same2, same3);
		}
		/* The session IV after an unaligned call (last block across pages). */
		if (!c) {
			uint8_t *src = sbase + 10, *dst = dbase + 10;
			int err;

			memset(iv, 0x3c, 16);
			ref_cipher(evp, key, iv, src, ref, 8192);
			memcpy(iv2, iv, 16);
			err = do_crypt(fd, ses, COP_ENCRYPT, src, dst, 4096, iv2,
				       NULL, 0);
			if (!err)
				err = do_crypt(fd, ses, COP_ENCRYPT, src + 4096,
					       dst + 4096, 4096, NULL, NULL, 0);
			check(!err && !memcmp(dst, ref, 8192),
			      "zc CBC chaining IV read from a block across pinned pages",
			      "err %d", err);
			/* Decrypt: the IV is the last ciphertext block of src. */
			memcpy(iv2, iv, 16);
			err = do_crypt(fd, ses, COP_DECRYPT, ref, dst + 3, 4096,
				       iv2, NULL, 0);
			if (!err)
				err = do_crypt(fd, ses, COP_DECRYPT, ref + 4096,
					       dst + 3 + 4096, 4096, NULL, NULL, 0);
			check(!err && !memcmp(dst + 3, src, 8192),
			      "zc CBC decrypt chaining across calls", "err %d", err);
		}
		end_session(fd, ses);
	}

	/* Another thread unmaps src and dst while requests run. */
	{
		struct unmap_arg a = { 0 };
		pthread_t t;

		a.fd = fd;
		a.region = mmap(NULL, 512 << 10, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memset(a.region, 1, 512 << 10);
		if (new_session(fd, CRYPTO_AES_CBC, key, 16, 0, NULL, 0, &a.ses))
			return 100;
		pthread_create(&t, NULL, unmap_thread, &a);
		usleep(300000);
		munmap(a.region, 512 << 10);
		a.unmapped = 1;
		pthread_join(t, NULL);
		printf("# unmap: ok %d efault %d other %d\n", a.ok, a.efault,
		       a.other);
		check(a.ok > 0 && a.efault >= 3 && !a.other,
		      "zc buffer unmapped by another thread mid-request: EFAULT after, no oops",
		      "ok %d efault %d other %d", a.ok, a.efault, a.other);
		end_session(fd, a.ses);
	}
	close(fd);
	return failures;
}

static int cmd_lat(int argc, char **argv);
static int cmp_u64(const void *a, const void *b);

/* ------------------------------------------------------------ api-* */

/* CIOCAUTHCRYPT returning the whole written-back operation. */
static int api_auth(int fd, struct crypt_auth_op *a)
{
	return ioctl(fd, CIOCAUTHCRYPT, a) ? -errno : 0;
}

static void api_auth_init(struct crypt_auth_op *a, uint32_t ses, int op,
			  uint16_t flags, uint8_t *auth, uint32_t auth_len,
			  uint8_t *src, uint8_t *dst, uint32_t len,
			  uint32_t tag_len, uint8_t *iv)
{
	memset(a, 0, sizeof(*a));
	a->ses = ses;
	a->op = op;
	a->flags = flags;
	a->auth_src = auth;
	a->auth_len = auth_len;
	a->src = src;
	a->dst = dst;
	a->len = len;
	a->tag_len = tag_len;
	a->iv = iv;
}

/*
 * api-cbc-inplace: CBC decrypt in place (src == dst), zero-copy and
 * COP_FLAG_NO_ZC: the IV written back (COP_FLAG_WRITE_IV) is the last
 * ciphertext block, and a decrypt chained with cop->iv == NULL continues
 * from it (cryptodev-linux's tfm keeps the last ciphertext block).
 */
static int cmd_api_cbc_inplace(void)
{
	static const uint16_t modes[] = { 0, COP_FLAG_NO_ZC };
	uint8_t key[16], iv0[16], iv[16], pt[64];
	uint8_t *pt4 = aligned_alloc(4096, 8192), *ct4 = aligned_alloc(4096, 8192);
	uint8_t *buf = aligned_alloc(4096, 8192), ct[64];
	int fd = open_crypto();
	uint32_t ses;
	char n[160];
	int err;

	for (size_t i = 0; i < 16; i++)
		key[i] = (uint8_t)(0x11 * i), iv0[i] = (uint8_t)(0xf0 - i);
	fill_plaintext(pt, sizeof(pt), 64);
	fill_plaintext(pt4, 4096, 4096);
	ref_cipher(EVP_aes_128_cbc(), key, iv0, pt, ct, 64);
	ref_cipher(EVP_aes_128_cbc(), key, iv0, pt4, ct4, 4096);
	err = new_session(fd, CRYPTO_AES_CBC, key, 16, 0, NULL, 0, &ses);
	check(!err, "api-cbc-inplace session", "%s", strerror(-err));
	if (err)
		return failures;
	for (size_t m = 0; m < 2; m++) {
		const char *how = modes[m] ? "NO_ZC" : "zero-copy";

		/* 64 B in place, WRITE_IV: the last ciphertext block comes back. */
		memcpy(buf, ct, 64);
		memcpy(iv, iv0, 16);
		err = do_crypt(fd, ses, COP_DECRYPT, buf, buf, 64, iv, NULL,
			       COP_FLAG_WRITE_IV | modes[m]);
		snprintf(n, sizeof(n), "api-cbc-inplace 64 B decrypt in place (%s) gives the plaintext", how);
		check(!err && !memcmp(buf, pt, 64), n, "err %d", err);
		snprintf(n, sizeof(n), "api-cbc-inplace 64 B decrypt in place (%s) writes back the last ciphertext block as IV", how);
		check(!err && !memcmp(iv, ct + 48, 16), n, "iv %s the last plaintext block",
		      memcmp(iv, pt + 48, 16) ? "is neither the last ciphertext nor" : "equals");
		/* 4 KiB in place in two chunks, the second with the implicit IV. */
		memcpy(buf, ct4, 4096);
		memcpy(iv, iv0, 16);
		err = do_crypt(fd, ses, COP_DECRYPT, buf, buf, 2048, iv, NULL,
			       modes[m]);
		if (!err)
			err = do_crypt(fd, ses, COP_DECRYPT, buf + 2048,
				       buf + 2048, 2048, NULL, NULL, modes[m]);
		snprintf(n, sizeof(n), "api-cbc-inplace 4 KiB decrypt in place as 2 x 2 KiB (%s, implicit IV) equals the one-shot decrypt", how);
		{
			size_t bad = 0;

			for (size_t i = 0; i < 4096; i += 16)
				bad += memcmp(buf + i, pt4 + i, 16) != 0;
			check(!err && !bad, n, "err %d, %zu of 256 blocks differ (first wrong block %s)",
			      err, bad, memcmp(buf + 2048, pt4 + 2048, 16) ? "2048" : "other");
		}
	}
	/* The one-shot reference through the driver itself (out of place). */
	memcpy(iv, iv0, 16);
	err = do_crypt(fd, ses, COP_DECRYPT, ct4, buf, 4096, iv, NULL, 0);
	check(!err && !memcmp(buf, pt4, 4096),
	      "api-cbc-inplace 4 KiB one-shot decrypt gives the plaintext", "err %d", err);
	end_session(fd, ses);
	close(fd);
	free(pt4);
	free(ct4);
	free(buf);
	return failures;
}

/* AES-GCM through host OpenSSL's EVP: ct || tag (tag_len bytes). */
static int ref_gcm(const uint8_t *key, int keylen, const uint8_t *iv,
		   const uint8_t *aad, int alen, const uint8_t *pt, int len,
		   uint8_t *out, int tag_len)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int l = 0, l2 = 0;

	EVP_EncryptInit_ex(c, keylen == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm(),
			   NULL, key, iv);
	if (alen)
		EVP_EncryptUpdate(c, NULL, &l, aad, alen);
	if (len)
		EVP_EncryptUpdate(c, out, &l, pt, len);
	else
		l = 0;
	EVP_EncryptFinal_ex(c, out + l, &l2);
	EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, tag_len, out + len);
	EVP_CIPHER_CTX_free(c);
	return len + tag_len;
}

/*
 * api-aead: cryptodev-linux's CIOCAUTHCRYPT convention for an AEAD cipher
 * (authenc.c): tag_len 0 is the full tag and is written back; encrypt
 * appends the tag to dst after the ciphertext, len = plaintext + tag_len,
 * tag = dst + plaintext length; decrypt takes the tag from the end of src
 * (len includes it), len = len - tag_len, tag = dst + len - tag_len.
 */
static int cmd_api_aead(void)
{
	uint8_t key[32], iv[12], pt[60], aad[20], ct[60], tag[16];
	static uint8_t big[70000 + 16], ref[70000 + 16], out[70000 + 16];
	struct crypt_auth_op a;
	int fd = open_crypto();
	uint32_t ses;
	int err;

	nist_gcm4(key, iv, pt, aad, ct, tag);
	err = new_session(fd, CRYPTO_AES_GCM, key, 16, 0, NULL, 0, &ses);
	check(!err, "api-aead GCM session", "%s", strerror(-err));
	if (err)
		return failures;

	/* Rule 1: tag_len 0 means the full tag, and is written back. */
	memset(out, 0, 128);
	api_auth_init(&a, ses, COP_ENCRYPT, 0, aad, 20, pt, out, 60, 0, iv);
	err = api_auth(fd, &a);
	check(!err && a.tag_len == 16, "api-aead tag_len 0 on input is the full tag (16), written back",
	      "err %d tag_len %u", err, a.tag_len);
	/* Rule 2: encrypt appends the tag after the ciphertext; len = pt + tag_len. */
	check(!err && a.len == 76 && !memcmp(out, ct, 60) && !memcmp(out + 60, tag, 16) &&
	      a.tag == out + 60,
	      "api-aead encrypt: dst = ciphertext || tag (NIST GCM TC4), len = 60 + 16, tag = dst + 60",
	      "err %d len %u tag %s", err, a.len, a.tag == out + 60 ? "dst + 60" : "elsewhere");
	/* Rule 3: decrypt takes the tag from the end of src; len - tag_len comes back. */
	memset(big, 0x5a, 128);
	api_auth_init(&a, ses, COP_DECRYPT, 0, aad, 20, out, big, 76, 0, iv);
	err = api_auth(fd, &a);
	check(!err && a.len == 60 && a.tag_len == 16 && !memcmp(big, pt, 60) &&
	      a.tag == big + 60,
	      "api-aead decrypt: src = ciphertext || tag, len 76 in, 60 out, tag_len 16, tag = dst + 60",
	      "err %d len %u tag_len %u", err, a.len, a.tag_len);
	/* Rule 4: a shorter tag_len stays; the tag is its prefix. */
	api_auth_init(&a, ses, COP_ENCRYPT, 0, aad, 20, pt, out, 60, 12, iv);
	err = api_auth(fd, &a);
	check(!err && a.len == 72 && a.tag_len == 12 && !memcmp(out + 60, tag, 12),
	      "api-aead tag_len 12: 12-byte tag appended, len 72, tag_len stays 12",
	      "err %d len %u tag_len %u", err, a.len, a.tag_len);
	api_auth_init(&a, ses, COP_DECRYPT, 0, aad, 20, out, big, 72, 12, iv);
	err = api_auth(fd, &a);
	check(!err && a.len == 60 && !memcmp(big, pt, 60),
	      "api-aead tag_len 12 decrypt of 72 bytes gives 60", "err %d len %u", err, a.len);
	/* Rule 5: a wrong tag is EBADMSG and nothing is written. */
	memcpy(out, ct, 60);
	memcpy(out + 60, tag, 16);
	out[75] ^= 0x01;
	memset(big, 0x5a, 128);
	api_auth_init(&a, ses, COP_DECRYPT, 0, aad, 20, out, big, 76, 0, iv);
	err = api_auth(fd, &a);
	check(err == -EBADMSG && big[0] == 0x5a && a.len == 76,
	      "api-aead wrong tag is EBADMSG, dst and the operation untouched", "err %d", err);
	/* Rule 6: a decrypt shorter than the tag is EINVAL. */
	api_auth_init(&a, ses, COP_DECRYPT, 0, aad, 20, out, big, 15, 0, iv);
	expect_errno(api_auth(fd, &a), EINVAL, "api-aead decrypt of 15 bytes (< tag) is EINVAL");
	end_session(fd, ses);

	/* Round trips against host OpenSSL: AES-256-GCM, 0 B .. 70000 B, in place too. */
	for (size_t i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x40 + 7 * i);
	err = new_session(fd, CRYPTO_AES_GCM, key, 32, 0, NULL, 0, &ses);
	check(!err, "api-aead AES-256-GCM session", "%s", strerror(-err));
	if (err)
		return failures;
	{
		static const uint32_t lens[] = { 0, 1, 15, 16, 100, 4096, 70000 };
		int bad_enc = 0, bad_dec = 0, bad_inplace = 0;

		for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
			uint32_t len = lens[k];
			int rl;

			for (size_t i = 0; i < 12; i++)
				iv[i] = (uint8_t)(k * 16 + i);
			fill_plaintext(big, len, 1000 + k);
			rl = ref_gcm(key, 32, iv, aad, 13, big, (int)len, ref, 16);
			api_auth_init(&a, ses, COP_ENCRYPT, 0, aad, 13, big, out, len, 0, iv);
			err = api_auth(fd, &a);
			if (err || a.len != (uint32_t)rl || a.tag_len != 16 || memcmp(out, ref, rl)) {
				bad_enc++;
				printf("# enc len %u: err %d len %u tag_len %u\n", len, err, a.len, a.tag_len);
			}
			if (len == 100)
				hexline("api-aead-gcm256-100", out, 116);
			api_auth_init(&a, ses, COP_DECRYPT, 0, aad, 13, ref, out, len + 16, 0, iv);
			err = api_auth(fd, &a);
			if (err || a.len != len || memcmp(out, big, len)) {
				bad_dec++;
				printf("# dec len %u: err %d len %u\n", len, err, a.len);
			}
			/* In place: src == dst, tag appended after it. */
			memcpy(out, big, len);
			api_auth_init(&a, ses, COP_ENCRYPT, 0, aad, 13, out, out, len, 0, iv);
			err = api_auth(fd, &a);
			if (!err)
				err = memcmp(out, ref, rl) ? -EILSEQ : 0;
			if (!err) {
				api_auth_init(&a, ses, COP_DECRYPT, 0, aad, 13, out, out, len + 16, 0, iv);
				err = api_auth(fd, &a);
			}
			if (err || a.len != len || memcmp(out, big, len)) {
				bad_inplace++;
				printf("# in place len %u: err %d len %u\n", len, err, a.len);
			}
		}
		check(!bad_enc, "api-aead AES-256-GCM encrypt 0 B .. 70000 B equals host OpenSSL (ct || tag)",
		      "%d sizes differ", bad_enc);
		check(!bad_dec, "api-aead AES-256-GCM decrypt of host OpenSSL's ct || tag gives the plaintext",
		      "%d sizes differ", bad_dec);
		check(!bad_inplace, "api-aead AES-256-GCM in place round trip (src == dst)",
		      "%d sizes differ", bad_inplace);
	}
	end_session(fd, ses);

	/* TLS and SRTP modes: tag_len 0 is the HMAC's size, written back. */
	{
		uint8_t mkey[20] = { 1 }, rec[128], pkt[52] = { 0 }, stag[20], civ[16] = { 2 };

		err = new_session(fd, CRYPTO_AES_CBC, key, 16, CRYPTO_SHA1_HMAC, mkey, 20, &ses);
		check(!err, "api-aead TLS session", "%s", strerror(-err));
		if (!err) {
			memset(rec, 0x33, sizeof(rec));
			api_auth_init(&a, ses, COP_ENCRYPT, COP_FLAG_AEAD_TLS_TYPE, aad, 13, rec, rec,
				      37, 0, civ);
			err = api_auth(fd, &a);
			check(!err && a.tag_len == 20 && a.len == 64,
			      "api-aead TLS tag_len 0 is the HMAC-SHA1 size (20), written back; len 37 + 20 + pad = 64",
			      "err %d tag_len %u len %u", err, a.tag_len, a.len);
			end_session(fd, ses);
		}
		err = new_session(fd, CRYPTO_AES_CTR, key, 16, CRYPTO_SHA1_HMAC, mkey, 20, &ses);
		check(!err, "api-aead SRTP session", "%s", strerror(-err));
		if (!err) {
			api_auth_init(&a, ses, COP_ENCRYPT, COP_FLAG_AEAD_SRTP_TYPE, pkt, 52, pkt + 12,
				      pkt + 12, 40, 0, civ);
			a.tag = stag;
			err = api_auth(fd, &a);
			check(!err && a.tag_len == 20 && a.len == 40,
			      "api-aead SRTP tag_len 0 is the HMAC-SHA1 size (20), written back",
			      "err %d tag_len %u len %u", err, a.tag_len, a.len);
			end_session(fd, ses);
		}
	}
	close(fd);
	return failures;
}

/* CBC-encrypts a hand-made TLS record plaintext (no padding added). */
static void api_tls_record(const uint8_t *key, const uint8_t *iv,
			   const uint8_t *plain, uint8_t *rec, int len)
{
	ref_cipher(EVP_aes_128_cbc(), key, iv, plain, rec, len);
}

/*
 * api-tls-oracle: TLS-mode CIOCAUTHCRYPT decrypt of three bad records under
 * one AES-128-CBC + HMAC-SHA1 session: (a) bad padding bytes with
 * pad + 1 <= len, (b) valid padding leaving fewer bytes than the MAC,
 * (c) valid padding, wrong MAC. Prints "tls-oracle a=E b=E c=E" (errnos)
 * and the median nanoseconds of N decrypts of each.
 */
static int cmd_api_tls_oracle(int argc, char **argv)
{
	uint8_t key[16], mkey[20], iv[16], aad[13], plain[96], rec[3][96], buf[96], iv2[16];
	int lens[3] = { 96, 32, 96 }, errs[3];
	int reps = argc > 0 ? atoi(argv[0]) : 0;
	struct crypt_auth_op a;
	int fd = open_crypto();
	uint32_t ses;
	int err;

	for (size_t i = 0; i < 16; i++)
		key[i] = (uint8_t)(0x60 + i), iv[i] = (uint8_t)(0x70 + i);
	for (size_t i = 0; i < 20; i++)
		mkey[i] = (uint8_t)(0x80 + i);
	memset(aad, 0x17, sizeof(aad));
	/* (a) last byte 3, the three before it not 3: pad + 1 = 4 <= 96. */
	memset(plain, 0x41, 96);
	plain[95] = 3;
	api_tls_record(key, iv, plain, rec[0], 96);
	/* (b) 16 bytes of padding value 15 in a 32-byte record: 16 left < 20. */
	memset(plain, 15, 32);
	memset(plain, 0x42, 16);
	api_tls_record(key, iv, plain, rec[1], 32);
	/* (c) padding 0 (one byte), a MAC that is not the MAC. */
	memset(plain, 0x43, 96);
	plain[95] = 0;
	api_tls_record(key, iv, plain, rec[2], 96);
	err = new_session(fd, CRYPTO_AES_CBC, key, 16, CRYPTO_SHA1_HMAC, mkey, 20, &ses);
	check(!err, "api-tls-oracle session", "%s", strerror(-err));
	if (err)
		return failures;
	for (int r = 0; r < 3; r++) {
		memcpy(buf, rec[r], lens[r]);
		memcpy(iv2, iv, 16);
		api_auth_init(&a, ses, COP_DECRYPT, COP_FLAG_AEAD_TLS_TYPE, aad, 13, buf, buf,
			      (uint32_t)lens[r], 0, iv2);
		errs[r] = -api_auth(fd, &a);
	}
	printf("tls-oracle a=%d b=%d c=%d\n", errs[0], errs[1], errs[2]);
	check(errs[0] == EBADMSG && errs[1] == EBADMSG && errs[2] == EBADMSG,
	      "api-tls-oracle bad padding, padding eating the MAC and a bad MAC all give EBADMSG",
	      "a (bad pad) %s, b (pad leaves < MAC) %s, c (bad MAC) %s", strerror(errs[0]),
	      strerror(errs[1]), strerror(errs[2]));
	/* A good record still decrypts (the 96-byte one, with its real MAC). */
	{
		uint8_t good[96];
		uint32_t len = 40;

		memset(good, 0x44, sizeof(good));
		memcpy(iv2, iv, 16);
		api_auth_init(&a, ses, COP_ENCRYPT, COP_FLAG_AEAD_TLS_TYPE, aad, 13, good, good,
			      len, 0, iv2);
		err = api_auth(fd, &a);
		if (!err) {
			memcpy(iv2, iv, 16);
			api_auth_init(&a, ses, COP_DECRYPT, COP_FLAG_AEAD_TLS_TYPE, aad, 13, good,
				      good, a.len, 0, iv2);
			err = api_auth(fd, &a);
		}
		check(!err && a.len == 40, "api-tls-oracle a good record still decrypts",
		      "err %d len %u", err, a.len);
	}
	/* Timing of the two 96-byte failures (same length, different padding). */
	for (int r = 0; reps > 0 && r < 3; r += 2) {
		uint64_t *t = calloc((size_t)reps, sizeof(*t));

		for (int i = 0; i < reps; i++) {
			struct timespec t0, t1;

			memcpy(buf, rec[r], 96);
			memcpy(iv2, iv, 16);
			api_auth_init(&a, ses, COP_DECRYPT, COP_FLAG_AEAD_TLS_TYPE, aad, 13, buf,
				      buf, 96, 0, iv2);
			clock_gettime(CLOCK_MONOTONIC, &t0);
			api_auth(fd, &a);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			t[i] = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ull +
			       (uint64_t)(t1.tv_nsec - t0.tv_nsec);
		}
		qsort(t, (size_t)reps, sizeof(*t), cmp_u64);
		printf("tls-oracle-time %c median_ns %" PRIu64 "\n", r ? 'c' : 'a', t[reps / 2]);
		free(t);
	}
	end_session(fd, ses);
	close(fd);
	return failures;
}

/*
 * api-cphash: CIOCCPHASH (OpenSSL's devcrypto engine needs it for digests:
 * EVP_MD_CTX_copy): SHA-256 session A hashes 100 bytes (COP_FLAG_UPDATE),
 * B takes A's state, then A hashes 50 more and finishes, B finishes: A is
 * SHA-256 of all 150 bytes, B of the first 100. Unknown session ENOENT,
 * the same session EDEADLK, a different algorithm EINVAL.
 */
#ifndef CIOCCPHASH
struct cphash_op {
	uint32_t dst_ses;
	uint32_t src_ses;
};
#define CIOCCPHASH	_IOW('c', 110, struct cphash_op)
#endif
static int api_cphash(int fd, uint32_t dst, uint32_t src)
{
	struct cphash_op op = { .dst_ses = dst, .src_ses = src };

	return ioctl(fd, CIOCCPHASH, &op) ? -errno : 0;
}

static int cmd_api_cphash(void)
{
	uint8_t m[150], da[32], db[32], want_a[32], want_b[32], fresh[32];
	int fd = open_crypto();
	uint32_t a, b, c, d;
	int err;

	fill_plaintext(m, sizeof(m), 150);
	SHA256(m, 150, want_a);
	SHA256(m, 100, want_b);
	err = new_session(fd, 0, NULL, 0, CRYPTO_SHA2_256, NULL, 0, &a);
	if (!err)
		err = new_session(fd, 0, NULL, 0, CRYPTO_SHA2_256, NULL, 0, &b);
	if (!err)
		err = new_session(fd, 0, NULL, 0, CRYPTO_SHA1, NULL, 0, &c);
	if (!err)
		err = new_session(fd, 0, NULL, 0, CRYPTO_SHA2_256, NULL, 0, &d);
	check(!err, "api-cphash sessions", "%s", strerror(-err));
	if (err)
		return failures;
	/* A copy of a fresh state is a fresh state (the engine's probe). */
	err = api_cphash(fd, d, b);
	if (!err)
		err = do_crypt(fd, d, COP_ENCRYPT, NULL, NULL, 0, NULL, fresh, COP_FLAG_FINAL);
	SHA256(m, 0, da);
	check(!err && !memcmp(fresh, da, 32), "api-cphash copy of a fresh session, finished, is SHA-256 of nothing",
	      "err %d", err);
	err = do_crypt(fd, a, COP_ENCRYPT, m, NULL, 100, NULL, da, COP_FLAG_UPDATE);
	if (!err)
		err = api_cphash(fd, b, a);
	check(!err, "api-cphash copies A's state into B", "err %d (%s)", err, strerror(-err));
	if (!err)
		err = do_crypt(fd, a, COP_ENCRYPT, m + 100, NULL, 50, NULL, da, COP_FLAG_UPDATE);
	if (!err)
		err = do_crypt(fd, a, COP_ENCRYPT, NULL, NULL, 0, NULL, da, COP_FLAG_FINAL);
	if (!err)
		err = do_crypt(fd, b, COP_ENCRYPT, NULL, NULL, 0, NULL, db, COP_FLAG_FINAL);
	check(!err && !memcmp(da, want_a, 32), "api-cphash A continues: SHA-256 of 150 bytes", "err %d", err);
	check(!err && !memcmp(db, want_b, 32), "api-cphash B finishes the copied state: SHA-256 of the first 100 bytes",
	      "err %d", err);
	expect_errno(api_cphash(fd, b, 0x7fffffff), ENOENT, "api-cphash unknown source session is ENOENT");
	expect_errno(api_cphash(fd, a, a), EDEADLK, "api-cphash same session is EDEADLK");
	expect_errno(api_cphash(fd, c, a), EINVAL, "api-cphash SHA-256 into SHA-1 is EINVAL");
	end_session(fd, a);
	end_session(fd, b);
	end_session(fd, c);
	end_session(fd, d);
	close(fd);
	return failures;
}

/* ---------------------------------------------------------- pin-movable */

/* The PFN backing addr (0: not present, or not root), from /proc/self/pagemap. */
static uint64_t pin_pfn(const void *addr)
{
	uint64_t ent = 0;
	off_t off = (off_t)((uintptr_t)addr / 4096) * 8;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (pread(fd, &ent, sizeof(ent), off) != sizeof(ent))
		ent = 0;
	close(fd);
	if (!(ent & (1ull << 63)))
		return 0;
	return ent & ((1ull << 55) - 1);
}

/* ZONE_MOVABLE's PFN range of node 0 from /proc/zoneinfo; 0 if there is none. */
static int pin_movable_range(uint64_t *start, uint64_t *end)
{
	FILE *f = fopen("/proc/zoneinfo", "r");
	char line[256];
	int in = 0;
	unsigned long long v, spanned = 0, first = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Node ", 5)) {
			if (in)
				break;
			in = strstr(line, "zone") && strstr(line, "Movable");
		} else if (in && sscanf(line, " spanned %llu", &v) == 1) {
			spanned = v;
		} else if (in && sscanf(line, " start_pfn: %llu", &v) == 1) {
			first = v;
		}
	}
	fclose(f);
	*start = first;
	*end = first + spanned;
	return spanned > 0;
}

static uint64_t pin_block(uint64_t pfn)
{
	FILE *f = fopen("/sys/devices/system/memory/block_size_bytes", "r");
	unsigned long long sz = 0;

	if (f) {
		if (fscanf(f, "%llx", &sz) != 1)
			sz = 0;
		fclose(f);
	}
	return sz >= 4096 ? pfn / (sz / 4096) : 0;
}

struct pin_job {
	int fd;
	uint32_t ses;
	const uint8_t *src;
	uint8_t *dst;
	int err;
};

static void *pin_thread(void *p)
{
	struct pin_job *j = p;
	uint8_t iv[16] = { 3 };

	j->err = do_crypt(j->fd, j->ses, COP_ENCRYPT, j->src, j->dst, 4096,
			  iv, NULL, 0);
	return NULL;
}

/*
 * pin-movable GOFILE: for the FOLL_LONGTERM test (root; the guest booted
 * with movablecore=). Picks an anonymous page in ZONE_MOVABLE, prints its
 * PFN and memory block, then a zero-copy AES-128-CBC CIOCCRYPT of that one
 * page runs in a thread (the host has stalled the device). Once GOFILE
 * exists (the host has seen the request held on the ring: the pages are
 * pinned) prints the PFN now backing the page and whether it is still in
 * ZONE_MOVABLE; then waits for the request and prints its errno.
 */
static int cmd_pin_movable(int argc, char **argv)
{
	static const uint8_t key[16] = { 11 };
	const char *go = argc > 0 ? argv[0] : "/tmp/pin-go";
	enum { NPAGES = 256 };
	struct pin_job job = { .fd = open_crypto() };
	uint64_t mstart, mend, pfn = 0, now;
	uint8_t *area, *page = NULL, *src;
	pthread_t t;
	int i;

	if (!pin_movable_range(&mstart, &mend)) {
		printf("not ok pin-movable: no ZONE_MOVABLE (boot with movablecore=)\n");
		return 2;
	}
	area = mmap(NULL, NPAGES * 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	src = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED || src == MAP_FAILED)
		return 100;
	memset(area, 0x5a, NPAGES * 4096);
	fill_plaintext(src, 4096, 7);
	for (i = 0; i < NPAGES && !page; i++) {
		pfn = pin_pfn(area + i * 4096);
		if (pfn >= mstart && pfn < mend)
			page = area + i * 4096;
	}
	if (!page) {
		printf("not ok pin-movable: none of %d pages in ZONE_MOVABLE [%llu, %llu) (pfn %llu; root?)\n",
		       NPAGES, (unsigned long long)mstart,
		       (unsigned long long)mend, (unsigned long long)pfn);
		return 2;
	}
	job.err = new_session(job.fd, CRYPTO_AES_CBC, key, 16, 0, NULL, 0,
			      &job.ses);
	printf("pin-movable session errno %d\n", -job.err);
	if (job.err)
		return 1;
	job.src = src;
	job.dst = page;
	printf("pin-movable movable %llu %llu before pfn %llu block %llu\n",
	       (unsigned long long)mstart, (unsigned long long)mend,
	       (unsigned long long)pfn, (unsigned long long)pin_block(pfn));
	pthread_create(&t, NULL, pin_thread, &job);
	for (i = 0; i < 3000 && access(go, F_OK); i++)
		usleep(100000);
	now = pin_pfn(page);
	printf("pin-movable pinned pfn %llu block %llu in-movable %d\n",
	       (unsigned long long)now, (unsigned long long)pin_block(now),
	       now >= mstart && now < mend);
	pthread_join(t, NULL);
	printf("pin-movable crypt errno %d changed %d\n", -job.err,
	       page[0] != 0x5a || page[1] != 0x5a);
	end_session(job.fd, job.ses);
	close(job.fd);
	return 0;
}

/*
 * dbg-crypt LEN GOFILE: for the debugger test. Opens an AES-128-CBC session
 * (key 00 01 .. 0f, IV zero), prints "dbg-crypt ready", waits up to 120 s for
 * GOFILE to exist (the host has set its breakpoint by then), encrypts LEN bytes
 * of fill_plaintext(seed 7) in one CIOCCRYPT and prints
 * "dbg-crypt len LEN errno E sha256 HEX" (HEX: SHA-256 of the ciphertext).
 */
static int cmd_dbg_crypt(int argc, char **argv)
{
	uint8_t key[16], iv[16] = { 0 }, h[32], *src, *dst;
	uint32_t len = argc > 0 ? (uint32_t)atoi(argv[0]) : 4096;
	const char *go = argc > 1 ? argv[1] : "/tmp/dbg-go";
	char hex[65];
	uint32_t ses = 0;
	int fd, err, i;

	if (!len || len % 16 || len > (1u << 20))
		return 100;
	for (i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	src = malloc(len);
	dst = calloc(1, len);
	if (!src || !dst)
		return 100;
	fill_plaintext(src, len, 7);
	fd = open_crypto();
	err = new_session(fd, CRYPTO_AES_CBC, key, 16, 0, NULL, 0, &ses);
	if (err) {
		printf("dbg-crypt session errno %d\n", -err);
		return 1;
	}
	printf("dbg-crypt ready\n");
	for (i = 0; i < 1200 && access(go, F_OK); i++)
		usleep(100000);
	err = do_crypt(fd, ses, COP_ENCRYPT, src, dst, len, iv, NULL, 0);
	SHA256(dst, len, h);
	tohex(h, sizeof(h), hex);
	printf("dbg-crypt len %u errno %d sha256 %s\n", len, -err, hex);
	end_session(fd, ses);
	close(fd);
	free(src);
	free(dst);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: %s kat|errors|roundtrip|stress|bench|speed|ivrace|inflight|stale|wait ...\n",
			argv[0]);
		return 100;
	}
	if (!strcmp(argv[1], "kat"))
		rc = cmd_kat(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "errors"))
		rc = cmd_errors(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "roundtrip"))
		rc = cmd_roundtrip(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "stress"))
		rc = cmd_stress(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "hold"))
		rc = cmd_hold(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "bench"))
		rc = cmd_bench(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "speed"))
		rc = cmd_speed(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "ivrace"))
		rc = cmd_ivrace(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "inflight"))
		rc = cmd_inflight(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "stale"))
		rc = cmd_stale(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "wait"))
		rc = cmd_wait(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "zc"))
		rc = cmd_zc();
	else if (!strcmp(argv[1], "algs"))
		rc = cmd_algs(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "nofallback"))
		rc = cmd_nofallback(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "lat"))
		rc = cmd_lat(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "life-abandon"))
		rc = cmd_life_abandon(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "life-crypt"))
		rc = cmd_life_crypt(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "life-restart"))
		rc = cmd_life_restart(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "api-cbc-inplace"))
		rc = cmd_api_cbc_inplace();
	else if (!strcmp(argv[1], "api-aead"))
		rc = cmd_api_aead();
	else if (!strcmp(argv[1], "api-cphash"))
		rc = cmd_api_cphash();
	else if (!strcmp(argv[1], "api-tls-oracle"))
		rc = cmd_api_tls_oracle(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "pin-movable"))
		rc = cmd_pin_movable(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "dbg-crypt"))
		rc = cmd_dbg_crypt(argc - 2, argv + 2);
	else
		rc = 100;
	return rc > 100 ? 100 : rc;
}

/* ------------------------------------------------------------- latency */

/*
 * lat OPS SIZE [STATS]: AES-256-CBC with an explicit IV, one process, one
 * session. 20 warm-up operations, then (when STATS names the driver's
 * latency file) the file is reset, then OPS operations, each timed (two
 * clock reads; with the hpet clocksource each read is a syscall, ~1.5 us
 * under TCG). Prints one JSON line: the sum, median and minimum of the
 * per-operation wall times.
 */
static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmd_lat(int argc, char **argv)
{
	static const uint8_t key[32] = { 7 };
	uint8_t iv[16] = { 9 }, *buf, *out;
	uint64_t total = 0, *dt;
	int fd, ops, i, err = 0;
	uint32_t size, ses = 0;

	if (argc < 2)
		return 100;
	ops = atoi(argv[0]);
	size = (uint32_t)atoi(argv[1]);
	if (ops < 1 || ops > 1000000 || size < 16 || size > (1u << 20) ||
	    size % 16)
		return 100;
	buf = calloc(1, size);
	out = calloc(1, size);
	dt = calloc((size_t)ops, sizeof(*dt));
	fd = open_crypto();
	if (!buf || !out || !dt ||
	    new_session(fd, CRYPTO_AES_CBC, key, 32, 0, NULL, 0, &ses)) {
		printf("{\"error\":\"session\"}\n");
		return 1;
	}
	for (i = 0; i < 20 && !err; i++)
		err = do_crypt(fd, ses, COP_ENCRYPT, buf, out, size, iv, NULL, 0);
	if (argc > 2 && !err) {
		FILE *f = fopen(argv[2], "w");

		if (!f || fputs("0\n", f) < 0 || fclose(f)) {
			printf("{\"error\":\"cannot reset %s\"}\n", argv[2]);
			return 1;
		}
	}
	for (i = 0; i < ops && !err; i++) {
		uint64_t t0 = now_ns();

		err = do_crypt(fd, ses, COP_ENCRYPT, buf, out, size, iv, NULL, 0);
		dt[i] = now_ns() - t0;
		total += dt[i];
	}
	if (err) {
		printf("{\"error\":\"crypt errno %d\"}\n", -err);
		return 1;
	}
	end_session(fd, ses);
	close(fd);
	qsort(dt, (size_t)ops, sizeof(*dt), cmp_u64);
	printf("{\"ops\":%d,\"size\":%u,\"totalNs\":%" PRIu64
	       ",\"p50Ns\":%" PRIu64 ",\"minNs\":%" PRIu64 "}\n",
	       ops, size, total, dt[ops / 2], dt[0]);
	free(dt);
	free(buf);
	free(out);
	return 0;
}

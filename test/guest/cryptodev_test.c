// SPDX-License-Identifier: MIT
/*
 * Guest-side test and benchmark tool for /dev/crypto (cryptodev-linux API).
 * Built on the host with gcc against libcrypto, run in the guest.
 *
 *   vlab-cryptodev-test kat                      NIST SP 800-38A + RFC 4231
 *   vlab-cryptodev-test errors [--mac]           invalid inputs -> errnos
 *   vlab-cryptodev-test roundtrip FILE           random cases vs host OpenSSL
 *   vlab-cryptodev-test stress PROCS SESS OPS    concurrent mixed sizes
 *   vlab-cryptodev-test bench dev|sw SIZE PROCS MS
 *   vlab-cryptodev-test ivrace THREADS OPS LEN   implicit-IV CTR, threads
 *   vlab-cryptodev-test inflight THREADS OPS LEN concurrent big requests
 *   vlab-cryptodev-test stale LEN                dst holds no stale bytes
 *   vlab-cryptodev-test wait SECS                one op, report its errno
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

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
	if (!expect_mac) {
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
	expect_errno(new_session(fd, CRYPTO_AES_XTS, key, 32, 0, NULL, 0, &ses),
		     EINVAL, "cipher not offered (AES-XTS)");
	expect_errno(new_session(fd, CRYPTO_AES_CBC, key, 16, 9999, mackey, 16,
				 &ses), EINVAL, "unknown mac");
	expect_errno(new_session(fd, 0, NULL, 0, CRYPTO_SHA2_256, NULL, 0,
				 &ses), EINVAL, "plain hash not offered");
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
	if (!expect_mac) {
		expect_errno(err, EINVAL, "cipher+HMAC session on a device without chaining");
	} else {
		expect_errno(err, 0, "cipher+HMAC session");
		expect_errno(do_crypt(fd, mses, COP_ENCRYPT, buf, buf, 16, iv,
				      bad, 0), EFAULT, "bad mac pointer");
		expect_errno(do_crypt(fd, mses, COP_ENCRYPT, buf, buf, 16, iv,
				      mac, COP_FLAG_UPDATE), EINVAL,
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

static int stress_child(int id, int nsess, int nops)
{
	static const uint32_t algs[] = { CRYPTO_AES_CBC, CRYPTO_AES_CTR,
					 CRYPTO_AES_ECB };
	static uint8_t pt[65536], ct[65536], back[65536];
	uint32_t ses[64];
	int fd = open_crypto();

	rng_state = 0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1);
	for (int s = 0; s < nsess && s < 64; s++) {
		uint8_t key[32];

		for (int i = 0; i < 32; i++)
			key[i] = (uint8_t)rnd();
		if (new_session(fd, algs[s % 3], key, 16 + 8 * (s % 3), 0, NULL,
				0, &ses[s]))
			return 2;
	}
	for (int op = 0; op < nops; op++) {
		int s = (int)(rnd() % (uint64_t)nsess);
		uint32_t len = stress_size();
		uint8_t iv[16], iv2[16];

		for (uint32_t i = 0; i < len; i += 8) {
			uint64_t v = rnd();

			memcpy(pt + i, &v, 8);
		}
		for (int i = 0; i < 16; i++)
			iv[i] = (uint8_t)rnd();
		memcpy(iv2, iv, 16);
		if (do_crypt(fd, ses[s], COP_ENCRYPT, pt, ct, len,
			     s % 3 == 2 ? NULL : iv, NULL, 0) ||
		    do_crypt(fd, ses[s], COP_DECRYPT, ct, back, len,
			     s % 3 == 2 ? NULL : iv2, NULL, 0))
			return 3;
		if (memcmp(pt, back, len))
			return 4;
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
	int ok = 0, killed = 0, bad = 0;
	double t0 = now_s();

	if (procs > 64)
		procs = 64;
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
	check(bad == 0 && ok + killed == procs, "stress",
	      "%d children failed", bad);
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
};

static void *inflight_thread(void *p)
{
	struct inflight_arg *a = p;
	uint8_t iv[16] = { 1 };

	for (int i = 0; i < a->ops && !a->err; i++)
		a->err = do_crypt(a->fd, a->ses, COP_ENCRYPT, a->buf, a->buf,
				  a->len, iv, NULL, 0);
	return NULL;
}

static int cmd_inflight(int argc, char **argv)
{
	static const uint8_t key[16] = { 3 };
	int threads = argc > 0 ? atoi(argv[0]) : 16;
	int ops = argc > 1 ? atoi(argv[1]) : 4;
	uint32_t len = argc > 2 ? (uint32_t)atoi(argv[2]) : 1 << 20;
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
		args[t] = (struct inflight_arg){ fd, ses, ops, len, buf, 0 };
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

/* One CIOCCRYPT (after SECS of sleep), then its errno; for stall tests. */
static int cmd_wait(int argc, char **argv)
{
	static const uint8_t key[16] = { 6 };
	static uint8_t buf[4096], iv[16];
	int secs = argc > 0 ? atoi(argv[0]) : 0;
	uint32_t len = argc > 1 ? (uint32_t)atoi(argv[1]) : 64;
	int fd = open_crypto(), err;
	uint32_t ses = 0;

	err = new_session(fd, CRYPTO_AES_CBC, key, 16, 0, NULL, 0, &ses);
	printf("session errno %d\n", -err);
	sleep(secs);
	printf("crypt start\n");
	err = do_crypt(fd, ses, COP_ENCRYPT, buf, buf,
		       len > sizeof(buf) ? sizeof(buf) : len, iv, NULL, 0);
	printf("crypt errno %d\n", -err);
	err = ioctl(fd, CIOCFSESSION, &ses) ? -errno : 0;
	printf("finish errno %d\n", -err);
	close(fd);
	printf("closed\n");
	return 0;
}

/* --------------------------------------------------------------- bench */

static long bench_child(int dev, uint32_t size, double until)
{
	static uint8_t key[32] = { 7 }, iv[16] = { 9 };
	uint8_t *buf = calloc(1, size), *out = calloc(1, size);
	long ops = 0;

	if (dev) {
		int fd = open_crypto();
		uint32_t ses = 0;

		if (new_session(fd, CRYPTO_AES_CBC, key, 32, 0, NULL, 0, &ses))
			return -1;
		while (now_s() < until) {
			for (int i = 0; i < 8; i++)
				if (do_crypt(fd, ses, COP_ENCRYPT, buf, out, size,
					     iv, NULL, 0))
					return -1;
			ops += 8;
		}
	} else {
		EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
		int outl;

		while (now_s() < until) {
			for (int i = 0; i < 8; i++) {
				EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL,
						   key, iv);
				EVP_CIPHER_CTX_set_padding(ctx, 0);
				EVP_EncryptUpdate(ctx, out, &outl, buf,
						  (int)size);
			}
			ops += 8;
		}
	}
	return ops;
}

static int cmd_bench(int argc, char **argv)
{
	int dev, procs, pfd[2];
	uint32_t size;
	double ms, t0, secs;
	long total = 0;

	if (argc < 4)
		return 100;
	dev = !strcmp(argv[0], "dev");
	size = (uint32_t)atoi(argv[1]);
	procs = atoi(argv[2]);
	ms = atof(argv[3]);
	if (pipe(pfd))
		return 100;
	t0 = now_s();
	for (int i = 0; i < procs; i++) {
		if (fork() == 0) {
			long ops = bench_child(dev, size, t0 + ms / 1000);

			if (write(pfd[1], &ops, sizeof(ops)) != sizeof(ops))
				_exit(1);
			_exit(0);
		}
	}
	for (int i = 0; i < procs; i++) {
		long ops;

		if (read(pfd[0], &ops, sizeof(ops)) != sizeof(ops) || ops < 0) {
			printf("{\"error\":\"child failed\"}\n");
			return 1;
		}
		total += ops;
	}
	while (wait(NULL) > 0)
		;
	secs = now_s() - t0;
	printf("{\"mode\":\"%s\",\"size\":%u,\"procs\":%d,\"ops\":%ld,\"seconds\":%.3f,\"opsPerSec\":%.1f,\"MBps\":%.3f}\n",
	       dev ? "dev" : "sw", size, procs, total, secs, total / secs,
	       total * (double)size / secs / 1e6);
	return 0;
}

int main(int argc, char **argv)
{
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: %s kat|errors|roundtrip|stress|bench|ivrace|inflight|stale|wait ...\n",
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
	else if (!strcmp(argv[1], "ivrace"))
		rc = cmd_ivrace(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "inflight"))
		rc = cmd_inflight(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "stale"))
		rc = cmd_stale(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "wait"))
		rc = cmd_wait(argc - 2, argv + 2);
	else
		rc = 100;
	return rc > 100 ? 100 : rc;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * vlab-afalg-test: the guest side of `vlab check driver --afalg` (docs/checking.md, "Grading the
 * upstream driver through AF_ALG"). AES-CBC through AF_ALG sockets, bound by driver name
 * (--alg, default virtio_crypto_aes_cbc) so every operation is routed to that driver and no other.
 *
 *   kat              NIST SP 800-38A F.2.1-F.2.6 (CBC-AES128/192/256, encrypt and decrypt)
 *   roundtrip FILE   cases "KEYHEX IVHEX LEN SEED": prints "ct N SHA256(ciphertext)" and decrypts back
 *   errors           bad key length -> EINVAL at setkey; 17 bytes -> EINVAL at read
 *   stress P N       P processes, N random operations each, checked against libcrypto
 *   one              one 64-byte encrypt: "crypt errno E" (0 = success)
 *
 * Output: "ok NAME" / "not ok NAME: why" lines; exit 0 when everything was ok.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_alg.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SOL_ALG
#define SOL_ALG 279
#endif

#define MAX_LEN 65536

static const char *alg_name = "virtio_crypto_aes_cbc";
static int failures;

static void ok(const char *name)
{
	printf("ok %s\n", name);
}

static void not_ok(const char *name, const char *why)
{
	printf("not ok %s: %s\n", name, why);
	failures++;
}

/* A transform socket with the key set; -errno on failure. */
static int tfm_open(const unsigned char *key, size_t keylen)
{
	struct sockaddr_alg sa = { .salg_family = AF_ALG };
	int fd, e;

	strncpy((char *)sa.salg_type, "skcipher", sizeof(sa.salg_type) - 1);
	strncpy((char *)sa.salg_name, alg_name, sizeof(sa.salg_name) - 1);
	fd = socket(AF_ALG, SOCK_SEQPACKET, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    setsockopt(fd, SOL_ALG, ALG_SET_KEY, key, keylen) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* One operation on a fresh request socket: 0 or an errno. */
static int tfm_crypt(int tfm, int encrypt, const unsigned char iv[16],
		     const unsigned char *in, size_t len, unsigned char *out)
{
	char cbuf[CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(struct af_alg_iv) + 16)];
	struct iovec iov = { .iov_base = (void *)in, .iov_len = len };
	struct msghdr msg = { .msg_control = cbuf, .msg_controllen = sizeof(cbuf), .msg_iov = &iov, .msg_iovlen = 1 };
	struct af_alg_iv *aiv;
	struct cmsghdr *c;
	size_t done = 0;
	int op, e = 0;
	ssize_t n;

	op = accept(tfm, NULL, 0);
	if (op < 0)
		return errno;
	memset(cbuf, 0, sizeof(cbuf));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_ALG;
	c->cmsg_type = ALG_SET_OP;
	c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
	*(uint32_t *)CMSG_DATA(c) = encrypt ? ALG_OP_ENCRYPT : ALG_OP_DECRYPT;
	c = CMSG_NXTHDR(&msg, c);
	c->cmsg_level = SOL_ALG;
	c->cmsg_type = ALG_SET_IV;
	c->cmsg_len = CMSG_LEN(sizeof(struct af_alg_iv) + 16);
	aiv = (struct af_alg_iv *)CMSG_DATA(c);
	aiv->ivlen = 16;
	memcpy(aiv->iv, iv, 16);
	n = sendmsg(op, &msg, 0);
	if (n < 0 || (size_t)n != len) {
		e = n < 0 ? errno : EMSGSIZE;
		goto out;
	}
	while (done < len) {
		n = read(op, out + done, len - done);
		if (n < 0) {
			e = errno;
			goto out;
		}
		if (n == 0) {
			e = EPIPE;
			goto out;
		}
		done += (size_t)n;
	}
out:
	close(op);
	return e;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes hex into out (at most max bytes); the length or -1. */
static int unhex(const char *s, unsigned char *out, size_t max)
{
	size_t n = strlen(s), i;

	if (n % 2 || n / 2 > max)
		return -1;
	for (i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return (int)(n / 2);
}

/* NIST SP 800-38A F.2: the four plaintext blocks, the IV, and per key size key and ciphertext. */
static const char *const KAT_PT = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
				  "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
static const char *const KAT_IV = "000102030405060708090a0b0c0d0e0f";
static const struct {
	const char *name, *key, *ct;
} KATS[] = {
	{ "cbc-aes128", "2b7e151628aed2a6abf7158809cf4f3c",
	  "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
	  "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7" },
	{ "cbc-aes192", "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
	  "4f021db243bc633d7178183a9fa071e8b4d9ada9ad7dedf4e5e738763f69145a"
	  "571b242012fb7ae07fa9baac3df102e008b0e27988598881d920a9e64f5615cd" },
	{ "cbc-aes256", "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
	  "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
	  "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b" },
};

static void kat(void)
{
	unsigned char pt[64], iv[16], key[32], ct[64], out[64];
	char name[64];
	size_t i;

	unhex(KAT_PT, pt, sizeof(pt));
	unhex(KAT_IV, iv, sizeof(iv));
	for (i = 0; i < sizeof(KATS) / sizeof(KATS[0]); i++) {
		int klen = unhex(KATS[i].key, key, sizeof(key));
		int tfm, e;

		unhex(KATS[i].ct, ct, sizeof(ct));
		tfm = tfm_open(key, (size_t)klen);
		if (tfm < 0) {
			snprintf(name, sizeof(name), "%s setkey", KATS[i].name);
			not_ok(name, strerror(-tfm));
			continue;
		}
		snprintf(name, sizeof(name), "%s encrypt", KATS[i].name);
		e = tfm_crypt(tfm, 1, iv, pt, sizeof(pt), out);
		if (e)
			not_ok(name, strerror(e));
		else if (memcmp(out, ct, sizeof(ct)))
			not_ok(name, "ciphertext differs from SP 800-38A");
		else
			ok(name);
		snprintf(name, sizeof(name), "%s decrypt", KATS[i].name);
		e = tfm_crypt(tfm, 0, iv, ct, sizeof(ct), out);
		if (e)
			not_ok(name, strerror(e));
		else if (memcmp(out, pt, sizeof(pt)))
			not_ok(name, "plaintext differs from SP 800-38A");
		else
			ok(name);
		close(tfm);
	}
}

/* Block i of the plaintext = SHA-256(seed u64 LE || i u32 LE) (the grader derives the same). */
static void derive(unsigned char *buf, size_t len, uint64_t seed)
{
	unsigned char in[12], d[32];
	uint32_t i;
	int b;

	for (b = 0; b < 8; b++)
		in[b] = (unsigned char)(seed >> (8 * b));
	for (i = 0; (size_t)i * 32 < len; i++) {
		size_t n = len - (size_t)i * 32 < 32 ? len - (size_t)i * 32 : 32;

		for (b = 0; b < 4; b++)
			in[8 + b] = (unsigned char)(i >> (8 * b));
		SHA256(in, sizeof(in), d);
		memcpy(buf + (size_t)i * 32, d, n);
	}
}

static void roundtrip(const char *file)
{
	static unsigned char pt[MAX_LEN], ct[MAX_LEN], back[MAX_LEN];
	char line[512], khex[130], ivhex[40], name[64];
	unsigned char key[32], iv[16], d[32];
	unsigned long long seed;
	unsigned int len;
	FILE *f = fopen(file, "r");
	int n = 0;

	if (!f) {
		not_ok("roundtrip", strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		int klen, tfm, e, b;

		if (sscanf(line, "%129s %39s %u %llu", khex, ivhex, &len, &seed) != 4)
			continue;
		n++;
		snprintf(name, sizeof(name), "case %d", n);
		klen = unhex(khex, key, sizeof(key));
		if (klen < 0 || unhex(ivhex, iv, sizeof(iv)) != 16 || len > MAX_LEN) {
			not_ok(name, "bad case line");
			continue;
		}
		derive(pt, len, seed);
		tfm = tfm_open(key, (size_t)klen);
		if (tfm < 0) {
			not_ok(name, strerror(-tfm));
			continue;
		}
		e = tfm_crypt(tfm, 1, iv, pt, len, ct);
		if (!e)
			e = tfm_crypt(tfm, 0, iv, ct, len, back);
		close(tfm);
		if (e) {
			not_ok(name, strerror(e));
			continue;
		}
		SHA256(ct, len, d);
		printf("ct %d ", n);
		for (b = 0; b < 32; b++)
			printf("%02x", d[b]);
		printf("\n");
		if (memcmp(back, pt, len))
			not_ok(name, "decrypt did not give the plaintext back");
		else
			ok(name);
	}
	fclose(f);
	if (n == 0)
		not_ok("roundtrip", "no case in the file");
}

static void errors(void)
{
	unsigned char key[32] = { 0 }, iv[16] = { 0 }, buf[32] = { 0 }, out[32];
	char why[96];
	int tfm, e;

	tfm = tfm_open(key, 15);
	if (tfm >= 0) {
		close(tfm);
		not_ok("setkey 15-byte key", "accepted (want EINVAL)");
	} else if (-tfm != EINVAL) {
		snprintf(why, sizeof(why), "errno %d (want %d EINVAL)", -tfm, EINVAL);
		not_ok("setkey 15-byte key", why);
	} else {
		ok("setkey 15-byte key: EINVAL");
	}
	tfm = tfm_open(key, 16);
	if (tfm < 0) {
		not_ok("setkey 16-byte key", strerror(-tfm));
		return;
	}
	e = tfm_crypt(tfm, 1, iv, buf, 17, out);
	if (e != EINVAL) {
		snprintf(why, sizeof(why), "errno %d (want %d EINVAL)", e, EINVAL);
		not_ok("encrypt 17 bytes", why);
	} else {
		ok("encrypt 17 bytes: EINVAL");
	}
	e = tfm_crypt(tfm, 1, iv, buf, 32, out);
	if (e)
		not_ok("encrypt 32 bytes after the error", strerror(e));
	else
		ok("encrypt 32 bytes after the error");
	close(tfm);
}

static int host_cbc(int encrypt, const unsigned char *key, int klen, const unsigned char *iv,
		    const unsigned char *in, int len, unsigned char *out)
{
	const EVP_CIPHER *c = klen == 16 ? EVP_aes_128_cbc() : klen == 24 ? EVP_aes_192_cbc() : EVP_aes_256_cbc();
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, ok1;

	if (!ctx)
		return -1;
	ok1 = EVP_CipherInit_ex(ctx, c, NULL, key, iv, encrypt) && EVP_CIPHER_CTX_set_padding(ctx, 0) &&
	      EVP_CipherUpdate(ctx, out, &n, in, len);
	EVP_CIPHER_CTX_free(ctx);
	return ok1 && n == len ? 0 : -1;
}

/* One process's share of the stress run: 0 when every operation matched libcrypto. */
static int stress_child(int id, int ops)
{
	static unsigned char in[4096], out[4096], want[4096], back[4096];
	unsigned char key[32], iv[16];
	int urandom = open("/dev/urandom", O_RDONLY);
	int i, bad = 0;

	if (urandom < 0)
		return 1;
	for (i = 0; i < ops && !bad; i++) {
		unsigned char r[2];
		int klen, len, tfm, e;

		if (read(urandom, r, 2) != 2 || read(urandom, key, 32) != 32 ||
		    read(urandom, iv, 16) != 16 || read(urandom, in, sizeof(in)) != (ssize_t)sizeof(in))
			return 1;
		klen = 16 + 8 * (r[0] % 3);
		len = 16 * (1 + (r[1] % 256));
		tfm = tfm_open(key, (size_t)klen);
		if (tfm < 0) {
			printf("not ok process %d op %d: setkey %s\n", id, i, strerror(-tfm));
			bad = 1;
			break;
		}
		e = tfm_crypt(tfm, 1, iv, in, (size_t)len, out);
		if (!e)
			e = tfm_crypt(tfm, 0, iv, out, (size_t)len, back);
		close(tfm);
		if (e) {
			printf("not ok process %d op %d: %s\n", id, i, strerror(e));
			bad = 1;
		} else if (host_cbc(1, key, klen, iv, in, len, want) || memcmp(out, want, (size_t)len) ||
			   memcmp(back, in, (size_t)len)) {
			printf("not ok process %d op %d: AES-%d-CBC %d B differs from libcrypto\n", id, i, klen * 8, len);
			bad = 1;
		}
	}
	close(urandom);
	if (!bad)
		printf("ok process %d: %d operations\n", id, ops);
	fflush(stdout);
	return bad;
}

static void stress(int procs, int ops)
{
	int i, status, bad = 0;

	fflush(stdout);
	for (i = 0; i < procs; i++) {
		pid_t p = fork();

		if (p == 0)
			_exit(stress_child(i, ops));
		if (p < 0)
			bad++;
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			bad++;
	if (bad)
		not_ok("stress", "a process failed or did not start");
}

static void one(void)
{
	unsigned char key[16] = { 1 }, iv[16] = { 2 }, in[64] = { 3 }, out[64];
	int tfm = tfm_open(key, sizeof(key));
	int e = tfm < 0 ? -tfm : tfm_crypt(tfm, 1, iv, in, sizeof(in), out);

	if (tfm >= 0)
		close(tfm);
	printf("crypt errno %d\n", e);
}

int main(int argc, char **argv)
{
	int a = 1;

	if (argc > 2 && !strcmp(argv[1], "--alg")) {
		alg_name = argv[2];
		a = 3;
	}
	if (a >= argc)
		goto usage;
	if (!strcmp(argv[a], "kat"))
		kat();
	else if (!strcmp(argv[a], "roundtrip") && a + 1 < argc)
		roundtrip(argv[a + 1]);
	else if (!strcmp(argv[a], "errors"))
		errors();
	else if (!strcmp(argv[a], "stress") && a + 2 < argc)
		stress(atoi(argv[a + 1]), atoi(argv[a + 2]));
	else if (!strcmp(argv[a], "one"))
		one();
	else
		goto usage;
	return failures ? 1 : 0;
usage:
	fprintf(stderr, "usage: %s [--alg NAME] kat | roundtrip FILE | errors | stress PROCS OPS | one\n", argv[0]);
	return 2;
}

// SPDX-License-Identifier: MIT
/*
 * The asynchronous /dev/crypto interface, as cryptodev-linux documents it
 * (its ENABLE_ASYNC tests): poll() for POLLOUT, CIOCASYNCCRYPT, poll() for
 * POLLIN, CIOCASYNCFETCH (the oldest completed operation, EBUSY when none;
 * CIOCASYNCCRYPT is EBUSY when the file's queue is full).
 *
 *   vlab-cryptodev-async check SEED N      N random AES-CBC/CTR operations, up to the
 *                                          queue depth in flight, against OpenSSL
 *   vlab-cryptodev-async ebusy             EBUSY both ways and the poll bits
 *   vlab-cryptodev-async prefetch LEN      dst untouched until the FETCH
 *   vlab-cryptodev-async orphan close|exit|kill N LEN GOFILE
 *                                          a child queues N ops into MAP_SHARED dst
 *                                          and closes / exits / is killed; once
 *                                          GOFILE exists the parent checks dst
 *   vlab-cryptodev-async timeout N         N ops on a stalled device: poll sees
 *                                          POLLIN after timeout_ms, FETCH ETIMEDOUT
 *   vlab-cryptodev-async fallback              session IV and SHA-256 through the async ioctls
 *   vlab-cryptodev-async fault LEN             one op under the host's injected fault
 *   vlab-cryptodev-async budget LEN GO1 GO2  over max_inflight_kb: EBUSY with one queued
 *   vlab-cryptodev-async bench SIZE DEPTH MS  one process, DEPTH in flight (JSON)
 *
 * Output: "ok NAME" or "not ok NAME: why" per check; exit status = failures.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "../../guest/driver/cryptodev_abi.h"

#define PARAM "/sys/module/vlab_cryptodev/parameters/"
#define MAXDEPTH 1024

static int failures;

static void check(int cond, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (cond) {
		printf("ok %s\n", name);
	} else {
		failures++;
		printf("not ok %s: ", name);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
	}
	fflush(stdout);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned int param(const char *name)
{
	char path[128];
	unsigned int v = 0;
	FILE *f;

	snprintf(path, sizeof(path), PARAM "%s", name);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%u", &v) != 1)
		v = 0;
	if (f)
		fclose(f);
	return v;
}

static uint64_t rnd_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

static int open_crypto(void)
{
	int fd = open("/dev/crypto", O_RDWR);

	if (fd < 0) {
		printf("not ok open: %s\n", strerror(errno));
		exit(100);
	}
	return fd;
}

static uint32_t new_session(int fd, uint32_t cipher, const uint8_t *key,
			    uint32_t keylen)
{
	struct session_op sop = { .cipher = cipher, .keylen = keylen,
				  .key = (uint8_t *)key };

	if (ioctl(fd, CIOCGSESSION, &sop)) {
		printf("not ok session: %s\n", strerror(errno));
		exit(100);
	}
	return sop.ses;
}

/* cryptodev-linux's helpers: poll for the direction, then the ioctl. */
static int wait_for(int fd, short ev, int ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r = poll(&p, 1, ms);

	return r == 1 && (p.revents & ev);
}

static int revents(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };

	if (poll(&p, 1, 0) < 0)
		return -1;
	return p.revents;
}

static const EVP_CIPHER *evp_of(uint32_t cipher, uint32_t keylen)
{
	if (cipher == CRYPTO_AES_CBC)
		return keylen == 16 ? EVP_aes_128_cbc() : keylen == 24 ?
			EVP_aes_192_cbc() : EVP_aes_256_cbc();
	return keylen == 16 ? EVP_aes_128_ctr() : keylen == 24 ?
		EVP_aes_192_ctr() : EVP_aes_256_ctr();
}

static void openssl_crypt(uint32_t cipher, const uint8_t *key, uint32_t keylen,
			  const uint8_t *iv, int enc, const uint8_t *in,
			  uint8_t *out, int len)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, m = 0;

	EVP_CipherInit_ex(c, evp_of(cipher, keylen), NULL, key, iv, enc);
	EVP_CIPHER_CTX_set_padding(c, 0);
	EVP_CipherUpdate(c, out, &n, in, len);
	EVP_CipherFinal_ex(c, out + n, &m);
	EVP_CIPHER_CTX_free(c);
}

struct job {
	struct crypt_op cop;
	uint8_t *src, *dst, *want;
	uint8_t iv[16], want_iv[16];
	int busy;
};

/* The IV the kernel's cbc/ctr leave: what COP_FLAG_WRITE_IV returns. */
static void next_iv(uint32_t cipher, int enc, const uint8_t *src,
		    const uint8_t *dst, uint32_t len, uint8_t *iv)
{
	if (cipher == CRYPTO_AES_CBC) {
		memcpy(iv, (enc ? dst : src) + len - 16, 16);
	} else {
		uint64_t add = (len + 15) / 16;

		for (int i = 15; i >= 0 && add; i--) {
			uint64_t v = iv[i] + (add & 0xff);

			iv[i] = (uint8_t)v;
			add = (add >> 8) + (v >> 8);
		}
	}
}

static struct job *job_of(struct job *jobs, int n, const struct crypt_op *cop)
{
	for (int i = 0; i < n; i++)
		if (jobs[i].busy && jobs[i].cop.dst == cop->dst)
			return &jobs[i];
	return NULL;
}

/*
 * N random operations (AES-128/256, CBC/CTR, encrypt/decrypt, 16 B .. 64 KiB,
 * src == dst 1 in 8) through the async interface with up to the queue depth in
 * flight, each checked against OpenSSL when fetched, its written-back IV too.
 */
static int cmd_check(int argc, char **argv)
{
	unsigned int depth = param("async_depth");
	int n = argc > 1 ? atoi(argv[1]) : 500, queued = 0, fetched = 0;
	int bad = 0, badiv = 0, inorder = 1, next_fetch = 0, ebusy = 0;
	uint8_t key128[16], key256[32];
	uint32_t ses[4];
	struct job *jobs;
	int fd = open_crypto();
	int *order;

	rnd_state ^= (uint64_t)strtoull(argc > 0 ? argv[0] : "1", NULL, 0) * 0x9e3779b97f4a7c15ULL;
	if (!depth || depth > MAXDEPTH)
		depth = 64;
	fill(key128, 16);
	fill(key256, 32);
	ses[0] = new_session(fd, CRYPTO_AES_CBC, key128, 16);
	ses[1] = new_session(fd, CRYPTO_AES_CBC, key256, 32);
	ses[2] = new_session(fd, CRYPTO_AES_CTR, key128, 16);
	ses[3] = new_session(fd, CRYPTO_AES_CTR, key256, 32);
	jobs = calloc(depth, sizeof(*jobs));
	order = calloc(n, sizeof(*order));
	for (unsigned int i = 0; i < depth; i++) {
		jobs[i].src = malloc(65536);
		jobs[i].dst = malloc(65536);
		jobs[i].want = malloc(65536);
	}
	while (fetched < n) {
		/* Queue while there is room (POLLOUT) and work left. */
		while (queued < n && wait_for(fd, POLLOUT, 0)) {
			struct job *j = NULL;
			int k = (int)(rnd() % 4), enc = (int)(rnd() & 1);
			uint32_t cipher = k < 2 ? CRYPTO_AES_CBC : CRYPTO_AES_CTR;
			uint32_t keylen = k & 1 ? 32 : 16;
			uint32_t len = 16u << (rnd() % 13);

			for (unsigned int i = 0; i < depth && !j; i++)
				if (!jobs[i].busy)
					j = &jobs[i];
			if (!j)
				break;
			if (len > 65536)
				len = 65536;
			len = (uint32_t)(len / 2 + rnd() % (len / 2 + 1));
			if (cipher == CRYPTO_AES_CBC)
				len = (len + 15) & ~15u;
			if (!len)
				len = 16;
			fill(j->src, len);
			fill(j->iv, 16);
			memcpy(j->want_iv, j->iv, 16);
			openssl_crypt(cipher, k & 1 ? key256 : key128, keylen,
				      j->iv, enc == 0, j->src, j->want, (int)len);
			memset(j->dst, 0xa5, len);
			if (rnd() % 8 == 0) {
				/* In place: dst is src. */
				memcpy(j->dst, j->src, len);
			}
			next_iv(cipher, enc == 0, j->src, j->want, len, j->want_iv);
			memset(&j->cop, 0, sizeof(j->cop));
			j->cop.ses = ses[k];
			j->cop.op = enc ? COP_DECRYPT : COP_ENCRYPT;
			j->cop.flags = COP_FLAG_WRITE_IV;
			j->cop.len = len;
			j->cop.src = memcmp(j->dst, j->src, len) ? j->src : j->dst;
			j->cop.dst = j->dst;
			j->cop.iv = j->iv;
			if (ioctl(fd, CIOCASYNCCRYPT, &j->cop)) {
				if (errno == EBUSY) {
					ebusy++;
					break;
				}
				check(0, "async crypt", "errno %d", errno);
				return failures;
			}
			j->busy = 1;
			order[queued] = (int)(j - jobs);
			queued++;
		}
		/* Fetch what completed (POLLIN), at least one. */
		if (!wait_for(fd, POLLIN, 30000)) {
			check(0, "poll POLLIN", "no completion within 30 s (%d queued, %d fetched)",
			      queued, fetched);
			return failures;
		}
		for (;;) {
			struct crypt_op got;
			struct job *j;
			int err;

			memset(&got, 0, sizeof(got));
			err = ioctl(fd, CIOCASYNCFETCH, &got) ? errno : 0;
			if (err == EBUSY)
				break;
			j = job_of(jobs, (int)depth, &got);
			if (!j) {
				check(0, "fetch names a queued op", "dst %p", (void *)got.dst);
				return failures;
			}
			if (err || memcmp(j->dst, j->want, j->cop.len))
				bad++;
			if (!err && memcmp(j->iv, j->want_iv, 16))
				badiv++;
			if (err && bad <= 5)
				printf("# fetch errno %d len %u\n", err, j->cop.len);
			if (order[next_fetch] != (int)(j - jobs))
				inorder = 0;
			next_fetch++;
			j->busy = 0;
			fetched++;
		}
	}
	check(bad == 0, "async results equal OpenSSL", "%d of %d wrong", bad, n);
	check(badiv == 0, "async COP_FLAG_WRITE_IV", "%d of %d IVs wrong", badiv, n);
	check(ioctl(fd, CIOCASYNCFETCH, &jobs[0].cop) && errno == EBUSY,
	      "fetch with nothing left is EBUSY", "errno %d", errno);
	printf("async check ops %d depth %u in-order %s ebusy-seen %d\n", n, depth,
	       inorder ? "yes" : "no", ebusy);
	close(fd);
	return failures;
}

/* EBUSY both ways and the poll bits, at the module's queue depth. */
static int cmd_ebusy(void)
{
	unsigned int depth = param("async_depth"), i;
	uint8_t key[16] = { 1 }, iv[16] = { 2 }, *src, *dst;
	int fd = open_crypto(), ev, err = 0;
	struct crypt_op cop;
	uint32_t ses;

	if (!depth || depth > MAXDEPTH)
		return 100;
	ses = new_session(fd, CRYPTO_AES_CBC, key, 16);
	src = calloc(depth + 1, 64);
	dst = calloc(depth + 1, 64);
	ev = revents(fd);
	check(ev == POLLOUT, "poll on a new file: POLLOUT, no POLLIN", "revents %#x", ev);
	check(ioctl(fd, CIOCASYNCFETCH, &cop) && errno == EBUSY,
	      "fetch on a new file is EBUSY", "errno %d", errno);
	for (i = 0; i < depth; i++) {
		cop = (struct crypt_op){ .ses = ses, .op = COP_ENCRYPT, .len = 64,
					 .src = src + 64 * i, .dst = dst + 64 * i,
					 .iv = iv };
		if (!wait_for(fd, POLLOUT, 0) || ioctl(fd, CIOCASYNCCRYPT, &cop)) {
			err = errno;
			break;
		}
	}
	check(i == depth, "depth operations queue", "stopped at %u errno %d", i, err);
	/* Full (queued + completed, not fetched): no POLLOUT, EBUSY. */
	ev = revents(fd);
	check(!(ev & POLLOUT), "a full queue has no POLLOUT", "revents %#x", ev);
	cop.src = src + 64 * depth;
	cop.dst = dst + 64 * depth;
	check(ioctl(fd, CIOCASYNCCRYPT, &cop) && errno == EBUSY,
	      "queue past the depth is EBUSY", "errno %d", errno);
	check(wait_for(fd, POLLIN, 20000), "POLLIN once one completed", "none in 20 s");
	for (i = 0; i < depth; i++) {
		if (!wait_for(fd, POLLIN, 20000))
			break;
		memset(&cop, 0, sizeof(cop));
		if (ioctl(fd, CIOCASYNCFETCH, &cop))
			break;
		/* One fetched: room again. */
		if (i == 0) {
			ev = revents(fd);
			check(ev & POLLOUT, "POLLOUT again after a fetch", "revents %#x", ev);
		}
	}
	check(i == depth, "every queued op is fetched once", "%u of %u", i, depth);
	ev = revents(fd);
	check(ev == POLLOUT, "all fetched: POLLOUT, no POLLIN", "revents %#x", ev);
	check(ioctl(fd, CIOCASYNCFETCH, &cop) && errno == EBUSY,
	      "fetch after the last is EBUSY", "errno %d", errno);
	/* Errors found before the device is involved: nothing queued. */
	cop = (struct crypt_op){ .ses = ses, .op = COP_ENCRYPT, .len = 17,
				 .src = src, .dst = dst, .iv = iv };
	check(ioctl(fd, CIOCASYNCCRYPT, &cop) && errno == EINVAL,
	      "a partial CBC block is EINVAL at once", "errno %d", errno);
	cop.len = 64;
	cop.ses = ses + 1;
	check(ioctl(fd, CIOCASYNCCRYPT, &cop) && errno == EINVAL,
	      "an unknown session is EINVAL at once", "errno %d", errno);
	cop.ses = ses;
	cop.src = (uint8_t *)8;
	check(ioctl(fd, CIOCASYNCCRYPT, &cop) && errno == EFAULT,
	      "an unmapped src is EFAULT at once", "errno %d", errno);
	ev = revents(fd);
	check(ev == POLLOUT, "nothing was queued by the failures", "revents %#x", ev);
	close(fd);
	return failures;
}

/*
 * dst is the program's until the FETCH: after the completion (POLLIN) it
 * still holds what the program put there; the FETCH writes the result.
 */
static int cmd_prefetch(int argc, char **argv)
{
	uint32_t len = argc > 0 ? (uint32_t)atoi(argv[0]) : 4096;
	uint8_t key[16] = { 3 }, iv[16] = { 4 }, iv0[16], *src, *dst, *want;
	int fd = open_crypto(), intact = 1;
	struct crypt_op cop, got;
	uint32_t ses;

	ses = new_session(fd, CRYPTO_AES_CBC, key, 16);
	src = malloc(len);
	dst = malloc(len);
	want = malloc(len);
	fill(src, len);
	memset(dst, 0x5a, len);
	memcpy(iv0, iv, 16);
	openssl_crypt(CRYPTO_AES_CBC, key, 16, iv, 1, src, want, (int)len);
	cop = (struct crypt_op){ .ses = ses, .op = COP_ENCRYPT, .len = len,
				 .src = src, .dst = dst, .iv = iv,
				 .flags = COP_FLAG_WRITE_IV };
	check(ioctl(fd, CIOCASYNCCRYPT, &cop) == 0, "queue", "errno %d", errno);
	check(wait_for(fd, POLLIN, 20000), "completion (POLLIN)", "none in 20 s");
	for (uint32_t i = 0; i < len; i++)
		intact &= dst[i] == 0x5a;
	check(intact, "dst untouched until the fetch", "the result was written before CIOCASYNCFETCH");
	check(!memcmp(iv, iv0, 16), "iv untouched until the fetch", "written before CIOCASYNCFETCH");
	memset(&got, 0, sizeof(got));
	check(ioctl(fd, CIOCASYNCFETCH, &got) == 0, "fetch", "errno %d", errno);
	check(got.dst == dst && got.len == len && got.ses == ses,
	      "the fetch writes the queued crypt_op back", "dst %p len %u", (void *)got.dst, got.len);
	check(!memcmp(dst, want, len), "dst after the fetch equals OpenSSL", "differs");
	check(!memcmp(iv, want + len - 16, 16), "WRITE_IV after the fetch", "differs");
	close(fd);
	return failures;
}

/*
 * A child queues N operations whose dst is MAP_SHARED memory (it outlives
 * the child), prints "queued", then closes the file and exits, or exits with
 * it open, or waits to be killed. Once GOFILE exists (the host made sure the
 * device has returned everything), the parent checks dst: nobody fetched,
 * so nothing may have been written.
 */
static int cmd_orphan(int argc, char **argv)
{
	int n, status, intact = 1;
	uint32_t len;
	const char *how, *go;
	uint8_t *shared;
	pid_t pid;

	if (argc < 4)
		return 100;
	how = argv[0];
	n = atoi(argv[1]);
	len = (uint32_t)atoi(argv[2]);
	go = argv[3];
	shared = mmap(NULL, (size_t)n * len, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED || n < 1 || n > MAXDEPTH)
		return 100;
	memset(shared, 0x5a, (size_t)n * len);
	pid = fork();
	if (pid == 0) {
		uint8_t key[16] = { 5 }, iv[16] = { 6 }, *src = malloc(len);
		int fd = open_crypto(), q = 0;
		uint32_t ses = new_session(fd, CRYPTO_AES_CBC, key, 16);

		fill(src, len);
		for (int i = 0; i < n; i++) {
			struct crypt_op cop = { .ses = ses, .op = COP_ENCRYPT,
						.len = len, .src = src,
						.dst = shared + (size_t)i * len,
						.iv = iv };

			if (wait_for(fd, POLLOUT, 20000) &&
			    !ioctl(fd, CIOCASYNCCRYPT, &cop))
				q++;
		}
		printf("orphan queued %d pid %d\n", q, getpid());
		fflush(stdout);
		if (!strcmp(how, "close"))
			close(fd);
		if (!strcmp(how, "kill"))
			for (;;)
				pause();
		_exit(q == n ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	printf("orphan child ended %s %d\n", WIFSIGNALED(status) ? "signal" : "exit",
	       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	fflush(stdout);
	while (access(go, F_OK))
		usleep(20000);	/* the host's signal, not a timing guess */
	for (size_t i = 0; i < (size_t)n * len; i++)
		if (shared[i] != 0x5a) {
			intact = 0;
			printf("# dst byte %zu is %#x\n", i, shared[i]);
			break;
		}
	check(intact, "no byte written after the program stopped owning dst",
	      "the device's output reached memory after %s", how);
	return failures;
}

/*
 * On a stalled device: N queued operations, poll() reports POLLIN once the
 * timeout reset the device, the first fetch is ETIMEDOUT, the rest ETIMEDOUT
 * or EIO; then a new open is ENODEV (the device is broken).
 */
static int cmd_timeout(int argc, char **argv)
{
	int n = argc > 0 ? atoi(argv[0]) : 4, fd = open_crypto(), fd2;
	uint8_t key[16] = { 7 }, iv[16] = { 8 }, src[256], dst[256];
	double t0;
	uint32_t ses = new_session(fd, CRYPTO_AES_CBC, key, 16);
	int etime = 0, eio = 0, other = 0;

	memset(dst, 0x5a, sizeof(dst));
	fill(src, sizeof(src));
	printf("timeout session ok\n");
	fflush(stdout);
	/* The host stalls the device once it sees this line. */
	while (access(argv[1], F_OK))
		usleep(20000);
	t0 = now_s();
	for (int i = 0; i < n; i++) {
		struct crypt_op cop = { .ses = ses, .op = COP_ENCRYPT, .len = 64,
					.src = src, .dst = dst + 64 * (i % 4),
					.iv = iv };

		check(ioctl(fd, CIOCASYNCCRYPT, &cop) == 0, "queue on a stalled device",
		      "errno %d", errno);
	}
	check(!wait_for(fd, POLLIN, 0), "no POLLIN while stalled", "POLLIN at once");
	check(wait_for(fd, POLLIN, 60000), "POLLIN after the timeout", "none in 60 s");
	printf("timeout pollin after %.1f s\n", now_s() - t0);
	for (int i = 0; i < n; i++) {
		struct crypt_op got;
		int err;

		memset(&got, 0, sizeof(got));
		wait_for(fd, POLLIN, 20000);
		err = ioctl(fd, CIOCASYNCFETCH, &got) ? errno : 0;
		etime += err == ETIMEDOUT;
		eio += err == EIO;
		other += err != ETIMEDOUT && err != EIO;
	}
	printf("timeout fetched etimedout %d eio %d other %d\n", etime, eio, other);
	/* Those that waited timeout_ms in all; the others were failed by the reset. */
	check(etime >= 1, "the operation that waited timeout_ms is ETIMEDOUT", "none");
	check(other == 0, "every fetch ETIMEDOUT or EIO", "%d others", other);
	check(dst[0] == 0x5a && dst[255] == 0x5a, "dst untouched", "written");
	fd2 = open("/dev/crypto", O_RDWR);
	check(fd2 < 0 && errno == ENODEV, "the device is broken: open is ENODEV",
	      "fd %d errno %d", fd2, errno);
	close(fd);
	return failures;
}

/*
 * What runs inside CIOCASYNCCRYPT (docs: hash/MAC sessions, the session's
 * chaining IV): two CBC encrypts with iv NULL continue one keystream, a
 * SHA-256 digest arrives in mac; both fetched like any other operation.
 */
static int cmd_fallback(void)
{
	uint8_t key[16] = { 15 }, iv[16] = { 16 }, src[128], dst[128], want[128];
	uint8_t digest[32], wantd[32];
	int fd = open_crypto(), err;
	struct session_op hs = { .mac = CRYPTO_SHA2_256 };
	struct crypt_op cop;
	uint32_t ses = new_session(fd, CRYPTO_AES_CBC, key, 16);
	unsigned int dl = 0;

	fill(src, sizeof(src));
	openssl_crypt(CRYPTO_AES_CBC, key, 16, iv, 1, src, want, 128);
	/* The session IV: set by a first operation with iv, then iv NULL. */
	cop = (struct crypt_op){ .ses = ses, .op = COP_ENCRYPT, .len = 64,
				 .src = src, .dst = dst, .iv = iv };
	check(ioctl(fd, CIOCASYNCCRYPT, &cop) == 0, "queue with iv", "errno %d", errno);
	check(wait_for(fd, POLLIN, 30000) && ioctl(fd, CIOCASYNCFETCH, &cop) == 0,
	      "fetch with iv", "errno %d", errno);
	cop = (struct crypt_op){ .ses = ses, .op = COP_ENCRYPT, .len = 64,
				 .src = src + 64, .dst = dst + 64 };
	check(ioctl(fd, CIOCASYNCCRYPT, &cop) == 0, "queue with the session IV", "errno %d", errno);
	check(wait_for(fd, POLLIN, 30000) && ioctl(fd, CIOCASYNCFETCH, &cop) == 0,
	      "fetch with the session IV", "errno %d", errno);
	check(!memcmp(dst, want, 128), "the session IV chains across async operations", "differs");
	if (ioctl(fd, CIOCGSESSION, &hs)) {
		check(0, "sha256 session", "errno %d", errno);
		return failures;
	}
	EVP_Digest(src, 100, wantd, &dl, EVP_sha256(), NULL);
	memset(digest, 0, sizeof(digest));
	cop = (struct crypt_op){ .ses = hs.ses, .op = COP_ENCRYPT, .len = 100,
				 .src = src, .mac = digest };
	err = ioctl(fd, CIOCASYNCCRYPT, &cop) ? errno : 0;
	check(!err, "queue a SHA-256", "errno %d", err);
	check(wait_for(fd, POLLIN, 30000) && ioctl(fd, CIOCASYNCFETCH, &cop) == 0 &&
	      cop.mac == digest, "fetch the SHA-256", "errno %d", errno);
	check(!memcmp(digest, wantd, 32), "the digest equals OpenSSL's", "differs");
	close(fd);
	return failures;
}

/*
 * One operation of LEN under whatever fault the host injected: the fetch
 * returns the operation's errno; on an error dst holds only what the
 * program put there (nothing of the bounce pages is copied), on success
 * OpenSSL's ciphertext. Prints "fault errno E intact 0|1".
 */
static int cmd_fault(int argc, char **argv)
{
	uint32_t len = argc > 0 ? (uint32_t)atoi(argv[0]) : 4096;
	uint8_t key[16] = { 13 }, iv[16] = { 14 }, *src = malloc(len);
	uint8_t *dst = malloc(len), *want = malloc(len);
	int fd = open_crypto(), err, intact = 1;
	uint32_t ses = new_session(fd, CRYPTO_AES_CBC, key, 16);
	struct crypt_op cop = { .ses = ses, .op = COP_ENCRYPT, .len = len,
				.src = src, .dst = dst, .iv = iv };

	fill(src, len);
	memset(dst, 0x5a, len);
	openssl_crypt(CRYPTO_AES_CBC, key, 16, iv, 1, src, want, (int)len);
	check(ioctl(fd, CIOCASYNCCRYPT, &cop) == 0, "queue", "errno %d", errno);
	check(wait_for(fd, POLLIN, 30000), "completion", "no POLLIN in 30 s");
	err = ioctl(fd, CIOCASYNCFETCH, &cop) ? errno : 0;
	for (uint32_t i = 0; i < len; i++)
		intact &= dst[i] == 0x5a;
	if (!err)
		check(!memcmp(dst, want, len), "output equals OpenSSL", "differs");
	printf("fault errno %d intact %d\n", err, intact);
	close(fd);
	return failures;
}

/*
 * The in-flight byte budget (max_inflight_kb below 2 * LEN), on a stalled
 * device: the first operation is queued (a request alone always fits), the
 * second is EBUSY (this file has one to fetch); once GOFILE exists (the
 * host cleared the stall) the first is fetched and a third is queued.
 */
static int cmd_budget(int argc, char **argv)
{
	uint32_t len = (uint32_t)atoi(argv[0]);
	uint8_t key[16] = { 11 }, iv[16] = { 12 }, *src = calloc(1, len);
	uint8_t *dst = calloc(3, len);
	int fd = open_crypto(), err;
	uint32_t ses = new_session(fd, CRYPTO_AES_CBC, key, 16);
	struct crypt_op cop = { .ses = ses, .op = COP_ENCRYPT, .len = len,
				.src = src, .dst = dst, .iv = iv };

	(void)argc;
	printf("budget session ok\n");
	while (access(argv[1], F_OK))
		usleep(20000);
	check(ioctl(fd, CIOCASYNCCRYPT, &cop) == 0, "the first operation is queued",
	      "errno %d", errno);
	cop.dst = dst + len;
	err = ioctl(fd, CIOCASYNCCRYPT, &cop) ? errno : 0;
	check(err == EBUSY, "over the in-flight budget with one queued: EBUSY", "errno %d", err);
	printf("budget second errno %d\n", err);
	while (access(argv[2], F_OK))
		usleep(20000);
	check(wait_for(fd, POLLIN, 30000), "the first completes", "no POLLIN in 30 s");
	check(ioctl(fd, CIOCASYNCFETCH, &cop) == 0 && cop.dst == dst, "and is fetched",
	      "errno %d", errno);
	cop.dst = dst + 2 * len;
	check(ioctl(fd, CIOCASYNCCRYPT, &cop) == 0, "then the next is queued", "errno %d", errno);
	check(wait_for(fd, POLLIN, 30000) && ioctl(fd, CIOCASYNCFETCH, &cop) == 0,
	      "and fetched", "errno %d", errno);
	printf("budget done\n");
	close(fd);
	return failures;
}

/* One process keeps DEPTH AES-256-CBC encrypts of SIZE in flight for MS. */
static int cmd_bench(int argc, char **argv)
{
	uint32_t size;
	int depth, inflight = 0, fd;
	double ms, t0, t;
	long ops = 0;
	uint8_t key[32] = { 9 }, iv[16] = { 10 }, *src, *dst;
	struct crypt_op cop, got;
	uint32_t ses;

	if (argc < 3)
		return 100;
	size = (uint32_t)atoi(argv[0]);
	depth = atoi(argv[1]);
	ms = atof(argv[2]);
	if (size < 16 || size > 1 << 20 || size % 16 || depth < 1 || depth > MAXDEPTH) {
		printf("{\"error\":\"bad arguments\"}\n");
		return 100;
	}
	fd = open_crypto();
	ses = new_session(fd, CRYPTO_AES_CBC, key, 32);
	src = malloc((size_t)size * depth);
	dst = malloc((size_t)size * depth);
	fill(src, (size_t)size * depth);
	memset(dst, 0, (size_t)size * depth);
	t0 = now_s();
	for (int slot = 0;;) {
		t = now_s();
		while (inflight < depth && t - t0 < ms / 1000) {
			cop = (struct crypt_op){ .ses = ses, .op = COP_ENCRYPT,
						 .len = size,
						 .src = src + (size_t)slot * size,
						 .dst = dst + (size_t)slot * size,
						 .iv = iv };
			if (ioctl(fd, CIOCASYNCCRYPT, &cop)) {
				if (errno == EBUSY)
					break;
				printf("{\"error\":\"crypt errno %d\"}\n", errno);
				return 1;
			}
			slot = (slot + 1) % depth;
			inflight++;
		}
		if (!inflight)
			break;
		if (!wait_for(fd, POLLIN, 30000)) {
			printf("{\"error\":\"no completion in 30 s\"}\n");
			return 1;
		}
		for (;;) {
			if (ioctl(fd, CIOCASYNCFETCH, &got)) {
				if (errno == EBUSY)
					break;
				printf("{\"error\":\"fetch errno %d\"}\n", errno);
				return 1;
			}
			inflight--;
			ops++;
		}
	}
	t = now_s() - t0;
	printf("{\"mode\":\"async\",\"alg\":\"aes-256-cbc\",\"size\":%u,\"depth\":%d,\"procs\":1,\"ops\":%ld,\"seconds\":%.3f,\"opsPerSec\":%.1f,\"MBps\":%.3f}\n",
	       size, depth, ops, t, ops / t, ops * (double)size / t / 1e6);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		return 100;
	if (!strcmp(argv[1], "check"))
		r = cmd_check(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "ebusy"))
		r = cmd_ebusy();
	else if (!strcmp(argv[1], "prefetch"))
		r = cmd_prefetch(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "orphan"))
		r = cmd_orphan(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "timeout") && argc > 3)
		r = cmd_timeout(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "fallback"))
		r = cmd_fallback();
	else if (!strcmp(argv[1], "fault"))
		r = cmd_fault(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "budget") && argc > 4)
		r = cmd_budget(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "bench"))
		r = cmd_bench(argc - 2, argv + 2);
	else
		return 100;
	return r > 100 ? 100 : r;
}

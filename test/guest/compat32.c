// SPDX-License-Identifier: MIT
/*
 * A 32-bit (i386) client of /dev/crypto, to exercise the driver's compat_ioctl: the session_op and
 * crypt_op structures carry 4-byte pointers there. Freestanding (no 32-bit libc is installed): raw
 * int $0x80 system calls. Prints "ok NAME" / "not ok NAME" lines; exit status = failures.
 * Build: gcc -m32 -static -nostdlib -ffreestanding -fno-pic -fno-stack-protector -O1 -o compat32 compat32.c
 */
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

struct session_op32 { u32 cipher, mac, keylen, key, mackeylen, mackey, ses; };
struct crypt_op32 { u32 ses; u16 op, flags; u32 len, src, dst, mac, iv; };
struct session_info_op { u32 ses; char names[4][64]; u16 alignmask; u32 flags; };
/* CIOCAUTHCRYPT's structure as a 32-bit process lays it out (44 bytes; 72 on x86_64). */
struct crypt_auth_op32 { u32 ses; u16 op, flags; u32 len, auth_len, auth_src, src, dst, tag, tag_len, iv, iv_len; };

#define IOWR(nr, size) (0xc0000000u | ((u32)(size) << 16) | (0x63u << 8) | (nr))
#define COMPAT_CIOCGSESSION IOWR(102, sizeof(struct session_op32))
#define COMPAT_CIOCCRYPT IOWR(104, sizeof(struct crypt_op32))
#define CIOCGSESSINFO IOWR(107, sizeof(struct session_info_op))
#define CIOCFSESSION (0x40000000u | (4u << 16) | (0x63u << 8) | 103)
#define COMPAT_CIOCAUTHCRYPT IOWR(109, sizeof(struct crypt_auth_op32))
#define CIOCAUTHCRYPT64 IOWR(109, 72)

static long sys3(long n, long a, long b, long c)
{
	long r;

	__asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a), "c"(b), "d"(c) : "memory");
	return r;
}

static int failures;

static u32 slen(const char *s)
{
	u32 n = 0;

	while (s[n])
		n++;
	return n;
}

static void say(const char *s)
{
	sys3(4, 1, (long)s, slen(s));
}

static void check(int cond, const char *name)
{
	if (!cond)
		failures++;
	say(cond ? "ok " : "not ok ");
	say(name);
	say("\n");
}

static int same(const u8 *a, const u8 *b, u32 n)
{
	for (u32 i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

/* NIST SP 800-38A F.2.1, first block. */
static const u8 key[16] = { 0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c };
static const u8 pt[16] = { 0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17, 0x2a };
static const u8 ct[16] = { 0x76, 0x49, 0xab, 0xac, 0x81, 0x19, 0xb2, 0x46, 0xce, 0xe9, 0x8e, 0x9b, 0x12, 0xe9, 0x19, 0x7d };

/*
 * cryptodev-linux's compat_ioctl has no case for CIOCAUTHCRYPT (neither the 32-bit layout's number nor
 * the 64-bit one): both fall to its default, EINVAL, before the argument is read. A GCM session can
 * still be opened and freed from 32-bit; it cannot be used.
 */
static void authcrypt(long fd)
{
	static u8 gcm_iv[12], in[32], out[48], tag[16];
	static struct session_op32 gsop;
	static struct crypt_auth_op32 aop;

	gsop.cipher = 50;	/* CRYPTO_AES_GCM */
	gsop.keylen = 16;
	gsop.key = (u32)key;
	check(sys3(54, fd, COMPAT_CIOCGSESSION, (long)&gsop) == 0 && gsop.ses != 0, "compat CIOCGSESSION for AES-GCM");
	for (u32 i = 0; i < sizeof(out); i++)
		out[i] = 0x5a;
	aop.ses = gsop.ses;
	aop.len = 32;
	aop.src = (u32)in;
	aop.dst = (u32)out;
	aop.tag = (u32)tag;
	aop.tag_len = 16;
	aop.iv = (u32)gcm_iv;
	aop.iv_len = 12;
	check(sys3(54, fd, COMPAT_CIOCAUTHCRYPT, (long)&aop) == -22 && out[0] == 0x5a && out[47] == 0x5a,
	      "compat CIOCAUTHCRYPT (32-bit layout) gives EINVAL, dst untouched, like cryptodev-linux");
	check(sys3(54, fd, CIOCAUTHCRYPT64, (long)&aop) == -22, "CIOCAUTHCRYPT's 64-bit number from 32-bit gives EINVAL");
	check(sys3(54, fd, COMPAT_CIOCAUTHCRYPT, 16 /* unmapped */) == -22, "compat CIOCAUTHCRYPT with an unmapped argument gives EINVAL, not EFAULT");
	check(sys3(54, fd, CIOCFSESSION, (long)&gsop.ses) == 0, "CIOCFSESSION of the GCM session from 32-bit");
}

static int run(void)
{
	static u8 iv[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
	static u8 out[16];
	static struct session_op32 sop;
	static struct crypt_op32 cop;
	static struct session_info_op si;
	long fd = sys3(5, (long)"/dev/crypto", 2 /* O_RDWR */, 0);

	if (fd < 0) {
		say("not ok open /dev/crypto\n");
		return 1;
	}
	sop.cipher = 11;	/* CRYPTO_AES_CBC */
	sop.keylen = 16;
	sop.key = (u32)key;
	check(sys3(54, fd, COMPAT_CIOCGSESSION, (long)&sop) == 0 && sop.ses != 0, "compat CIOCGSESSION");
	cop.ses = sop.ses;
	cop.op = 0;
	cop.flags = 4;		/* COP_FLAG_WRITE_IV */
	cop.len = 16;
	cop.src = (u32)pt;
	cop.dst = (u32)out;
	cop.iv = (u32)iv;
	check(sys3(54, fd, COMPAT_CIOCCRYPT, (long)&cop) == 0 && same(out, ct, 16), "compat CIOCCRYPT matches NIST F.2.1");
	check(same(iv, ct, 16), "compat COP_FLAG_WRITE_IV returns the next IV");
	si.ses = sop.ses;
	check(sys3(54, fd, CIOCGSESSINFO, (long)&si) == 0 && (si.flags & 1) && same((const u8 *)si.names[0], (const u8 *)"cbc(aes)", 9),
	      "CIOCGSESSINFO from 32-bit");
	cop.src = 16;		/* unmapped */
	check(sys3(54, fd, COMPAT_CIOCCRYPT, (long)&cop) == -14, "compat bad src pointer gives EFAULT");
	check(sys3(54, fd, 0xc0046300u | 200, (long)&cop) == -22, "compat unknown ioctl gives EINVAL");
	check(sys3(54, fd, CIOCFSESSION, (long)&sop.ses) == 0, "CIOCFSESSION from 32-bit");
	authcrypt(fd);
	sys3(6, fd, 0, 0);
	return failures;
}

void _start(void)
{
	sys3(1, run(), 0, 0);
	for (;;)
		;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * The fallback: what the device cannot do runs on the guest kernel's
 * crypto API, with cryptodev-linux's semantics (its hash_n_crypt order,
 * COP_FLAG_UPDATE/FINAL/RESET hash state, CIOCAUTHCRYPT's AEAD, TLS and
 * SRTP modes). Data is copied through kernel pages (vc_buf): the kernel's
 * software algorithms run on the CPU anyway.
 */
#include <crypto/aead.h>
#include <crypto/algapi.h>
#include <crypto/hash.h>
#include <crypto/skcipher.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vlab_cryptodev.h"

bool vc_fallback = true;
module_param_named(fallback, vc_fallback, bool, 0644);
MODULE_PARM_DESC(fallback,
		 "Run sessions the device cannot serve on the guest kernel's crypto API (0: device only, EINVAL; default 1)");

/* Largest AAD of CIOCAUTHCRYPT, as cryptodev-linux. */
#define VC_MAX_AUTH_LEN		PAGE_SIZE
/* SRTP: src lies at most this far into auth_src, as cryptodev-linux. */
#define VC_MAX_SRTP_DIFF	256

struct vc_kalg {
	u32 cryptodev;
	const char *name;
	bool aead;
	bool hmac;
};

static const struct vc_kalg vc_kciphers[] = {
	{ CRYPTO_NULL, "ecb(cipher_null)" },
	{ CRYPTO_3DES_CBC, "cbc(des3_ede)" },
	{ CRYPTO_AES_CBC, "cbc(aes)" },
	{ CRYPTO_AES_CTR, "ctr(aes)" },
	{ CRYPTO_AES_ECB, "ecb(aes)" },
	{ CRYPTO_AES_XTS, "xts(aes)" },
	{ CRYPTO_AES_GCM, "gcm(aes)", true },
};

static const struct vc_kalg vc_kmacs[] = {
	{ CRYPTO_MD5_HMAC, "hmac(md5)", false, true },
	{ CRYPTO_SHA1_HMAC, "hmac(sha1)", false, true },
	{ CRYPTO_SHA2_224_HMAC, "hmac(sha224)", false, true },
	{ CRYPTO_SHA2_256_HMAC, "hmac(sha256)", false, true },
	{ CRYPTO_SHA2_384_HMAC, "hmac(sha384)", false, true },
	{ CRYPTO_SHA2_512_HMAC, "hmac(sha512)", false, true },
	{ CRYPTO_MD5, "md5" },
	{ CRYPTO_SHA1, "sha1" },
	{ CRYPTO_SHA2_224, "sha224" },
	{ CRYPTO_SHA2_256, "sha256" },
	{ CRYPTO_SHA2_384, "sha384" },
	{ CRYPTO_SHA2_512, "sha512" },
};

static const struct vc_kalg *vc_kfind(const struct vc_kalg *t, size_t n,
				      u32 cryptodev)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (t[i].cryptodev == cryptodev)
			return &t[i];
	return NULL;
}

bool vc_kern_known_cipher(u32 cryptodev)
{
	return vc_kfind(vc_kciphers, ARRAY_SIZE(vc_kciphers), cryptodev);
}

bool vc_kern_known_mac(u32 cryptodev)
{
	return vc_kfind(vc_kmacs, ARRAY_SIZE(vc_kmacs), cryptodev);
}

bool vc_kern_is_aead(u32 cryptodev)
{
	const struct vc_kalg *a = vc_kfind(vc_kciphers, ARRAY_SIZE(vc_kciphers),
					   cryptodev);

	return a && a->aead;
}

/* A transform the kernel cannot make or key is cryptodev-linux's EINVAL. */
static int vc_kerr(int err)
{
	return err == -ENOMEM ? -ENOMEM : -EINVAL;
}

/* Allocates and keys what the session's algorithms need; idempotent. */
int vc_kern_prepare(struct vc_session *s)
{
	struct vc_kern *k = &s->k;
	const struct vc_kalg *a;
	int err;

	if (s->cipher_id && !k->skc && !k->aead) {
		a = vc_kfind(vc_kciphers, ARRAY_SIZE(vc_kciphers),
			     s->cipher_id);
		if (!a)
			return -EINVAL;
		if (a->aead) {
			struct crypto_aead *t = crypto_alloc_aead(a->name, 0, 0);

			if (IS_ERR(t))
				return vc_kerr(PTR_ERR(t));
			err = crypto_aead_setkey(t, s->key, s->keylen);
			if (err) {
				crypto_free_aead(t);
				return vc_kerr(err);
			}
			k->aead = t;
		} else {
			struct crypto_skcipher *t =
				crypto_alloc_skcipher(a->name, 0, 0);

			if (IS_ERR(t))
				return vc_kerr(PTR_ERR(t));
			err = crypto_skcipher_setkey(t, s->key, s->keylen);
			if (err || crypto_skcipher_ivsize(t) > VC_MAX_IV) {
				crypto_free_skcipher(t);
				return -EINVAL;
			}
			k->skc = t;
		}
	}
	if (s->mac_id && !k->shash) {
		struct crypto_shash *t;

		a = vc_kfind(vc_kmacs, ARRAY_SIZE(vc_kmacs), s->mac_id);
		if (!a)
			return -EINVAL;
		t = crypto_alloc_shash(a->name, 0, 0);
		if (IS_ERR(t))
			return vc_kerr(PTR_ERR(t));
		err = a->hmac ? crypto_shash_setkey(t, s->mackey, s->mackeylen) : 0;
		if (err || crypto_shash_digestsize(t) > VC_MAX_DIGEST) {
			crypto_free_shash(t);
			return -EINVAL;
		}
		k->desc = kzalloc(sizeof(*k->desc) + crypto_shash_descsize(t),
				  GFP_KERNEL);
		if (!k->desc) {
			crypto_free_shash(t);
			return -ENOMEM;
		}
		k->desc->tfm = t;
		k->shash = t;
	}
	return 0;
}

void vc_kern_free(struct vc_session *s)
{
	struct vc_kern *k = &s->k;

	if (k->skc)
		crypto_free_skcipher(k->skc);
	if (k->aead)
		crypto_free_aead(k->aead);
	if (k->desc) {
		crypto_free_shash(k->shash);
		kfree_sensitive(k->desc);
	}
	memset(k, 0, sizeof(*k));
	kfree_sensitive(s->key);
	kfree_sensitive(s->mackey);
	s->key = NULL;
	s->mackey = NULL;
}

/* cryptodev-linux: the hash restarts on flags == 0 or COP_FLAG_RESET. */
static bool vc_hash_reset(const struct crypt_op *cop)
{
	return !cop->flags || (cop->flags & COP_FLAG_RESET);
}

/* ... and ends on FINAL, on no UPDATE, or on an empty update. */
static bool vc_hash_final(const struct crypt_op *cop)
{
	return (cop->flags & COP_FLAG_FINAL) ||
	       !(cop->flags & COP_FLAG_UPDATE) || !cop->len;
}

/*
 * A device session's operation that needs hash state across calls: the
 * device is stateless, so it runs on the kernel. Under iv_mutex.
 */
bool vc_kern_multipart(const struct vc_session *s, const struct crypt_op *cop)
{
	if (!s->mac_id)
		return false;
	return !vc_hash_final(cop) ||
	       (!vc_hash_reset(cop) && s->k.hash_pending);
}

/* Copies n bytes between user memory and buf at off. */
static int vc_kbuf_user(struct vc_buf *b, unsigned int off, u8 __user *u,
			unsigned int n, bool to_user)
{
	while (n) {
		unsigned int po = off % PAGE_SIZE;
		unsigned int c = min_t(unsigned int, n, PAGE_SIZE - po);
		u8 *p = (u8 *)page_address(b->pages[off / PAGE_SIZE]) + po;

		if (to_user ? copy_to_user(u, p, c) : copy_from_user(p, u, c))
			return -EFAULT;
		u += c;
		off += c;
		n -= c;
	}
	return 0;
}

/* Copies n bytes between kernel memory and buf at off. */
static void vc_kbuf_kern(struct vc_buf *b, unsigned int off, u8 *k,
			 unsigned int n, bool to_buf)
{
	while (n) {
		unsigned int po = off % PAGE_SIZE;
		unsigned int c = min_t(unsigned int, n, PAGE_SIZE - po);
		u8 *p = (u8 *)page_address(b->pages[off / PAGE_SIZE]) + po;

		if (to_buf)
			memcpy(p, k, c);
		else
			memcpy(k, p, c);
		k += c;
		off += c;
		n -= c;
	}
}

static int vc_kbuf_hash(struct shash_desc *d, struct vc_buf *b,
			unsigned int off, unsigned int n)
{
	int err = 0;

	while (n && !err) {
		unsigned int po = off % PAGE_SIZE;
		unsigned int c = min_t(unsigned int, n, PAGE_SIZE - po);

		err = crypto_shash_update(d, (u8 *)page_address(
				b->pages[off / PAGE_SIZE]) + po, c);
		off += c;
		n -= c;
	}
	return err;
}

/* Runs the skcipher over buf[off, off + n) in place with iv. */
static int vc_kcipher(struct crypto_skcipher *tfm, bool enc,
		      struct vc_buf *b, unsigned int off, unsigned int n,
		      u8 *iv)
{
	struct skcipher_request *req;
	unsigned int i, o = off, left = n, np;
	struct scatterlist *sg;
	DECLARE_CRYPTO_WAIT(wait);
	int err;

	if (!n)
		return 0;
	req = skcipher_request_alloc(tfm, GFP_KERNEL);
	np = DIV_ROUND_UP(off % PAGE_SIZE + n, PAGE_SIZE);
	sg = kmalloc_array(np, sizeof(*sg), GFP_KERNEL);
	if (!req || !sg) {
		err = -ENOMEM;
		goto out;
	}
	/* The pages of buf that hold the range. */
	sg_init_table(sg, np);
	for (i = 0; i < np; i++) {
		unsigned int po = o % PAGE_SIZE;
		unsigned int c = min_t(unsigned int, left, PAGE_SIZE - po);

		sg_set_page(&sg[i], b->pages[o / PAGE_SIZE], c, po);
		o += c;
		left -= c;
	}
	skcipher_request_set_callback(req, CRYPTO_TFM_REQ_MAY_BACKLOG |
				      CRYPTO_TFM_REQ_MAY_SLEEP,
				      crypto_req_done, &wait);
	skcipher_request_set_crypt(req, sg, sg, n, iv);
	err = crypto_wait_req(enc ? crypto_skcipher_encrypt(req) :
				    crypto_skcipher_decrypt(req), &wait);
out:
	kfree(sg);
	skcipher_request_free(req);
	return err;
}

static unsigned int vc_kivsize(const struct vc_session *s)
{
	if (s->k.skc)
		return crypto_skcipher_ivsize(s->k.skc);
	if (s->k.aead)
		return crypto_aead_ivsize(s->k.aead);
	return 0;
}

/* The IV an operation starts from: the caller's or the session's. */
static int vc_kiv_in(struct vc_session *s, const u8 __user *uiv, u8 *iv)
{
	unsigned int ivsize = vc_kivsize(s);

	if (!ivsize)
		return 0;
	if (uiv)
		return copy_from_user(iv, uiv, ivsize) ? -EFAULT : 0;
	spin_lock(&s->iv_lock);
	memcpy(iv, s->iv, ivsize);
	spin_unlock(&s->iv_lock);
	return 0;
}

/* The session keeps the IV the kernel left; COP_FLAG_WRITE_IV returns it. */
static int vc_kiv_out(struct vc_session *s, u8 __user *uiv, u16 flags,
		      const u8 *iv)
{
	unsigned int ivsize = vc_kivsize(s);

	if (!ivsize)
		return 0;
	spin_lock(&s->iv_lock);
	memcpy(s->iv, iv, ivsize);
	spin_unlock(&s->iv_lock);
	if (uiv && (flags & COP_FLAG_WRITE_IV) &&
	    copy_to_user(uiv, iv, ivsize))
		return -EFAULT;
	return 0;
}

/* A hash-only operation: the source through one page at a time. */
static int vc_khash_user(struct shash_desc *d, const u8 __user *src,
			 unsigned int len)
{
	u8 *page;
	int err = 0;

	if (!len)
		return 0;
	page = (u8 *)__get_free_page(GFP_KERNEL);
	if (!page)
		return -ENOMEM;
	while (len && !err) {
		unsigned int c = min_t(unsigned int, len, PAGE_SIZE);

		if (fatal_signal_pending(current))
			err = -EINTR;
		else if (copy_from_user(page, src, c))
			err = -EFAULT;
		else
			err = crypto_shash_update(d, page, c);
		src += c;
		len -= c;
		cond_resched();
	}
	free_page((unsigned long)page);
	return err;
}

/* CIOCCRYPT on the kernel path, as cryptodev-linux's crypto_run. */
int vc_kern_crypt_locked(struct vc_session *s, struct crypt_op *cop)
{
	struct vc_kern *k = &s->k;
	u8 digest[VC_MAX_DIGEST], iv[VC_MAX_IV];
	struct vc_buf b = {};
	bool enc = cop->op == COP_ENCRYPT;
	int err;

	err = vc_kern_prepare(s);
	if (err)
		return err;
	/* AEAD ciphers take CIOCAUTHCRYPT only. */
	if (k->aead)
		return -EINVAL;
	if (k->skc && cop->len % crypto_skcipher_blocksize(k->skc))
		return -EINVAL;
	if (k->skc && cop->len > VC_MAX_DATA_LEN)
		return -EINVAL;
	err = vc_kiv_in(s, cop->iv, iv);
	if (err)
		return err;
	if (k->shash && (vc_hash_reset(cop) || !k->hash_pending)) {
		k->hash_pending = false;
		err = crypto_shash_init(k->desc);
		if (err)
			goto out;
	}

	if (k->skc && cop->len) {
		err = vc_buf_alloc(&b, cop->len);
		if (!err)
			err = vc_kbuf_user(&b, 0, cop->src, cop->len, false);
		if (!err && k->shash && enc)
			err = vc_kbuf_hash(k->desc, &b, 0, cop->len);
		if (!err)
			err = vc_kcipher(k->skc, enc, &b, 0, cop->len, iv);
		if (!err && k->shash && !enc)
			err = vc_kbuf_hash(k->desc, &b, 0, cop->len);
		if (!err)
			err = vc_kbuf_user(&b, 0, cop->dst, cop->len, true);
	} else if (k->shash) {
		err = vc_khash_user(k->desc, cop->src, cop->len);
	}
	if (err)
		goto out;
	err = vc_kiv_out(s, cop->iv, cop->flags, iv);
	if (err)
		goto out;

	if (k->shash && vc_hash_final(cop)) {
		err = crypto_shash_final(k->desc, digest);
		if (!err && copy_to_user(cop->mac, digest,
					 crypto_shash_digestsize(k->shash)))
			err = -EFAULT;
		k->hash_pending = false;
	} else if (k->shash) {
		k->hash_pending = true;
	}
out:
	if (err && k->shash)
		k->hash_pending = false;
	vc_buf_free(&b);
	memzero_explicit(iv, sizeof(iv));
	memzero_explicit(digest, sizeof(digest));
	return err;
}

int vc_kern_crypt(struct vc_session *s, struct crypt_op *cop)
{
	int err;

	if (mutex_lock_interruptible(&s->iv_mutex))
		return -ERESTARTSYS;
	err = vc_kern_crypt_locked(s, cop);
	mutex_unlock(&s->iv_mutex);
	return err;
}

/* HMAC over the AAD (kernel copy) and buf[off, off + n). */
static int vc_kmac(struct vc_session *s, const u8 *auth, unsigned int alen,
		   struct vc_buf *b, unsigned int off, unsigned int n, u8 *out)
{
	struct shash_desc *d = s->k.desc;
	int err;

	s->k.hash_pending = false;
	err = crypto_shash_init(d);
	if (!err && alen)
		err = crypto_shash_update(d, auth, alen);
	if (!err)
		err = vc_kbuf_hash(d, b, off, n);
	if (!err)
		err = crypto_shash_final(d, out);
	return err;
}

/*
 * Plain AEAD (AES-GCM), as cryptodev-linux: tag_len 0 is the full tag.
 * Encrypt: dst = ciphertext || tag, len = plaintext + tag_len. Decrypt: the
 * tag ends src (len includes it), len = len - tag_len. Both write back
 * tag_len and tag (where the tag is in dst).
 */
static int vc_kaead(struct vc_session *s, struct crypt_auth_op *caop, u8 *iv)
{
	struct crypto_aead *tfm = s->k.aead;
	unsigned int max = crypto_aead_maxauthsize(tfm);
	unsigned int tag = caop->tag_len ? caop->tag_len : max;
	bool enc = caop->op == COP_ENCRYPT;
	struct aead_request *req = NULL;
	DECLARE_CRYPTO_WAIT(wait);
	struct vc_buf b = {};
	unsigned int out;
	int err;

	if (tag > max || crypto_aead_setauthsize(tfm, tag))
		return -EINVAL;
	if (caop->auth_len > VC_MAX_AUTH_LEN || caop->len > VC_MAX_DATA_LEN)
		return -EINVAL;
	if (!enc && caop->len < tag)
		return -EINVAL;
	out = enc ? caop->len + tag : caop->len - tag;
	err = vc_buf_alloc(&b, caop->auth_len + caop->len + (enc ? tag : 0));
	if (err)
		goto out;
	if (caop->auth_len)
		err = vc_kbuf_user(&b, 0, caop->auth_src, caop->auth_len,
				   false);
	if (!err)
		err = vc_kbuf_user(&b, caop->auth_len, caop->src, caop->len,
				   false);
	if (err)
		goto out;
	req = aead_request_alloc(tfm, GFP_KERNEL);
	if (!req) {
		err = -ENOMEM;
		goto out;
	}
	aead_request_set_callback(req, CRYPTO_TFM_REQ_MAY_BACKLOG |
				  CRYPTO_TFM_REQ_MAY_SLEEP,
				  crypto_req_done, &wait);
	aead_request_set_crypt(req, b.sg, b.sg, caop->len, iv);
	aead_request_set_ad(req, caop->auth_len);
	/* A bad tag is -EBADMSG; nothing of the plaintext is copied out. */
	err = crypto_wait_req(enc ? crypto_aead_encrypt(req) :
				    crypto_aead_decrypt(req), &wait);
	if (!err)
		err = vc_kbuf_user(&b, caop->auth_len, caop->dst, out, true);
	if (!err) {
		/* As cryptodev-linux: the tag's length and place come back. */
		caop->tag = caop->dst + (enc ? caop->len : out);
		caop->tag_len = tag;
		caop->len = out;
	}
out:
	aead_request_free(req);
	vc_buf_free(&b);
	return err;
}

/* A copy of the AAD, at most a page. */
static u8 *vc_kauth(const struct crypt_auth_op *caop)
{
	if (caop->auth_len > VC_MAX_AUTH_LEN)
		return ERR_PTR(-EINVAL);
	if (!caop->auth_src || !caop->auth_len)
		return NULL;
	return memdup_user(caop->auth_src, caop->auth_len);
}

/* Hashes n more bytes of b at off into a discarded state (same work). */
static int vc_khash_more(struct vc_session *s, struct vc_buf *b,
			 unsigned int off, unsigned int n)
{
	int err = crypto_shash_init(s->k.desc);

	if (!err)
		err = vc_kbuf_hash(s->k.desc, b, off, n);
	return err;
}

/*
 * TLS padding of a decrypted record b[0, len), checked with no branch on
 * its bytes: the last min(len, 256) bytes are always read. Returns the
 * plaintext length; when the padding is bad, or leaves less than the tag,
 * *bad is set and the length returned is as if the padding were one byte.
 * The caller ensured len >= tag + 1 for a block cipher.
 */
static unsigned int vc_tls_unpad(struct vc_buf *b, unsigned int len,
				 unsigned int bs, unsigned int tag,
				 unsigned long *bad)
{
	unsigned int room = len - tag, n = min(len, 256U), i, mask, pad;
	u8 last, c, diff = 0;

	*bad = 0;
	if (bs <= 1)
		return room;
	vc_kbuf_kern(b, len - 1, &last, 1, false);
	pad = last;
	for (i = 0; i < n; i++) {
		vc_kbuf_kern(b, len - 1 - i, &c, 1, false);
		/* 0xff for the pad bytes (i <= pad), else 0. */
		diff |= (c ^ last) & (u8)(0U - (unsigned int)(i <= pad));
	}
	*bad = (diff != 0) | (pad + 1 > room);
	mask = 0U - (unsigned int)*bad;
	return ((room - 1) & mask) | ((room - pad - 1) & ~mask);
}

/*
 * TLS: encrypt appends the HMAC of AAD || plaintext and the padding, then
 * CBC-encrypts it all in place. Decrypt: every failure after decryption
 * (padding, padding that leaves less than the MAC, MAC) is EBADMSG, and
 * the padding check and the hashing (len - tag bytes) do the same work
 * whatever the padding was: no padding oracle (cryptodev-linux has one).
 */
static int vc_ktls(struct vc_session *s, struct crypt_auth_op *caop, u8 *iv)
{
	struct vc_kern *k = &s->k;
	unsigned int bs = crypto_skcipher_blocksize(k->skc);
	unsigned int dsz = k->shash ? crypto_shash_digestsize(k->shash) : 0;
	unsigned int tag = k->shash ? (caop->tag_len ? caop->tag_len : dsz) : 0;
	u8 want[VC_MAX_DIGEST], got[VC_MAX_DIGEST];
	bool enc = caop->op == COP_ENCRYPT;
	unsigned int len = caop->len, total, plen, i;
	unsigned long bad;
	struct vc_buf b = {};
	u8 *auth;
	int err;

	if (tag > dsz || len > VC_MAX_DATA_LEN)
		return -EINVAL;
	/* Lengths alone (public) may be EINVAL: room for the MAC and a pad. */
	if (!enc && len < tag + (bs > 1 ? 1 : 0))
		return -EINVAL;
	total = enc ? len + tag : len;
	if (enc && bs > 1)
		total += bs - total % bs;
	if (!caop->dst || !total)
		return -EINVAL;
	auth = vc_kauth(caop);
	if (IS_ERR(auth))
		return PTR_ERR(auth);
	err = vc_buf_alloc(&b, total);
	if (!err)
		err = vc_kbuf_user(&b, 0, caop->dst, len, false);
	if (err)
		goto out;
	if (enc) {
		if (k->shash) {
			err = vc_kmac(s, auth, auth ? caop->auth_len : 0, &b, 0,
				      len, got);
			if (err)
				goto out;
			vc_kbuf_kern(&b, len, got, tag, true);
		}
		for (i = len + tag; i < total; i++) {
			u8 pad = total - (len + tag) - 1;

			vc_kbuf_kern(&b, i, &pad, 1, true);
		}
		err = vc_kcipher(k->skc, true, &b, 0, total, iv);
		if (!err)
			err = vc_kbuf_user(&b, 0, caop->dst, total, true);
		if (!err) {
			caop->len = total;
			caop->tag_len = tag;
		}
		goto out;
	}

	err = vc_kcipher(k->skc, false, &b, 0, len, iv);
	if (err)
		goto out;
	/* From here every failure is EBADMSG, with the same MAC work. */
	plen = vc_tls_unpad(&b, len, bs, tag, &bad);
	if (k->shash) {
		vc_kbuf_kern(&b, plen, want, tag, false);
		err = vc_kmac(s, auth, auth ? caop->auth_len : 0, &b, 0, plen,
			      got);
		/* The rest of the record, so the hashing covers len - tag. */
		if (!err)
			err = vc_khash_more(s, &b, plen + tag, len - plen - tag);
		if (err)
			goto out;
		bad |= crypto_memneq(want, got, tag);
	}
	if (bad) {
		err = -EBADMSG;
		goto out;
	}
	len = plen;
	err = vc_kbuf_user(&b, 0, caop->dst, len, true);
	if (!err) {
		caop->len = len;
		caop->tag_len = tag;
	}
out:
	vc_buf_free(&b);
	kfree_sensitive(auth);
	memzero_explicit(got, sizeof(got));
	return err;
}

/*
 * SRTP: src (== dst) lies within auth_src; encrypt ciphers src in place and
 * writes the HMAC of all auth_src to tag; decrypt checks it first.
 */
static int vc_ksrtp(struct vc_session *s, struct crypt_auth_op *caop, u8 *iv)
{
	struct vc_kern *k = &s->k;
	unsigned int dsz = k->shash ? crypto_shash_digestsize(k->shash) : 0;
	unsigned int tag = k->shash ? (caop->tag_len ? caop->tag_len : dsz) : 0;
	u8 want[VC_MAX_DIGEST], got[VC_MAX_DIGEST];
	bool enc = caop->op == COP_ENCRYPT;
	struct vc_buf b = {};
	unsigned long diff, end;
	int err;

	if (crypto_skcipher_blocksize(k->skc) != 1 || tag > dsz)
		return -EINVAL;
	if (!caop->auth_src || !caop->len || !caop->auth_len ||
	    caop->auth_len > VC_MAX_DATA_LEN)
		return -EINVAL;
	if (caop->src < caop->auth_src)
		return -EINVAL;
	diff = caop->src - caop->auth_src;
	if (diff > VC_MAX_SRTP_DIFF ||
	    check_add_overflow(diff, (unsigned long)caop->len, &end) ||
	    end > caop->auth_len)
		return -EINVAL;
	err = vc_buf_alloc(&b, caop->auth_len);
	if (!err)
		err = vc_kbuf_user(&b, 0, caop->auth_src, caop->auth_len,
				   false);
	if (err)
		goto out;
	if (enc) {
		err = vc_kcipher(k->skc, true, &b, diff, caop->len, iv);
		if (!err && k->shash)
			err = vc_kmac(s, NULL, 0, &b, 0, caop->auth_len, got);
		if (!err)
			err = vc_kbuf_user(&b, diff, caop->dst, caop->len,
					   true);
		if (!err && tag && copy_to_user(caop->tag, got, tag))
			err = -EFAULT;
		if (!err)
			caop->tag_len = tag;
		goto out;
	}
	if (k->shash) {
		if (copy_from_user(want, caop->tag, tag)) {
			err = -EFAULT;
			goto out;
		}
		err = vc_kmac(s, NULL, 0, &b, 0, caop->auth_len, got);
		if (!err && crypto_memneq(want, got, tag))
			err = -EBADMSG;
		if (err)
			goto out;
	}
	err = vc_kcipher(k->skc, false, &b, diff, caop->len, iv);
	if (!err)
		err = vc_kbuf_user(&b, diff, caop->dst, caop->len, true);
	if (!err)
		caop->tag_len = tag;
out:
	vc_buf_free(&b);
	memzero_explicit(got, sizeof(got));
	return err;
}

/* CIOCAUTHCRYPT: always the kernel (the device takes no AEAD sessions). */
int vc_kern_authcrypt(struct vc_session *s, struct crypt_auth_op *caop)
{
	u16 mode = caop->flags & (COP_FLAG_AEAD_TLS_TYPE |
				  COP_FLAG_AEAD_SRTP_TYPE);
	u8 iv[VC_MAX_IV];
	int err;

	if (mode && caop->src != caop->dst)
		return -EINVAL;
	if (!s->cipher_id)
		return -EINVAL;
	if (mutex_lock_interruptible(&s->iv_mutex))
		return -ERESTARTSYS;
	err = vc_kern_prepare(s);
	if (err)
		goto out;
	err = vc_kiv_in(s, caop->iv, iv);
	if (err)
		goto out;
	if (caop->flags & COP_FLAG_AEAD_SRTP_TYPE)
		err = s->k.aead ? -EINVAL : vc_ksrtp(s, caop, iv);
	else if (caop->flags & COP_FLAG_AEAD_TLS_TYPE)
		err = s->k.aead ? -EINVAL : vc_ktls(s, caop, iv);
	else
		err = s->k.aead ? vc_kaead(s, caop, iv) : -EINVAL;
	if (!err)
		err = vc_kiv_out(s, caop->iv, caop->flags, iv);
out:
	mutex_unlock(&s->iv_mutex);
	memzero_explicit(iv, sizeof(iv));
	return err;
}

/*
 * CIOCCPHASH: dst continues from a copy of src's multi-part hash state.
 * The kernel keeps that state for device sessions too (the device is
 * stateless). Both must hash with the same algorithm (else EINVAL).
 */
int vc_kern_copy_hash(struct vc_session *dst, struct vc_session *src)
{
	struct vc_session *first = dst < src ? dst : src;
	struct vc_session *second = first == dst ? src : dst;
	void *state = NULL;
	int err;

	if (!src->mac_id || src->mac_id != dst->mac_id)
		return -EINVAL;
	if (mutex_lock_interruptible(&first->iv_mutex))
		return -ERESTARTSYS;
	if (mutex_lock_interruptible_nested(&second->iv_mutex,
					    SINGLE_DEPTH_NESTING)) {
		mutex_unlock(&first->iv_mutex);
		return -ERESTARTSYS;
	}
	err = vc_kern_prepare(dst);
	if (!err && src->k.hash_pending) {
		state = kmalloc(crypto_shash_statesize(src->k.shash),
				GFP_KERNEL);
		err = state ? crypto_shash_export(src->k.desc, state) : -ENOMEM;
		if (!err)
			err = crypto_shash_import(dst->k.desc, state);
	}
	if (!err)
		dst->k.hash_pending = src->k.hash_pending;
	kfree_sensitive(state);
	mutex_unlock(&second->iv_mutex);
	mutex_unlock(&first->iv_mutex);
	return err;
}

static void vc_kinfo_one(struct alg_info *ai, struct crypto_tfm *tfm,
			 u32 *flags)
{
	strscpy(ai->cra_name, crypto_tfm_alg_name(tfm), sizeof(ai->cra_name));
	strscpy(ai->cra_driver_name, crypto_tfm_alg_driver_name(tfm),
		sizeof(ai->cra_driver_name));
	/* As cryptodev-linux: only hardware-only drivers set the flag. */
	if (tfm->__crt_alg->cra_flags & CRYPTO_ALG_KERN_DRIVER_ONLY)
		*flags |= SIOP_FLAG_KERNEL_DRIVER_ONLY;
}

/* CIOCGSESSINFO of a kernel-path session: the kernel's names and flags. */
void vc_kern_info(struct vc_session *s, struct session_info_op *siop)
{
	u32 flags = 0;

	if (s->k.skc)
		vc_kinfo_one(&siop->cipher_info,
			     crypto_skcipher_tfm(s->k.skc), &flags);
	if (s->k.aead)
		vc_kinfo_one(&siop->cipher_info, crypto_aead_tfm(s->k.aead),
			     &flags);
	if (s->k.shash)
		vc_kinfo_one(&siop->hash_info, crypto_shash_tfm(s->k.shash),
			     &flags);
	siop->flags = flags;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Sessions on the control queue and operations on the data queue, in the
 * legacy (no REVISION_1) 72-byte request layouts.
 */
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/highmem.h>

#include "vc_compat.h"
#include "vlab_cryptodev.h"

static const struct vc_cipher_alg vc_ciphers[] = {
	{ CRYPTO_AES_CBC, VIRTIO_CRYPTO_CIPHER_AES_CBC, 16, 16,
	  "cbc(aes)", "vlab_virtio_aes_cbc" },
	{ CRYPTO_AES_CTR, VIRTIO_CRYPTO_CIPHER_AES_CTR, 16, 1,
	  "ctr(aes)", "vlab_virtio_aes_ctr" },
	{ CRYPTO_AES_ECB, VIRTIO_CRYPTO_CIPHER_AES_ECB, 0, 16,
	  "ecb(aes)", "vlab_virtio_aes_ecb" },
};

/* Through algorithm chaining: with a cipher, or alone (NO_CIPHER). */
static const struct vc_mac_alg vc_macs[] = {
	{ CRYPTO_MD5_HMAC, VIRTIO_CRYPTO_MAC_HMAC_MD5, false, 16,
	  "hmac(md5)", "vlab_virtio_hmac_md5" },
	{ CRYPTO_SHA1_HMAC, VIRTIO_CRYPTO_MAC_HMAC_SHA1, false, 20,
	  "hmac(sha1)", "vlab_virtio_hmac_sha1" },
	{ CRYPTO_SHA2_224_HMAC, VIRTIO_CRYPTO_MAC_HMAC_SHA_224, false, 28,
	  "hmac(sha224)", "vlab_virtio_hmac_sha224" },
	{ CRYPTO_SHA2_256_HMAC, VIRTIO_CRYPTO_MAC_HMAC_SHA_256, false, 32,
	  "hmac(sha256)", "vlab_virtio_hmac_sha256" },
	{ CRYPTO_SHA2_384_HMAC, VIRTIO_CRYPTO_MAC_HMAC_SHA_384, false, 48,
	  "hmac(sha384)", "vlab_virtio_hmac_sha384" },
	{ CRYPTO_SHA2_512_HMAC, VIRTIO_CRYPTO_MAC_HMAC_SHA_512, false, 64,
	  "hmac(sha512)", "vlab_virtio_hmac_sha512" },
	{ CRYPTO_MD5, VIRTIO_CRYPTO_HASH_MD5, true, 16,
	  "md5", "vlab_virtio_md5" },
	{ CRYPTO_SHA1, VIRTIO_CRYPTO_HASH_SHA1, true, 20,
	  "sha1", "vlab_virtio_sha1" },
	{ CRYPTO_SHA2_224, VIRTIO_CRYPTO_HASH_SHA_224, true, 28,
	  "sha224", "vlab_virtio_sha224" },
	{ CRYPTO_SHA2_256, VIRTIO_CRYPTO_HASH_SHA_256, true, 32,
	  "sha256", "vlab_virtio_sha256" },
	{ CRYPTO_SHA2_384, VIRTIO_CRYPTO_HASH_SHA_384, true, 48,
	  "sha384", "vlab_virtio_sha384" },
	{ CRYPTO_SHA2_512, VIRTIO_CRYPTO_HASH_SHA_512, true, 64,
	  "sha512", "vlab_virtio_sha512" },
};

const struct vc_cipher_alg *vc_find_cipher(u32 cryptodev)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vc_ciphers); i++)
		if (vc_ciphers[i].cryptodev == cryptodev)
			return &vc_ciphers[i];
	return NULL;
}

const struct vc_mac_alg *vc_find_mac(u32 cryptodev)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vc_macs); i++)
		if (vc_macs[i].cryptodev == cryptodev)
			return &vc_macs[i];
	return NULL;
}

/* A rejected session is what cryptodev-linux reports as EINVAL. */
static int vc_ctrl_status_to_errno(struct vc_dev *dev, u32 status)
{
	switch (status) {
	case VIRTIO_CRYPTO_OK:
		return 0;
	case VIRTIO_CRYPTO_NOSPC:
		return -ENOMEM;
	case VIRTIO_CRYPTO_ERR:
	case VIRTIO_CRYPTO_BADMSG:
	case VIRTIO_CRYPTO_NOTSUPP:
	case VIRTIO_CRYPTO_INVSESS:
	case VIRTIO_CRYPTO_KEY_REJECTED:
		return -EINVAL;
	default:
		return vc_status_to_errno(dev, 0xff);
	}
}

/* The session's virtio cipher: NO_CIPHER for a hash/MAC-only chain. */
static u32 vc_cipher_virtio(const struct vc_session *s)
{
	return s->calg ? s->calg->virtio : VIRTIO_CRYPTO_NO_CIPHER;
}

static void vc_fill_cipher_para(struct virtio_crypto_cipher_session_para *p,
				const struct vc_session *s,
				unsigned int keylen, u32 op)
{
	p->algo = cpu_to_le32(vc_cipher_virtio(s));
	p->keylen = cpu_to_le32(keylen);
	p->op = cpu_to_le32(op);
}

/*
 * Create one device session. For cipher + HMAC the chain order gives
 * cryptodev-linux's semantics (MAC over the plaintext): encrypt hashes
 * the source then ciphers it, decrypt ciphers then hashes the result.
 */
static int vc_ctrl_create(struct vc_session *s, u32 op, const u8 *key,
			  unsigned int keylen, const u8 *mackey,
			  unsigned int mackeylen, u64 *sid)
{
	struct vc_dev *dev = s->dev;
	struct scatterlist hdr_sg, key_sg, mackey_sg, in_sg, *sgs[4];
	struct virtio_crypto_op_ctrl_req *ctrl;
	struct virtio_crypto_sym_create_session_req *sym;
	unsigned int nout = 0;
	struct vc_req *req;
	int err;

	req = vc_req_alloc(GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	/* Given up on, a session the device still makes is destroyed later. */
	req->is_create = true;
	req->dev = dev;
	INIT_WORK(&req->orphan_work, vc_ctrl_orphan_work);
	req->keylen = keylen + mackeylen;
	req->key = kmalloc(max(req->keylen, 1U), GFP_KERNEL);
	if (!req->key) {
		err = -ENOMEM;
		goto out_put;
	}
	memcpy(req->key, key, keylen);
	memcpy(req->key + keylen, mackey, mackeylen);

	ctrl = &req->hdr.ctrl;
	sym = &ctrl->u.sym_create_session;
	if (s->calg && !s->malg) {
		ctrl->header.opcode =
			cpu_to_le32(VIRTIO_CRYPTO_CIPHER_CREATE_SESSION);
		ctrl->header.algo = cpu_to_le32(s->calg->virtio);
		sym->op_type = cpu_to_le32(VIRTIO_CRYPTO_SYM_OP_CIPHER);
		vc_fill_cipher_para(&sym->u.cipher.para, s, keylen, op);
	} else {
		/* A chain: cipher + hash/MAC, or the hash/MAC alone. */
		struct virtio_crypto_alg_chain_session_para *chain =
			&sym->u.chain.para;

		ctrl->header.opcode =
			cpu_to_le32(VIRTIO_CRYPTO_CIPHER_CREATE_SESSION);
		ctrl->header.algo = cpu_to_le32(vc_cipher_virtio(s));
		sym->op_type =
			cpu_to_le32(VIRTIO_CRYPTO_SYM_OP_ALGORITHM_CHAINING);
		chain->alg_chain_order = cpu_to_le32(op == VIRTIO_CRYPTO_OP_ENCRYPT ?
			VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER :
			VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_CIPHER_THEN_HASH);
		vc_fill_cipher_para(&chain->cipher_param, s, keylen, op);
		if (s->malg->plain) {
			chain->hash_mode =
				cpu_to_le32(VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN);
			chain->u.hash_param.algo = cpu_to_le32(s->malg->virtio);
			chain->u.hash_param.hash_result_len =
				cpu_to_le32(s->malg->digestsize);
		} else {
			chain->hash_mode =
				cpu_to_le32(VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH);
			chain->u.mac_param.algo = cpu_to_le32(s->malg->virtio);
			chain->u.mac_param.hash_result_len =
				cpu_to_le32(s->malg->digestsize);
			chain->u.mac_param.auth_key_len = cpu_to_le32(mackeylen);
		}
	}
	/* Queue 0 is the one a vhost-user backend serves. */
	ctrl->header.queue_id = 0;
	/* A device that writes nothing must not read as success. */
	req->in.session.status = cpu_to_le32(VIRTIO_CRYPTO_ERR);

	sg_init_one(&hdr_sg, ctrl, sizeof(*ctrl));
	sgs[nout++] = &hdr_sg;
	if (keylen) {
		sg_init_one(&key_sg, req->key, keylen);
		sgs[nout++] = &key_sg;
	}
	if (mackeylen) {
		sg_init_one(&mackey_sg, req->key + keylen, mackeylen);
		sgs[nout++] = &mackey_sg;
	}
	sg_init_one(&in_sg, &req->in.session, sizeof(req->in.session));
	sgs[nout] = &in_sg;

	err = vc_submit(dev, &dev->ctrlq, req, sgs, nout, 1);
	if (!err)
		err = vc_ctrl_status_to_errno(dev,
					      le32_to_cpu(req->in.session.status));
	if (!err)
		*sid = le64_to_cpu(req->in.session.session_id);
out_put:
	vc_req_put(req);
	return err;
}

/* A device session to destroy from a worker. */
struct vc_deferred_destroy {
	struct work_struct work;
	struct vc_dev *dev;		/* a reference */
	u32 opcode;
	u32 algo;
	u64 sid;
};

static void vc_ctrl_destroy(struct vc_dev *dev, u32 opcode, u32 algo,
			    u64 sid, bool may_defer);

static void vc_deferred_destroy_work(struct work_struct *work)
{
	struct vc_deferred_destroy *d =
		container_of(work, struct vc_deferred_destroy, work);

	vc_ctrl_destroy(d->dev, d->opcode, d->algo, d->sid, false);
	vc_dev_put(d->dev);
	kfree(d);
}

/*
 * Send a destroy; a caller killed before it reached the ring (full) hands
 * it to a worker. Once on the ring, a killed or timed-out wait leaves the
 * request to the callback. A device that is gone has forgotten the session.
 */
static void vc_defer_destroy(struct vc_dev *dev, u32 opcode, u32 algo,
			     u64 sid)
{
	struct vc_deferred_destroy *d = kmalloc(sizeof(*d), GFP_KERNEL);

	if (!d)
		return;		/* the device keeps a session until reset */
	INIT_WORK(&d->work, vc_deferred_destroy_work);
	kref_get(&dev->ref);
	d->dev = dev;
	d->opcode = opcode;
	d->algo = algo;
	d->sid = sid;
	vc_defer_work(&d->work);
}

static void vc_ctrl_destroy(struct vc_dev *dev, u32 opcode, u32 algo,
			    u64 sid, bool may_defer)
{
	struct scatterlist hdr_sg, in_sg, *sgs[2];
	struct virtio_crypto_op_ctrl_req *ctrl;
	struct vc_req *req;
	int err;

	if (vc_dev_usable(dev))
		return;
	req = vc_req_alloc(GFP_KERNEL);
	if (!req)
		return;		/* the device keeps a session until reset */
	ctrl = &req->hdr.ctrl;
	ctrl->header.opcode = cpu_to_le32(opcode);
	ctrl->header.algo = cpu_to_le32(algo);
	ctrl->u.destroy_session.session_id = cpu_to_le64(sid);
	req->in.inhdr.status = VIRTIO_CRYPTO_ERR;

	sg_init_one(&hdr_sg, ctrl, sizeof(*ctrl));
	sg_init_one(&in_sg, &req->in.inhdr, sizeof(req->in.inhdr));
	sgs[0] = &hdr_sg;
	sgs[1] = &in_sg;
	err = vc_queue_req(dev, &dev->ctrlq, req, sgs, 1, 1);
	if (err) {
		vc_req_put(req);
		/* Signalled while the ring was full: a worker sends it. */
		if (err == -ERESTARTSYS && may_defer)
			vc_defer_destroy(dev, opcode, algo, sid);
		return;
	}
	/* Signalled or timed out here: the callback frees the request. */
	err = vc_wait_req(dev, req);
	if (!err && req->in.inhdr.status != VIRTIO_CRYPTO_OK)
		dev_warn(&dev->vdev->dev, "destroy session %llu: status %u\n",
			 sid, req->in.inhdr.status);
	vc_req_put(req);
}

/* An abandoned create the device carried out (vc_req_finish): undo it. */
void vc_ctrl_orphan_work(struct work_struct *work)
{
	struct vc_req *req = container_of(work, struct vc_req, orphan_work);
	struct virtio_crypto_ctrl_header *h = &req->hdr.ctrl.header;
	struct vc_dev *dev = req->dev;
	u32 opcode = VIRTIO_CRYPTO_CIPHER_DESTROY_SESSION;

	if (le32_to_cpu(req->in.session.status) == VIRTIO_CRYPTO_OK)
		vc_ctrl_destroy(dev, opcode, le32_to_cpu(h->algo),
				le64_to_cpu(req->in.session.session_id),
				false);
	vc_req_put(req);	/* the device's reference, handed over */
	vc_dev_put(dev);
}

static void vc_session_destroy(struct vc_session *s, u64 sid)
{
	vc_ctrl_destroy(s->dev, VIRTIO_CRYPTO_CIPHER_DESTROY_SESSION,
			vc_cipher_virtio(s), sid, true);
}

static void vc_session_release(struct kref *ref)
{
	struct vc_session *s = container_of(ref, struct vc_session, ref);

	if (s->has_enc)
		vc_session_destroy(s, s->enc_sid);
	if (s->has_dec)
		vc_session_destroy(s, s->dec_sid);
	vc_kern_free(s);
	mutex_destroy(&s->iv_mutex);
	kfree_sensitive(s);
}

/* Process context only: the last put talks to the device and sleeps. */
void vc_session_put(struct vc_session *s)
{
	might_sleep();
	kref_put(&s->ref, vc_session_release);
}

static bool vc_aes_keylen_ok(unsigned int keylen)
{
	return keylen == 16 || keylen == 24 || keylen == 32;
}

/* Device sessions for s (one per direction for a cipher). */
static int vc_session_create_dev(struct vc_session *s,
				 const struct session_op *sop, const u8 *key,
				 const u8 *mackey)
{
	struct vc_dev *dev = s->dev;
	int err;

	if (s->calg && (!vc_aes_keylen_ok(sop->keylen) ||
			sop->keylen > dev->max_cipher_key_len))
		return -EINVAL;
	if (s->malg && !s->malg->plain &&
	    sop->mackeylen > dev->max_auth_key_len)
		return -EINVAL;

	if (s->calg) {
		unsigned int mkl = s->malg && !s->malg->plain ?
				   sop->mackeylen : 0;

		err = vc_ctrl_create(s, VIRTIO_CRYPTO_OP_ENCRYPT, key,
				     sop->keylen, mackey, mkl, &s->enc_sid);
		if (err)
			return err;
		s->has_enc = true;
		err = vc_ctrl_create(s, VIRTIO_CRYPTO_OP_DECRYPT, key,
				     sop->keylen, mackey, mkl, &s->dec_sid);
		if (err)
			return err;
		s->has_dec = true;
		return 0;
	}
	/* A plain hash has no key (the device refuses one). */
	err = vc_ctrl_create(s, VIRTIO_CRYPTO_OP_ENCRYPT, NULL, 0, mackey,
			     s->malg->plain ? 0 : sop->mackeylen, &s->enc_sid);
	if (!err)
		s->has_enc = true;
	return err;
}

/* Gives back the device sessions of a create that falls back. */
static void vc_session_drop_dev(struct vc_session *s)
{
	if (s->has_enc)
		vc_session_destroy(s, s->enc_sid);
	if (s->has_dec)
		vc_session_destroy(s, s->dec_sid);
	s->has_enc = false;
	s->has_dec = false;
}

/*
 * The caller has checked the algorithm numbers, the key length caps and
 * copied both keys in. Device first: a session the device offers and
 * accepts is the device's; one it does not offer or refuses (EINVAL) runs
 * on the kernel's crypto API when the fallback parameter allows.
 */
int vc_session_create(struct vc_dev *dev, const struct session_op *sop,
		      const u8 *key, const u8 *mackey, struct vc_session **out)
{
	struct vc_session *s;
	bool dev_ok;
	int err;

	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return -ENOMEM;
	kref_init(&s->ref);
	mutex_init(&s->iv_mutex);
	spin_lock_init(&s->iv_lock);
	s->dev = dev;
	s->cipher_id = sop->cipher;
	/* cryptodev-linux ignores the mac of an AEAD cipher. */
	s->mac_id = vc_kern_is_aead(sop->cipher) ? 0 : sop->mac;
	s->calg = sop->cipher ? vc_find_cipher(sop->cipher) : NULL;
	s->malg = s->mac_id ? vc_find_mac(s->mac_id) : NULL;
	err = -ENOMEM;
	if (sop->cipher && sop->keylen) {
		s->key = kmemdup(key, sop->keylen, GFP_KERNEL);
		if (!s->key)
			goto out_put;
	}
	s->keylen = sop->cipher ? sop->keylen : 0;
	if (s->mac_id && sop->mackeylen) {
		s->mackey = kmemdup(mackey, sop->mackeylen, GFP_KERNEL);
		if (!s->mackey)
			goto out_put;
	}
	s->mackeylen = s->mac_id ? sop->mackeylen : 0;

	dev_ok = (!sop->cipher || s->calg) && (!s->mac_id || s->malg);
	err = dev_ok ? vc_session_create_dev(s, sop, key, mackey) : -EINVAL;
	if (!err) {
		s->on_dev = true;
	} else if (err == -EINVAL && READ_ONCE(vc_fallback)) {
		vc_session_drop_dev(s);
		s->calg = NULL;
		s->malg = NULL;
		err = vc_kern_prepare(s);
	}
	if (err)
		goto out_put;
	*out = s;
	return 0;

out_put:
	vc_session_put(s);	/* destroys what the device created */
	return err;
}

/* Fills buf from len user bytes; the rest of buf (CTR padding) is zeroed. */
static int vc_buf_from_user(struct vc_buf *buf, const u8 __user *src,
			    unsigned int len)
{
	unsigned int i, off = 0;

	for (i = 0; i < buf->npages; i++) {
		unsigned int chunk = min_t(unsigned int, buf->len - off,
					   PAGE_SIZE);
		unsigned int user = off < len ? min(chunk, len - off) : 0;
		u8 *page = page_address(buf->pages[i]);

		if (user && copy_from_user(page, src + off, user))
			return -EFAULT;
		memset(page + user, 0, chunk - user);
		off += chunk;
	}
	return 0;
}

/* Copies the first len bytes of buf out. */
static int vc_buf_to_user(u8 __user *dst, const struct vc_buf *buf,
			  unsigned int len)
{
	unsigned int i, off = 0;

	for (i = 0; i < buf->npages && off < len; i++) {
		unsigned int chunk = min_t(unsigned int, len - off, PAGE_SIZE);

		if (copy_to_user(dst + off, page_address(buf->pages[i]), chunk))
			return -EFAULT;
		off += chunk;
	}
	return 0;
}

/* Big-endian 128-bit counter += n, as ctr(aes) leaves its IV. */
static void vc_ctr_add(u8 *ctr, u64 n)
{
	u64 lo = get_unaligned_be64(ctr + 8);
	u64 hi = get_unaligned_be64(ctr);

	if (lo + n < lo)
		hi++;
	lo += n;
	put_unaligned_be64(hi, ctr);
	put_unaligned_be64(lo, ctr + 8);
}

/*
 * The IV cryptodev-linux's tfm holds after the operation. A CBC decrypt's
 * is the last ciphertext block, copied (last_ct) before the device ran:
 * in place with zero-copy the device overwrites it with plaintext.
 */
static void vc_next_iv(const struct vc_session *s, const struct vc_req *req,
		       u16 op, unsigned int len, const u8 *last_ct, u8 *iv)
{
	if (!s->calg || !s->calg->ivsize || !len)
		return;
	switch (s->calg->cryptodev) {
	case CRYPTO_AES_CBC:
		/* 16 | len: the last block, of the caller's pages or ours. */
		if (op == COP_ENCRYPT)
			vc_buf_read(&req->dst, len - VC_AES_BLOCK, iv,
				    VC_AES_BLOCK);
		else
			memcpy(iv, last_ct, VC_AES_BLOCK);
		break;
	case CRYPTO_AES_CTR:
		vc_ctr_add(iv, DIV_ROUND_UP(len, VC_AES_BLOCK));
		break;
	}
}

static void vc_fill_data_hdr(const struct vc_session *s, struct vc_req *req,
			     u16 op, unsigned int dlen, unsigned int len)
{
	struct virtio_crypto_op_data_req *d = &req->hdr.data;
	bool enc = op == COP_ENCRYPT;
	unsigned int ivsize = s->calg ? s->calg->ivsize : 0;

	d->header.session_id = cpu_to_le64(enc || !s->calg ? s->enc_sid :
					   s->dec_sid);
	/* A hash/MAC-only chain always "encrypts": it only hashes. */
	d->header.opcode = cpu_to_le32(enc || !s->calg ?
				       VIRTIO_CRYPTO_CIPHER_ENCRYPT :
				       VIRTIO_CRYPTO_CIPHER_DECRYPT);
	d->header.algo = cpu_to_le32(vc_cipher_virtio(s));
	if (!s->malg) {
		struct virtio_crypto_cipher_para *p =
			&d->u.sym_req.u.cipher.para;

		d->u.sym_req.op_type = cpu_to_le32(VIRTIO_CRYPTO_SYM_OP_CIPHER);
		p->iv_len = cpu_to_le32(ivsize);
		p->src_data_len = cpu_to_le32(dlen);
		p->dst_data_len = cpu_to_le32(dlen);
	} else {
		struct virtio_crypto_alg_chain_data_para *p =
			&d->u.sym_req.u.chain.para;
		unsigned int cipherlen = s->calg ? dlen : 0;

		d->u.sym_req.op_type =
			cpu_to_le32(VIRTIO_CRYPTO_SYM_OP_ALGORITHM_CHAINING);
		p->iv_len = cpu_to_le32(ivsize);
		p->src_data_len = cpu_to_le32(dlen);
		p->dst_data_len = cpu_to_le32(cipherlen);
		p->cipher_start_src_offset = 0;
		p->len_to_cipher = cpu_to_le32(cipherlen);
		p->hash_start_src_offset = 0;
		p->len_to_hash = cpu_to_le32(len);
		p->hash_result_len = cpu_to_le32(s->malg->digestsize);
	}
}

/*
 * Zero-copy, as cryptodev-linux: the caller's source pages (read) and
 * destination pages (written) go to the device as they are. CTR padding
 * to a whole block (dlen > len) comes from the request's own pad bytes, so
 * the device never reads or writes past the caller's buffers.
 */
static int vc_pin_user(struct vc_session *s, struct vc_req *req,
		       const struct crypt_op *cop, unsigned int len,
		       unsigned int dlen)
{
	unsigned int tail = dlen - len;
	int err;

	err = vc_buf_pin(&req->src, cop->src, len, false, tail ? 1 : 0);
	if (!err && tail)
		sg_set_buf(&req->src.sg[req->src.npages], req->pad_in, tail);
	if (!err && s->calg) {
		err = vc_buf_pin(&req->dst, cop->dst, len, true, tail ? 1 : 0);
		if (!err && tail)
			sg_set_buf(&req->dst.sg[req->dst.npages], req->pad_out,
				   tail);
	}
	if (err) {
		vc_buf_free(&req->src);
		vc_buf_free(&req->dst);
	}
	return err;
}

/*
 * CIOCCRYPT on a looked-up session. The caller validated op; cop->iv,
 * src, dst and mac are user pointers. Returns 0 or a cryptodev errno.
 * With cop->iv == NULL the caller holds iv_mutex.
 */
static int vc_do_crypt(struct vc_session *s, struct crypt_op *cop,
		       struct vc_lat *lat)
{
	struct vc_dev *dev = s->dev;
	unsigned int len = cop->len, dlen;
	unsigned int ivsize = s->calg ? s->calg->ivsize : 0;
	unsigned int blocksize = s->calg ? s->calg->blocksize : 1;
	struct scatterlist hdr_sg, iv_sg, digest_sg, status_sg, *sgs[6];
	unsigned int nout = 0, nin = 0, want;
	struct vc_req *req;
	u8 iv[VC_MAX_IV], last_ct[VC_AES_BLOCK];
	bool zc;
	int err;

	if (len % blocksize)
		return -EINVAL;
	if (len > dev->max_data_len)
		return -EINVAL;
	/* A stateless device cannot carry a MAC across calls. */
	if (s->malg && (cop->flags & COP_FLAG_UPDATE))
		return -EINVAL;

	if (cop->iv && ivsize) {
		if (copy_from_user(iv, cop->iv, ivsize))
			return -EFAULT;
	} else if (ivsize) {
		spin_lock(&s->iv_lock);
		memcpy(iv, s->iv, ivsize);
		spin_unlock(&s->iv_lock);
	}

	/*
	 * Devices may insist on whole blocks even for CTR (QEMU's builtin
	 * backend does): pad to a block, the keystream past len is dropped.
	 */
	dlen = len;
	if (s->calg && s->calg->cryptodev == CRYPTO_AES_CTR)
		dlen = round_up(len, VC_AES_BLOCK);

	/* cryptodev-linux: zero bytes of cipher work is a successful no-op. */
	if (!len && !s->malg)
		goto write_iv;

	req = vc_req_alloc(GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	req->timed = lat != NULL;
	/* Bound what all callers may have at the device before allocating. */
	err = vc_inflight_charge(dev, req,
				 len ? PAGE_ALIGN(dlen) * (s->calg ? 2 : 1) : 0);
	if (err)
		goto out_put;
	memcpy(req->iv, iv, ivsize);
	req->status = VIRTIO_CRYPTO_ERR;
	vc_fill_data_hdr(s, req, cop->op, dlen, len);

	sg_init_one(&hdr_sg, &req->hdr.data, sizeof(req->hdr.data));
	sgs[nout++] = &hdr_sg;
	if (ivsize) {
		sg_init_one(&iv_sg, req->iv, ivsize);
		sgs[nout++] = &iv_sg;
	}
	zc = len && !(cop->flags & COP_FLAG_NO_ZC);
	if (zc) {
		err = vc_pin_user(s, req, cop, len, dlen);
		/* Pages that cannot be pinned go through bounce pages. */
		zc = !err;
	}
	if (len && !zc) {
		err = vc_buf_alloc(&req->src, dlen);
		if (err)
			goto out_put;
		err = vc_buf_from_user(&req->src, cop->src, len);
		if (err)
			goto out_put;
	}
	if (len && s->calg && !zc) {
		err = vc_buf_alloc(&req->dst, dlen);
		if (err)
			goto out_put;
	}
	if (len)
		sgs[nout++] = req->src.sg;
	if (len && s->calg)
		sgs[nout + nin++] = req->dst.sg;
	if (s->malg) {
		sg_init_one(&digest_sg, req->digest, s->malg->digestsize);
		sgs[nout + nin++] = &digest_sg;
	}
	sg_init_one(&status_sg, &req->status, sizeof(req->status));
	sgs[nout + nin++] = &status_sg;
	/* The next IV of a CBC decrypt, before the device may overwrite it. */
	if (len && s->calg && s->calg->cryptodev == CRYPTO_AES_CBC &&
	    cop->op == COP_DECRYPT)
		vc_buf_read(&req->src, len - VC_AES_BLOCK, last_ct,
			    VC_AES_BLOCK);

	err = vc_submit(dev, vc_next_dataq(dev), req, sgs, nout, nin);
	if (!err)
		err = vc_status_to_errno(dev, req->status);
	/* Said OK but wrote less than asked: nothing of it is trusted. */
	want = (len && s->calg ? dlen : 0) +
	       (s->malg ? s->malg->digestsize : 0) + sizeof(req->status);
	if (!err && req->used_len < want) {
		dev_warn_ratelimited(&dev->vdev->dev,
				     "device wrote %u of %u bytes\n",
				     req->used_len, want);
		err = -EIO;
	}
	if (err)
		goto out_put;

	vc_next_iv(s, req, cop->op, len, last_ct, iv);
	/* Zero-copy: the device wrote the caller's pages itself. */
	if (len && s->calg && !zc &&
	    vc_buf_to_user(cop->dst, &req->dst, len)) {
		err = -EFAULT;
		goto out_put;
	}
	if (s->malg && copy_to_user(cop->mac, req->digest,
				    s->malg->digestsize)) {
		err = -EFAULT;
		goto out_put;
	}
	if (lat) {
		memcpy(&lat->t[VC_T_KICK], &req->stamp[VC_T_KICK],
		       (VC_T_RET - VC_T_KICK) * sizeof(lat->t[0]));
		lat->polled = req->polled;
		lat->valid = true;
	}
	vc_req_put(req);

write_iv:
	if (ivsize) {
		spin_lock(&s->iv_lock);
		memcpy(s->iv, iv, ivsize);
		spin_unlock(&s->iv_lock);
	}
	if (ivsize && cop->iv && (cop->flags & COP_FLAG_WRITE_IV) &&
	    copy_to_user(cop->iv, iv, ivsize))
		return -EFAULT;
	memzero_explicit(iv, sizeof(iv));
	return 0;

out_put:
	vc_req_put(req);
	memzero_explicit(iv, sizeof(iv));
	return err;
}

/* lat, when not NULL, receives the stamps of a device request. */
int vc_session_crypt(struct vc_session *s, struct crypt_op *cop,
		     struct vc_lat *lat)
{
	int err;

	if (!s->on_dev)
		return vc_kern_crypt(s, cop);
	if (s->malg) {
		/* Hash state across calls is the kernel's, one call at a time. */
		if (mutex_lock_interruptible(&s->iv_mutex))
			return -ERESTARTSYS;
		if (READ_ONCE(vc_fallback) && vc_kern_multipart(s, cop)) {
			err = vc_kern_crypt_locked(s, cop);
		} else {
			s->k.hash_pending = false;
			err = vc_do_crypt(s, cop, lat);
		}
		mutex_unlock(&s->iv_mutex);
		return err;
	}
	if (!s->calg->ivsize || cop->iv)
		return vc_do_crypt(s, cop, lat);
	/* Uses and advances the session's IV: one such request at a time. */
	if (mutex_lock_interruptible(&s->iv_mutex))
		return -ERESTARTSYS;
	err = vc_do_crypt(s, cop, lat);
	mutex_unlock(&s->iv_mutex);
	return err;
}

/* CIOCAUTHCRYPT: the device has no AEAD sessions, so only the kernel. */
int vc_session_authcrypt(struct vc_session *s, struct crypt_auth_op *caop)
{
	if (s->on_dev && !READ_ONCE(vc_fallback))
		return -EINVAL;
	return vc_kern_authcrypt(s, caop);
}

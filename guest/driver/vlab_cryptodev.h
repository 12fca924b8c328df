/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vlab_cryptodev: a virtio-crypto driver that exports the cryptodev-linux
 * /dev/crypto ioctl API. Shared definitions of its parts:
 *   vc_main.c      - module init/exit
 *   vc_virtio.c    - device lifecycle (probe, remove, break and reset),
 *                    virtqueues, request submit/complete
 *   vc_session.c   - device sessions (control queue) and data operations
 *   vc_chardev.c   - /dev/crypto: per-open state and the ioctl glue
 *   vc_kernel.c    - the fallback on the guest kernel's crypto API
 *   vc_stats.c     - stats=1: per-stage latency, the device's latency file
 *   vc_compat.h    - kernel API differences (6.1 and 6.12)
 *   cryptodev_abi.h - the cryptodev-linux ABI (shared with the guest tool)
 */
#ifndef VLAB_CRYPTODEV_H
#define VLAB_CRYPTODEV_H

#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/kref.h>
#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/scatterlist.h>
#include <linux/sizes.h>
#include <linux/spinlock.h>
#include <linux/virtio.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <uapi/linux/virtio_crypto.h>

#include "cryptodev_abi.h"

#define VC_NAME "vlab_cryptodev"

/*
 * Largest CIOCCRYPT length. Each request pins the caller's src and dst
 * pages (or, with COP_FLAG_NO_ZC or unpinnable memory, bounces them through
 * kernel pages) until the device returns them, even if the caller is
 * killed, and is described by one descriptor per page: at 1 MiB that is at
 * most 2 * 257 + 6 descriptors, well under the 1024 a virtqueue element may
 * hold in QEMU. The device's config max_size can lower it.
 */
#define VC_MAX_DATA_LEN		SZ_1M
/* Sessions one open file may hold; bounds the memory a process can pin. */
#define VC_MAX_SESSIONS		1024
/* Data queues we accept (QEMU offers 1 by default; vhost-user serves q0). */
#define VC_MAX_DATAQ		64

/* Module parameters (vc_virtio.c), read at each use. */
extern unsigned int vc_timeout_ms;
extern unsigned int vc_max_inflight_kb;
extern unsigned int vc_poll_us;
/* Module parameter (vc_stats.c): time the stages of each CIOCCRYPT. */
extern bool vc_stats;
/* Module parameter (vc_kernel.c): run on the kernel's crypto API what the device cannot. */
extern bool vc_fallback;

#define VC_AES_BLOCK		16
#define VC_MAX_IV		16
#define VC_MAX_DIGEST		64

/*
 * The moments of one CIOCCRYPT that the latency statistics (stats=1)
 * stamp, in order; each stage is the span from one to the next.
 */
enum {
	VC_T_ENTRY,	/* ioctl entry */
	VC_T_KICK,	/* on the ring, just before virtqueue_kick */
	VC_T_KICKED,	/* virtqueue_kick returned */
	VC_T_DONE,	/* the callback or the poll took it off the used ring */
	VC_T_WAKE,	/* the submitter runs again */
	VC_T_RET,	/* ioctl return, after the copy-out */
	VC_T_N
};

#define VC_STAGES	(VC_T_N - 1)

/* One timed request, on the ioctl's stack. */
struct vc_lat {
	u64 t[VC_T_N];
	bool polled;			/* completed by poll_us, not the irq */
	bool valid;			/* a device request that succeeded */
};

/* Per-device sums of the timed requests (vc_stats.c). */
struct vc_stats {
	atomic64_t count;
	atomic64_t polled;
	atomic64_t sum[VC_STAGES];	/* ns */
	atomic64_t max[VC_STAGES];	/* ns */
};

/* One virtqueue and what guards it. */
struct vc_queue {
	struct virtqueue *vq;
	/* Protects vq (add/kick/get_buf/detach) and the dead flag's readers. */
	spinlock_t lock;
	/* Submitters sleep here while the ring is full. */
	wait_queue_head_t space;
	/* Bumped under lock whenever used buffers are reclaimed. */
	unsigned long space_seq;
	/* Requests on the ring, under lock: an empty ring that is full is a request too big. */
	unsigned int inflight;
	char name[16];
};

/*
 * One per probed device. Open files, deferred work and the probe each hold
 * a reference (ref); the device holds one on vdev's struct device, so a
 * vc_dev that outlives the removal (open files) can still name it in logs.
 */
struct vc_dev {
	struct kref ref;
	struct virtio_device *vdev;
	struct list_head node;		/* in vc_devices, under vc_devices_lock */
	/*
	 * Set before the device is reset in remove; every queue lock is taken
	 * and released after setting it, so a submitter that holds a queue
	 * lock either sees it or finishes adding before the reset.
	 */
	bool dead;
	/*
	 * The device answered nonsense (an unknown request status, unknown
	 * config status bits) or a request timed out: no new request is sent
	 * (-EIO) and no new open gets it. Set first by vc_dev_halt(), which
	 * then breaks the transport too (virtio_break_device) and resets the
	 * device. Sticky until unbind/rmmod: a new probe is a new vc_dev.
	 */
	bool broken;
	/*
	 * Set (under halt_lock) once a broken device was reset and every
	 * request it held was failed, so that it writes no buffer of ours
	 * any more; nobody touches the virtqueues after that but remove().
	 */
	bool halted;
	/* Serialises the reset of vc_dev_halt() with remove()'s. */
	struct mutex halt_lock;
	/* The device reported VIRTIO_CRYPTO_S_HW_READY (read in config_work). */
	bool ready;
	struct work_struct config_work;	/* re-reads the status on config change */
	unsigned int ndataq;		/* as the device offers, <= VC_MAX_DATAQ */
	struct vc_queue *dataq;		/* ndataq entries */
	struct vc_queue ctrlq;
	atomic_t next_q;		/* data requests go round-robin */
	/*
	 * A request is 4 fixed descriptors + 2 per page of data, plus 2 for
	 * unaligned (zero-copy) buffers and 2 for CTR padding.
	 */
	unsigned int max_descs;
	/* From the config space, read once in probe. */
	u32 cipher_algo_l;
	u32 mac_algo_l;
	u32 max_cipher_key_len;
	u32 max_auth_key_len;
	u32 max_data_len;
	struct vc_stats stats;		/* stats=1: per-stage latency */
};

/* Pages a vc_buf describes without allocating its arrays (+1 sg: CTR pad). */
#define VC_BUF_INLINE		2

/*
 * A buffer the device reads or writes: either kernel order-0 pages (a
 * bounce buffer, freed from any context) or the caller's own pages pinned
 * in place (zero-copy; unpinned in process context, dirtied if written).
 */
struct vc_buf {
	unsigned int len;
	unsigned int npages;
	unsigned int offset;		/* of the data in pages[0] (pinned) */
	bool pinned;
	bool dirty;			/* device-writable: dirty on unpin */
	struct page **pages;		/* inline_pages or kmalloc'ed */
	struct scatterlist *sg;		/* inline_sg or kmalloc'ed */
	/* Small buffers (a 64 B operation) need no allocation of their own. */
	struct page *inline_pages[VC_BUF_INLINE];
	struct scatterlist inline_sg[VC_BUF_INLINE + 1];
};

/* vc_req.state: who finishes a request the device returns. */
enum {
	VC_REQ_WAITING,		/* the submitter waits for it */
	VC_REQ_DONE,		/* the device returned it */
	VC_REQ_ABANDONED,	/* the submitter was killed (or signalled: control) */
};

/*
 * One request to the device. Two references: the submitter's and the
 * device's (taken when the request is added to a ring, dropped by the
 * completion path). A submitter killed while waiting drops only its own,
 * so the buffers the device may still write stay valid until it returns
 * them (or the device is reset); an abandoned session create that the
 * device carried out is destroyed from a worker (orphan_work).
 */
struct vc_req {
	refcount_t ref;
	struct completion done;
	atomic_t state;			/* VC_REQ_* */
	/* 0 when the device returned the request, -ENODEV when it vanished */
	int result;
	unsigned int used_len;		/* as the device reported it */
	unsigned long charged;		/* bytes counted in vc_inflight */
	bool is_create;			/* a session create: orphan_work on abandon */
	bool timed;			/* stats=1: stamp[] is filled in */
	bool polled;			/* completed by the submitter's poll */
	u64 stamp[VC_T_N];		/* VC_T_KICK .. VC_T_WAKE, when timed */
	struct vc_queue *q;		/* the ring it went to (polling) */
	struct vc_dev *dev;		/* for orphan_work; a reference */
	struct work_struct orphan_work;
	struct work_struct free_work;	/* unpins when the last put is atomic */
	union {
		struct virtio_crypto_op_ctrl_req ctrl;
		struct virtio_crypto_op_data_req data;
	} hdr;				/* device-readable */
	u8 iv[VC_MAX_IV];		/* device-readable */
	u8 *key;			/* device-readable, kfree_sensitive */
	unsigned int keylen;
	union {
		struct virtio_crypto_session_input session;
		struct virtio_crypto_inhdr inhdr;
	} in;				/* device-writable (control) */
	u8 digest[VC_MAX_DIGEST];	/* device-writable */
	u8 status;			/* device-writable (data) */
	/* CTR block padding past the caller's pages (zero-copy) */
	u8 pad_in[VC_AES_BLOCK];	/* device-readable, zeros */
	u8 pad_out[VC_AES_BLOCK];	/* device-writable, discarded */
	struct vc_buf src;
	struct vc_buf dst;
};

struct vc_cipher_alg {
	u32 cryptodev;			/* CRYPTO_* */
	u32 virtio;			/* VIRTIO_CRYPTO_CIPHER_* */
	unsigned int ivsize;
	unsigned int blocksize;
	const char *cra_name;
	const char *driver_name;
};

struct vc_mac_alg {
	u32 cryptodev;			/* CRYPTO_*_HMAC or a plain CRYPTO_SHA* */
	u32 virtio;			/* VIRTIO_CRYPTO_MAC_* or _HASH_* */
	bool plain;			/* hash mode PLAIN (no key), else AUTH */
	unsigned int digestsize;
	const char *cra_name;
	const char *driver_name;
};

struct crypto_skcipher;
struct crypto_aead;
struct crypto_shash;
struct shash_desc;

/*
 * The guest kernel's crypto API side of a session (vc_kernel.c): made at
 * create time when the device cannot serve the session, else lazily when
 * an operation needs it (multi-part hashing, CIOCAUTHCRYPT). Under the
 * session's iv_mutex once the session is published.
 */
struct vc_kern {
	struct crypto_skcipher *skc;
	struct crypto_aead *aead;
	struct crypto_shash *shash;
	struct shash_desc *desc;	/* the hash state kept between calls */
	bool hash_pending;		/* updated, not yet finalised */
};

/*
 * A cryptodev session. The device's sessions have a fixed direction, so a
 * cipher session owns two of them (encrypt, decrypt); a hash- or MAC-only
 * session (a NO_CIPHER chain) owns one (enc_sid). Lives in its file's xarray; requests hold a kref.
 */
struct vc_session {
	struct kref ref;
	u32 id;				/* the cryptodev id userspace sees */
	struct vc_dev *dev;		/* the file's reference covers it */
	const struct vc_cipher_alg *calg;	/* NULL for MAC-only */
	const struct vc_mac_alg *malg;		/* NULL for cipher-only */
	u64 enc_sid;
	u64 dec_sid;
	bool has_enc, has_dec;
	/*
	 * Held across a whole request that uses the session's IV (cop->iv ==
	 * NULL), from reading iv to writing the next one back, so two such
	 * requests never use the same chaining IV (for CTR: keystream reuse).
	 * Requests with their own IV do not take it.
	 */
	struct mutex iv_mutex;
	/* Protects iv: cryptodev keeps the chaining IV between calls. */
	spinlock_t iv_lock;
	u8 iv[VC_MAX_IV];
	u32 cipher_id, mac_id;		/* CRYPTO_* as asked; 0: none */
	u8 *key, *mackey;		/* for the kernel path, kfree_sensitive */
	unsigned int keylen, mackeylen;
	bool on_dev;			/* the device serves it (has_enc) */
	struct vc_kern k;
};

/* vc_virtio.c */
struct vc_dev *vc_dev_get_any(void);
void vc_dev_put(struct vc_dev *dev);
int vc_dev_usable(struct vc_dev *dev);
void vc_dev_halt(struct vc_dev *dev, const char *why);
struct vc_queue *vc_next_dataq(struct vc_dev *dev);
struct vc_req *vc_req_alloc(gfp_t gfp);
void vc_req_put(struct vc_req *req);
int vc_inflight_charge(struct vc_dev *dev, struct vc_req *req,
		       unsigned long bytes);
int vc_buf_alloc(struct vc_buf *buf, unsigned int len);
int vc_buf_pin(struct vc_buf *buf, const void __user *uaddr, unsigned int len,
	       bool write, unsigned int nextra);
void vc_buf_read(const struct vc_buf *buf, unsigned int off, u8 *out,
		 unsigned int n);
void vc_buf_free(struct vc_buf *buf);
int vc_queue_req(struct vc_dev *dev, struct vc_queue *q, struct vc_req *req,
		 struct scatterlist *sgs[], unsigned int nout, unsigned int nin);
int vc_wait_req(struct vc_dev *dev, struct vc_req *req);
int vc_submit(struct vc_dev *dev, struct vc_queue *q, struct vc_req *req,
	      struct scatterlist *sgs[], unsigned int nout, unsigned int nin);
bool vc_defer_work(struct work_struct *work);
int vc_status_to_errno(struct vc_dev *dev, u8 status);
int vc_virtio_init(void);
void vc_virtio_exit(void);

/* vc_session.c */
const struct vc_cipher_alg *vc_find_cipher(u32 cryptodev);
const struct vc_mac_alg *vc_find_mac(u32 cryptodev);
int vc_session_create(struct vc_dev *dev, const struct session_op *sop,
		      const u8 *key, const u8 *mackey, struct vc_session **out);
void vc_session_put(struct vc_session *s);
void vc_ctrl_orphan_work(struct work_struct *work);
int vc_session_crypt(struct vc_session *s, struct crypt_op *cop,
		     struct vc_lat *lat);
int vc_session_authcrypt(struct vc_session *s, struct crypt_auth_op *caop);

/* vc_kernel.c */
bool vc_kern_known_cipher(u32 cryptodev);
bool vc_kern_known_mac(u32 cryptodev);
bool vc_kern_is_aead(u32 cryptodev);
int vc_kern_prepare(struct vc_session *s);
void vc_kern_free(struct vc_session *s);
bool vc_kern_multipart(const struct vc_session *s, const struct crypt_op *cop);
int vc_kern_crypt(struct vc_session *s, struct crypt_op *cop);
int vc_kern_crypt_locked(struct vc_session *s, struct crypt_op *cop);
int vc_kern_authcrypt(struct vc_session *s, struct crypt_auth_op *caop);
void vc_kern_info(struct vc_session *s, struct session_info_op *siop);
int vc_kern_copy_hash(struct vc_session *dst, struct vc_session *src);

/* vc_stats.c */
static inline u64 vc_clock(void)
{
	return ktime_get_ns();
}

void vc_stats_account(struct vc_dev *dev, struct vc_lat *lat);
extern const struct attribute_group *vc_dev_groups[];

/* vc_chardev.c */
int vc_chardev_init(void);
void vc_chardev_exit(void);

#endif /* VLAB_CRYPTODEV_H */

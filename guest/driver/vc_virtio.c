// SPDX-License-Identifier: GPL-2.0
/*
 * Device lifecycle and the request transport: probe/remove, the virtqueues,
 * submitting a request and completing it from the virtqueue callback.
 */
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/clock.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/virtio_config.h>
#include <uapi/linux/virtio_ids.h>
#include <uapi/linux/virtio_ring.h>

#include "vc_compat.h"
#include "vlab_cryptodev.h"

unsigned int vc_timeout_ms = 10000;
module_param_named(timeout_ms, vc_timeout_ms, uint, 0644);
MODULE_PARM_DESC(timeout_ms,
		 "Give up on a device request (or a full ring, or an in-flight budget that does not move) after this many ms: -ETIMEDOUT and the device is marked broken and reset (0: wait forever, killably; default 10000)");

unsigned int vc_max_inflight_kb = 16384;
module_param_named(max_inflight_kb, vc_max_inflight_kb, uint, 0644);
MODULE_PARM_DESC(max_inflight_kb,
		 "Bound on the KiB of request buffers all processes may have at the device; over it a request waits interruptibly, at most timeout_ms without the budget moving (0: no bound; default 16384)");

unsigned int vc_poll_us = 50;
module_param_named(poll_us, vc_poll_us, uint, 0644);
MODULE_PARM_DESC(poll_us,
		 "Poll the used ring for up to this many microseconds before sleeping on a data request, unless another task wants the CPU (0: never; default 50)");

/* Every probed, not yet removed device; protected by vc_devices_lock. */
static LIST_HEAD(vc_devices);
static DEFINE_MUTEX(vc_devices_lock);

/* Bytes of request buffers allocated and not yet freed, all devices. */
static atomic_long_t vc_inflight = ATOMIC_LONG_INIT(0);
/* Bumped whenever bytes are given back: the budget moved. */
static atomic_long_t vc_inflight_gen = ATOMIC_LONG_INIT(0);
/* Waiters for vc_inflight to drop, or for their device to go away. */
static DECLARE_WAIT_QUEUE_HEAD(vc_inflight_wq);

/* Deferred session destroys; drained at module exit. */
static struct workqueue_struct *vc_wq;

static void vc_dev_release(struct kref *ref)
{
	struct vc_dev *dev = container_of(ref, struct vc_dev, ref);

	put_device(&dev->vdev->dev);
	kfree(dev->dataq);
	kfree(dev);
}

void vc_dev_put(struct vc_dev *dev)
{
	kref_put(&dev->ref, vc_dev_release);
}

/* The device /dev/crypto serves: the first live one. */
struct vc_dev *vc_dev_get_any(void)
{
	struct vc_dev *dev, *found = NULL;

	mutex_lock(&vc_devices_lock);
	list_for_each_entry(dev, &vc_devices, node) {
		if (READ_ONCE(dev->ready) && !vc_dev_usable(dev)) {
			kref_get(&dev->ref);
			found = dev;
			break;
		}
	}
	mutex_unlock(&vc_devices_lock);
	return found;
}

/* 0, or the errno a request to this device gets now. */
int vc_dev_usable(struct vc_dev *dev)
{
	if (READ_ONCE(dev->dead))
		return -ENODEV;
	if (READ_ONCE(dev->broken))
		return -EIO;
	return 0;
}

/*
 * Stop sending to the device and wake everyone who waits on it (for ring
 * space or the in-flight budget: they see vc_dev_usable() fail). Only
 * vc_dev_halt() calls it, which then breaks the transport and resets.
 */
static void vc_dev_break(struct vc_dev *dev, const char *why)
{
	unsigned int i;

	if (xchg(&dev->broken, true))
		return;
	dev_err(&dev->vdev->dev,
		"%s: device marked broken (unbind/bind or reload to retry)\n",
		why);
	for (i = 0; i < dev->ndataq; i++)
		wake_up_all(&dev->dataq[i].space);
	wake_up_all(&dev->ctrlq.space);
	wake_up_all(&vc_inflight_wq);
}

static void vc_queue_fence(struct vc_queue *q);
static void vc_queue_flush(struct vc_queue *q, int result);

/* remove() or vc_dev_halt() took the device's buffers back: hands off. */
static bool vc_q_gone(struct vc_dev *dev)
{
	return READ_ONCE(dev->dead) || READ_ONCE(dev->halted);
}

/*
 * Break the device (why) and reset it, failing every request it still
 * holds with -EIO: after this returns the device writes no buffer of ours,
 * above all no caller's pinned page, and the in-flight bytes of requests
 * whose waiters were killed are given back.
 *
 * The transport is broken too, as upstream virtio_crypto does on a host
 * error (virtio_break_device): from then on its virtqueues refuse adds
 * (-EIO), hand out no used buffer and run no callback, so the flush after
 * the reset is what finishes every request still in the rings
 * (virtqueue_detach_unused_buf does not look at broken) and wakes its
 * waiter. Nothing re-initialises the device after the reset: a device
 * this broken serves nothing until it is bound again (unbind/bind, or a
 * reload), whose probe gets new, unbroken virtqueues; so nothing is lost
 * by the reset, nor by the break.
 *
 * Process context, no spinlock held: with vhost-user the reset waits for
 * the backend to answer GET_VRING_BASE. Once only; after remove() only the
 * flag is set (the virtio device may be another driver's by then).
 */
void vc_dev_halt(struct vc_dev *dev, const char *why)
{
	unsigned int i;

	might_sleep();
	vc_dev_break(dev, why);
	mutex_lock(&dev->halt_lock);
	if (!READ_ONCE(dev->dead) && !READ_ONCE(dev->halted)) {
		/* vc_queue_req adds nothing once broken is seen under the lock. */
		WRITE_ONCE(dev->halted, true);
		for (i = 0; i < dev->ndataq; i++)
			vc_queue_fence(&dev->dataq[i]);
		vc_queue_fence(&dev->ctrlq);
		/* Break, then reset: virtio_reset_device's own order when hardened. */
		virtio_break_device(dev->vdev);
		virtio_reset_device(dev->vdev);
		for (i = 0; i < dev->ndataq; i++)
			vc_queue_flush(&dev->dataq[i], -EIO);
		vc_queue_flush(&dev->ctrlq, -EIO);
		dev_err(&dev->vdev->dev,
			"reset: the requests it held were failed\n");
	}
	mutex_unlock(&dev->halt_lock);
}

struct vc_queue *vc_next_dataq(struct vc_dev *dev)
{
	unsigned int i = (unsigned int)atomic_inc_return(&dev->next_q);

	return &dev->dataq[i % dev->ndataq];
}

static long vc_timeout_jiffies(void)
{
	unsigned int ms = READ_ONCE(vc_timeout_ms);

	return ms ? msecs_to_jiffies(ms) : MAX_SCHEDULE_TIMEOUT;
}

bool vc_defer_work(struct work_struct *work)
{
	return queue_work(vc_wq, work);
}

void vc_buf_free(struct vc_buf *buf)
{
	unsigned int i;

	if (buf->pages && buf->pinned) {
		unpin_user_pages_dirty_lock(buf->pages, buf->npages, buf->dirty);
	} else if (buf->pages) {
		for (i = 0; i < buf->npages; i++)
			if (buf->pages[i])
				__free_page(buf->pages[i]);
	}
	if (buf->pages != buf->inline_pages)
		kfree(buf->pages);
	if (buf->sg != buf->inline_sg)
		kfree(buf->sg);
	buf->pages = NULL;
	buf->sg = NULL;
	buf->npages = 0;
	buf->offset = 0;
	buf->pinned = false;
	buf->dirty = false;
}

/*
 * The page and sg arrays for buf->npages pages and nextra more sg entries:
 * the buffer's own inline ones when they fit, else allocated. Pages are
 * zeroed (vc_buf_free skips the NULL ones of a partial bounce buffer).
 */
static int vc_buf_arrays(struct vc_buf *buf, unsigned int nextra)
{
	if (buf->npages <= VC_BUF_INLINE &&
	    buf->npages + nextra <= VC_BUF_INLINE + 1) {
		memset(buf->inline_pages, 0, sizeof(buf->inline_pages));
		buf->pages = buf->inline_pages;
		buf->sg = buf->inline_sg;
		return 0;
	}
	buf->pages = kcalloc(buf->npages, sizeof(*buf->pages),
			     GFP_KERNEL_ACCOUNT);
	buf->sg = kmalloc_array(buf->npages + nextra, sizeof(*buf->sg),
				GFP_KERNEL_ACCOUNT);
	return buf->pages && buf->sg ? 0 : -ENOMEM;
}

/*
 * Zero-copy: pins the caller's pages that hold [uaddr, uaddr + len) (for
 * writing if the device writes them) and describes them in buf->sg, with
 * nextra more entries left at the end for the caller. The pins hold the
 * pages until the request is freed, so a caller that unmaps them or dies
 * meanwhile never lets the device write memory someone else now owns.
 */
int vc_buf_pin(struct vc_buf *buf, const void __user *uaddr, unsigned int len,
	       bool write, unsigned int nextra)
{
	unsigned long start = (unsigned long)uaddr;
	unsigned int i, off, left = len;
	int got;

	buf->len = len;
	buf->offset = offset_in_page(start);
	buf->npages = DIV_ROUND_UP(buf->offset + len, PAGE_SIZE);
	if (vc_buf_arrays(buf, nextra))
		return -ENOMEM;
	/*
	 * Long-term: a request waits for the device up to timeout_ms (for
	 * ever with 0), and a killed waiter's request keeps its pins until
	 * the device returns it or is reset, so the pages are first migrated
	 * out of ZONE_MOVABLE and CMA. Memory that may not be pinned so
	 * (e.g. a writable file mapping on newer kernels) fails here and the
	 * caller bounces it.
	 */
	got = pin_user_pages_fast(start & PAGE_MASK, buf->npages,
				  FOLL_LONGTERM | (write ? FOLL_WRITE : 0),
				  buf->pages);
	if (got < 0)
		got = 0;
	buf->pinned = true;
	buf->dirty = write;
	if (got < buf->npages) {
		buf->npages = got;	/* vc_buf_free unpins these */
		return -EFAULT;
	}
	sg_init_table(buf->sg, buf->npages + nextra);
	off = buf->offset;
	for (i = 0; i < buf->npages; i++) {
		unsigned int chunk = min_t(unsigned int, left, PAGE_SIZE - off);

		sg_set_page(&buf->sg[i], buf->pages[i], chunk, off);
		left -= chunk;
		off = 0;
	}
	return 0;
}

/* Copies n bytes at off of the buffer's data (bounce or pinned) to out. */
void vc_buf_read(const struct vc_buf *buf, unsigned int off, u8 *out,
		 unsigned int n)
{
	unsigned int pos = buf->offset + off;

	while (n) {
		unsigned int po = offset_in_page(pos);
		unsigned int c = min_t(unsigned int, n, PAGE_SIZE - po);

		memcpy_from_page(out, buf->pages[pos / PAGE_SIZE], po, c);
		out += c;
		pos += c;
		n -= c;
	}
}

/*
 * Page-backed so freeing works in interrupt context (the callback).
 * Charged to the caller's memory cgroup, and zeroed: bytes a device fails
 * to write never carry old kernel memory.
 */
int vc_buf_alloc(struct vc_buf *buf, unsigned int len)
{
	unsigned int i, left = len;

	buf->len = len;
	buf->offset = 0;
	buf->npages = DIV_ROUND_UP(len, PAGE_SIZE);
	if (vc_buf_arrays(buf, 0))
		return -ENOMEM;
	sg_init_table(buf->sg, buf->npages);
	for (i = 0; i < buf->npages; i++) {
		unsigned int chunk = min_t(unsigned int, left, PAGE_SIZE);

		buf->pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!buf->pages[i])
			return -ENOMEM;
		sg_set_page(&buf->sg[i], buf->pages[i], chunk, 0);
		left -= chunk;
	}
	return 0;
}

struct vc_req *vc_req_alloc(gfp_t gfp)
{
	struct vc_req *req = kzalloc(sizeof(*req), gfp);

	if (!req)
		return NULL;
	refcount_set(&req->ref, 1);
	init_completion(&req->done);
	atomic_set(&req->state, VC_REQ_WAITING);
	return req;
}

static void vc_req_free(struct vc_req *req)
{
	vc_buf_free(&req->src);
	vc_buf_free(&req->dst);
	if (req->charged) {
		atomic_long_sub(req->charged, &vc_inflight);
		atomic_long_inc(&vc_inflight_gen);
		wake_up_all(&vc_inflight_wq);
	}
	kfree_sensitive(req->key);
	kfree_sensitive(req);	/* holds the IV and the digest */
}

static void vc_req_free_work(struct work_struct *work)
{
	vc_req_free(container_of(work, struct vc_req, free_work));
}

/*
 * Unpinning user pages may sleep. The virtqueue callback (atomic: irq
 * context, or a threaded irq under virtio-pci's INTx spinlock, where
 * in_task() is true) says so with from_cb, and a last put of a zero-copy
 * request there (a killed waiter's) hands the freeing to a worker; so does
 * any other atomic caller.
 */
static void vc_req_put_ctx(struct vc_req *req, bool from_cb)
{
	if (!refcount_dec_and_test(&req->ref))
		return;
	if ((req->src.pinned || req->dst.pinned) && (from_cb || !in_task())) {
		INIT_WORK(&req->free_work, vc_req_free_work);
		vc_defer_work(&req->free_work);
		return;
	}
	vc_req_free(req);
}

/* Process context, or any context for a request without pinned pages. */
void vc_req_put(struct vc_req *req)
{
	vc_req_put_ctx(req, false);
}

/* Takes bytes of the in-flight budget; false when over it. */
static bool vc_inflight_try(unsigned long bytes)
{
	unsigned long limit = READ_ONCE(vc_max_inflight_kb) * 1024UL;
	long cur = atomic_long_read(&vc_inflight);

	do {
		/* A request alone always fits, or a big one could never run. */
		if (limit && cur && cur + bytes > limit)
			return false;
	} while (!atomic_long_try_cmpxchg(&vc_inflight, &cur, cur + bytes));
	return true;
}

/*
 * Count bytes of buffers against max_inflight_kb before allocating them;
 * sleeps (interruptibly: nothing is at the device yet) while the budget is
 * used up. The bytes are given back when the request is freed: once the
 * device has returned it, or was reset (vc_dev_halt, remove). Requests
 * whose waiters were killed have nobody to time them out, so the wait
 * itself is bounded: when the budget has not moved for timeout_ms, the
 * device is broken and reset, which gives their bytes back, and the
 * request gets -ETIMEDOUT. (The budget is shared by all devices; it is
 * the device of the waiting request that is reset.)
 */
static bool vc_inflight_ready(struct vc_dev *dev, unsigned long bytes,
			      long gen, bool *charged)
{
	*charged = vc_inflight_try(bytes);
	return *charged || vc_dev_usable(dev) ||
	       atomic_long_read(&vc_inflight_gen) != gen;
}

int vc_inflight_charge(struct vc_dev *dev, struct vc_req *req,
		       unsigned long bytes)
{
	bool charged = false;
	long ret, gen;
	int err;

	if (!bytes)
		return 0;
	for (;;) {
		gen = atomic_long_read(&vc_inflight_gen);
		ret = wait_event_interruptible_timeout(vc_inflight_wq,
						       vc_inflight_ready(dev, bytes, gen, &charged),
						       vc_timeout_jiffies());
		if (charged)
			break;
		if (ret < 0)
			return -ERESTARTSYS;
		err = vc_dev_usable(dev);
		if (err)
			return err;
		if (!ret) {
			vc_dev_halt(dev, "in-flight budget held for timeout_ms");
			return -ETIMEDOUT;
		}
		/* Bytes were given back but not enough: wait again. */
	}
	req->charged = bytes;
	return 0;
}

/*
 * The device returned a request, or it is being failed because the device
 * went away. The device's reference is dropped here, except for a session
 * create whose submitter gave up: the session the device made is destroyed
 * from a worker, which then drops it.
 */
static void vc_req_finish(struct vc_req *req, int result, unsigned int len,
			  bool from_cb)
{
	req->result = result;
	req->used_len = len;
	if (atomic_xchg(&req->state, VC_REQ_DONE) == VC_REQ_ABANDONED &&
	    req->is_create && !result) {
		kref_get(&req->dev->ref);
		if (vc_defer_work(&req->orphan_work))
			return;
		vc_dev_put(req->dev);	/* cannot happen: queued once */
	}
	complete(&req->done);
	vc_req_put_ctx(req, from_cb);
}

/* Descriptors a request takes: more than the ring holds never fits. */
static int vc_req_fits(struct vc_dev *dev, struct vc_queue *q,
		       struct scatterlist *sgs[], unsigned int n)
{
	unsigned int i, total = 0;

	for (i = 0; i < n; i++)
		total += sg_nents(sgs[i]);
	if (total > dev->max_descs)
		return -EINVAL;
	if (!virtio_has_feature(dev->vdev, VIRTIO_RING_F_INDIRECT_DESC) &&
	    total > virtqueue_get_vring_size(q->vq))
		return -EINVAL;
	return 0;
}

/*
 * Add a request to a ring. The device's reference is taken here and dropped
 * by whoever finishes the request (the callback, or remove when the device
 * goes away). A full ring is waited on interruptibly, at most timeout_ms in
 * all (the budget is not renewed when the ring moves; then the device is
 * broken and reset). A ring that is empty and still has no room means the
 * request is too big for it.
 */
int vc_queue_req(struct vc_dev *dev, struct vc_queue *q, struct vc_req *req,
		 struct scatterlist *sgs[], unsigned int nout, unsigned int nin)
{
	long left = vc_timeout_jiffies(), ret;
	unsigned long flags, seq;
	int err;

	err = vc_req_fits(dev, q, sgs, nout + nin);
	if (err)
		return err;
	req->q = q;
	refcount_inc(&req->ref);
	for (;;) {
		spin_lock_irqsave(&q->lock, flags);
		err = vc_dev_usable(dev);
		if (!err) {
			err = virtqueue_add_sgs(q->vq, sgs, nout, nin, req,
						GFP_ATOMIC);
			/*
			 * Notify under the lock: remove() deletes the vq only
			 * after taking this lock, so the vq is alive here.
			 */
			if (!err) {
				q->inflight++;
				if (req->timed)
					req->stamp[VC_T_KICK] = vc_clock();
				virtqueue_kick(q->vq);
				if (req->timed)
					req->stamp[VC_T_KICKED] = vc_clock();
			} else if (err == -ENOSPC && !q->inflight) {
				err = -EINVAL;
			}
		}
		seq = q->space_seq;
		spin_unlock_irqrestore(&q->lock, flags);
		if (err != -ENOSPC)
			break;
		/* Ring full: sleep until the callback reclaims something. */
		ret = wait_event_interruptible_timeout(q->space,
						       READ_ONCE(q->space_seq) != seq ||
						       vc_dev_usable(dev), left);
		if (ret < 0) {
			err = -ERESTARTSYS;
			break;
		}
		if (!ret) {
			refcount_dec(&req->ref);	/* never reached the device */
			vc_dev_halt(dev, "ring full for timeout_ms");
			return -ETIMEDOUT;
		}
		if (left != MAX_SCHEDULE_TIMEOUT)
			left = ret;
	}
	if (err)
		refcount_dec(&req->ref);	/* never reached the device */
	return err;
}

/*
 * Finish every request the device has put in q's used ring: the body the
 * virtqueue callback (from_cb) and the poll share. Called with q->lock
 * held (irqsave, *flags), which it drops around each completion and holds
 * again on return. It stops once remove() or vc_dev_halt() took the
 * device's buffers back (vc_q_gone, seen under the lock: both set their
 * flag, then pass every queue lock, before they reset). True when it
 * finished any.
 */
static bool vc_drain_used(struct vc_dev *dev, struct vc_queue *q,
			  unsigned long *flags, bool from_cb)
	__must_hold(&q->lock)
{
	struct vc_req *req;
	unsigned int len;
	bool got = false;

	while (!vc_q_gone(dev) &&
	       (req = virtqueue_get_buf(q->vq, &len)) != NULL) {
		q->space_seq++;
		q->inflight--;
		got = true;
		if (req->timed) {
			req->stamp[VC_T_DONE] = vc_clock();
			req->polled = !from_cb;
		}
		spin_unlock_irqrestore(&q->lock, *flags);
		vc_req_finish(req, 0, len, from_cb);
		spin_lock_irqsave(&q->lock, *flags);
	}
	return got;
}

/* Reap what the device has put in the used ring without waiting for its interrupt. */
static void vc_poll_used(struct vc_dev *dev, struct vc_queue *q)
{
	unsigned long flags;
	bool got;

	spin_lock_irqsave(&q->lock, flags);
	got = vc_drain_used(dev, q, &flags, false);
	spin_unlock_irqrestore(&q->lock, flags);
	if (got)
		wake_up_all(&q->space);
}

/*
 * Turn the queue's interrupt off (while polling) or back on. Under the
 * queue lock, as the callback's own disable/enable, and never after
 * remove() passed the lock. Back on, true when the used ring already holds
 * buffers (the device will not interrupt for them): drain and ask again.
 */
static bool vc_poll_irq(struct vc_dev *dev, struct vc_queue *q, bool on)
{
	unsigned long flags;
	bool pending = false;

	spin_lock_irqsave(&q->lock, flags);
	if (!vc_q_gone(dev)) {
		if (on)
			pending = !virtqueue_enable_cb(q->vq);
		else
			virtqueue_disable_cb(q->vq);
	}
	spin_unlock_irqrestore(&q->lock, flags);
	return pending;
}

/*
 * Bounded busy-poll (poll_us) before sleeping, for short requests; it
 * gives way as soon as another task wants this CPU. The
 * queue's interrupt is off meanwhile, so a request the poll completes
 * costs no interrupt (under TCG: an injected irq, its handler and an APIC
 * EOI write). Every poller and the callback end with the interrupt on, so
 * a request nobody polls for is always signalled.
 */
static void vc_poll_req(struct vc_dev *dev, struct vc_req *req)
{
	unsigned int us = READ_ONCE(vc_poll_us);
	struct vc_queue *q = req->q;
	u64 end;

	if (!us || !q || q == &dev->ctrlq)
		return;
	end = local_clock() + (u64)min(us, 1000U) * NSEC_PER_USEC;
	vc_poll_irq(dev, q, false);
	while (!completion_done(&req->done) && local_clock() < end &&
	       !signal_pending(current) && !need_resched()) {
		vc_poll_used(dev, q);
		cpu_relax();
	}
	while (vc_poll_irq(dev, q, true))
		vc_poll_used(dev, q);
}

/*
 * Wait at most timeout_ms for the device to return a queued request.
 *
 * A data request may hold the caller's own pages, pinned for the device
 * to write (zero-copy), so its wait is killable, not interruptible: no
 * signal but a fatal one ends it (as cryptodev-linux, whose wait is
 * uninterruptible for this reason), and an SA_RESTART signal never makes
 * the ioctl send the request again. A fatal signal abandons the request:
 * it stays the device's, with its pins, until the device returns it (the
 * callback frees it) or is reset; the process never runs again, so none
 * of its private memory is reused meanwhile. A timeout breaks and resets
 * the device (vc_dev_halt), so the device holds nothing of ours when
 * -ETIMEDOUT reaches the caller.
 *
 * A control request holds only kernel memory: its wait is interruptible
 * (-ERESTARTSYS) and an abandoned session create that the device carried
 * out is destroyed from a worker.
 */
int vc_wait_req(struct vc_dev *dev, struct vc_req *req)
{
	bool data = req->q != &dev->ctrlq;
	long ret;

	vc_poll_req(dev, req);
	/* The poll saw it: no trip through the completion's wait queue. */
	if (completion_done(&req->done))
		ret = 1;
	else if (data)
		ret = wait_for_completion_killable_timeout(&req->done,
							   vc_timeout_jiffies());
	else
		ret = wait_for_completion_interruptible_timeout(&req->done,
								vc_timeout_jiffies());
	if (req->timed)
		req->stamp[VC_T_WAKE] = vc_clock();

	if (ret > 0)
		return req->result;
	if (!ret) {
		vc_dev_halt(dev, "request timed out");
		/* Failed by the reset, or being finished by a poller now. */
		wait_for_completion(&req->done);
		return -ETIMEDOUT;
	}
	if (atomic_cmpxchg(&req->state, VC_REQ_WAITING, VC_REQ_ABANDONED) !=
	    VC_REQ_WAITING)
		return req->result;	/* returned meanwhile */
	return -ERESTARTSYS;
}

int vc_submit(struct vc_dev *dev, struct vc_queue *q, struct vc_req *req,
	      struct scatterlist *sgs[], unsigned int nout, unsigned int nin)
{
	int err = vc_queue_req(dev, q, req, sgs, nout, nin);

	return err ? err : vc_wait_req(dev, req);
}

static struct vc_queue *vc_queue_of(struct vc_dev *dev, struct virtqueue *vq)
{
	if (vq->index < dev->ndataq)
		return &dev->dataq[vq->index];
	return &dev->ctrlq;
}

/*
 * Virtqueue callback (interrupt context). Disable callbacks, drain, and
 * re-enable; if buffers arrived in between, enable_cb says so and we drain
 * again. Once the buffers were taken back (remove, halt) the vq is not
 * touched again.
 */
static void vc_vq_done(struct virtqueue *vq)
{
	struct vc_dev *dev = vq->vdev->priv;
	struct vc_queue *q = vc_queue_of(dev, vq);
	unsigned long flags;
	bool got = false;

	spin_lock_irqsave(&q->lock, flags);
	while (!vc_q_gone(dev)) {
		virtqueue_disable_cb(vq);
		got |= vc_drain_used(dev, q, &flags, true);
		if (vc_q_gone(dev) || virtqueue_enable_cb(vq))
			break;
	}
	spin_unlock_irqrestore(&q->lock, flags);
	if (got)
		wake_up_all(&q->space);
}

/* Map a data-request status byte; an unknown value breaks the device. */
int vc_status_to_errno(struct vc_dev *dev, u8 status)
{
	switch (status) {
	case VIRTIO_CRYPTO_OK:
		return 0;
	case VIRTIO_CRYPTO_BADMSG:
		return -EBADMSG;
	case VIRTIO_CRYPTO_NOTSUPP:
		return -EOPNOTSUPP;
	case VIRTIO_CRYPTO_INVSESS:
		return -EINVAL;
	case VIRTIO_CRYPTO_NOSPC:
		return -ENOSPC;
	case VIRTIO_CRYPTO_ERR:
	case VIRTIO_CRYPTO_KEY_REJECTED:
		return -EIO;
	default:
		vc_dev_halt(dev, "unknown status");
		return -EIO;
	}
}

static void vc_queue_init(struct vc_queue *q, struct virtqueue *vq)
{
	q->vq = vq;
	spin_lock_init(&q->lock);
	init_waitqueue_head(&q->space);
}

static int vc_find_vqs(struct vc_dev *dev)
{
	unsigned int i, nvqs = dev->ndataq + 1;
	struct virtqueue **vqs;
	vq_callback_t **callbacks;
	const char **names;
	int err = -ENOMEM;

	vqs = kcalloc(nvqs, sizeof(*vqs), GFP_KERNEL);
	callbacks = kcalloc(nvqs, sizeof(*callbacks), GFP_KERNEL);
	names = kcalloc(nvqs, sizeof(*names), GFP_KERNEL);
	if (!vqs || !callbacks || !names)
		goto out_free;

	/* virtio-crypto: data queues 0..N-1, then the control queue. */
	for (i = 0; i < dev->ndataq; i++) {
		snprintf(dev->dataq[i].name, sizeof(dev->dataq[i].name),
			 "dataq.%u", i);
		names[i] = dev->dataq[i].name;
		callbacks[i] = vc_vq_done;
	}
	strscpy(dev->ctrlq.name, "controlq", sizeof(dev->ctrlq.name));
	names[dev->ndataq] = dev->ctrlq.name;
	callbacks[dev->ndataq] = vc_vq_done;

	err = vc_virtio_find_vqs(dev->vdev, nvqs, vqs, callbacks, names);
	if (err)
		goto out_free;
	for (i = 0; i < dev->ndataq; i++)
		vc_queue_init(&dev->dataq[i], vqs[i]);
	vc_queue_init(&dev->ctrlq, vqs[dev->ndataq]);
out_free:
	kfree(names);
	kfree(callbacks);
	kfree(vqs);
	return err;
}

#define vc_cread(vdev, field, ptr) \
	virtio_cread_le(vdev, struct virtio_crypto_config, field, ptr)

/*
 * Re-read the device status: only a HW_READY device serves /dev/crypto.
 * Unknown status bits would be a host error (upstream's
 * virtcrypto_update_status breaks the device for them): the device is
 * broken and reset like after any other host error, at probe too (it stays
 * bound, serving nothing, until it is bound again). Process context: the
 * work item, or probe.
 */
static void vc_config_work(struct work_struct *work)
{
	struct vc_dev *dev = container_of(work, struct vc_dev, config_work);
	bool ready;
	u32 status;

	vc_cread(dev->vdev, status, &status);
	if (status & ~VIRTIO_CRYPTO_S_HW_READY) {
		dev_err(&dev->vdev->dev, "status %#x has unknown bits\n", status);
		vc_dev_halt(dev, "unknown status bits");
		return;
	}
	ready = status & VIRTIO_CRYPTO_S_HW_READY;
	if (ready == READ_ONCE(dev->ready))
		return;
	WRITE_ONCE(dev->ready, ready);
	dev_info(&dev->vdev->dev, "%s (status %#x)\n",
		 ready ? "ready" : "not ready", status);
}

/* Config space changes (HW_READY coming up) arrive here, in atomic context. */
static void vc_config_changed(struct virtio_device *vdev)
{
	struct vc_dev *dev = vdev->priv;

	schedule_work(&dev->config_work);
}

static int vc_probe(struct virtio_device *vdev)
{
	struct vc_dev *dev;
	u32 ndataq;
	u64 max_size;
	unsigned int ring;
	int err;

	vc_cread(vdev, max_dataqueues, &ndataq);
	if (ndataq == 0 || ndataq > VC_MAX_DATAQ) {
		dev_err(&vdev->dev, "unsupported max_dataqueues %u\n", ndataq);
		return -EINVAL;
	}

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	dev->dataq = kcalloc(ndataq, sizeof(*dev->dataq), GFP_KERNEL);
	if (!dev->dataq) {
		kfree(dev);
		return -ENOMEM;
	}
	kref_init(&dev->ref);
	get_device(&vdev->dev);		/* dropped in vc_dev_release */
	dev->vdev = vdev;
	dev->ndataq = ndataq;
	INIT_WORK(&dev->config_work, vc_config_work);
	mutex_init(&dev->halt_lock);
	vdev->priv = dev;

	vc_cread(vdev, cipher_algo_l, &dev->cipher_algo_l);
	vc_cread(vdev, mac_algo_l, &dev->mac_algo_l);
	vc_cread(vdev, max_cipher_key_len, &dev->max_cipher_key_len);
	vc_cread(vdev, max_auth_key_len, &dev->max_auth_key_len);
	vc_cread(vdev, max_size, &max_size);
	dev->max_data_len = min_t(u64, max_size, VC_MAX_DATA_LEN);

	err = vc_find_vqs(dev);
	if (err)
		goto err_put;
	/*
	 * A request is header, IV, src pages, dst pages, digest, status. With
	 * INDIRECT_DESC it takes one ring slot and QEMU reads up to 1024
	 * descriptors; without, every descriptor is a ring slot.
	 */
	dev->max_descs = 1024;
	if (!virtio_has_feature(vdev, VIRTIO_RING_F_INDIRECT_DESC)) {
		ring = virtqueue_get_vring_size(dev->dataq[0].vq);
		dev->max_descs = min(dev->max_descs, ring);
	}
	/* The fixed descriptors and one page of src and dst, at least. */
	if (dev->max_descs < 10) {
		dev_err(&vdev->dev, "ring of %u descriptors is too small\n",
			dev->max_descs);
		err = -EINVAL;
		goto err_del;
	}
	dev->max_data_len = min_t(u64, dev->max_data_len,
				  (u64)(dev->max_descs - 8) / 2 * PAGE_SIZE);
	virtio_device_ready(vdev);

	mutex_lock(&vc_devices_lock);
	list_add_tail(&dev->node, &vc_devices);
	mutex_unlock(&vc_devices_lock);

	dev_info(&vdev->dev,
		 "%u data queue(s), ciphers %#x, macs %#x, keys <= %u/%u, requests <= %u bytes\n",
		 ndataq, dev->cipher_algo_l, dev->mac_algo_l,
		 dev->max_cipher_key_len, dev->max_auth_key_len,
		 dev->max_data_len);
	/* Not ready yet: config_changed tells us when it is. */
	vc_config_work(&dev->config_work);
	return 0;

err_del:
	virtio_reset_device(vdev);
	vdev->config->del_vqs(vdev);
err_put:
	vdev->priv = NULL;
	vc_dev_put(dev);
	return err;
}

/* Fail every request the (already reset) device still holds. */
static void vc_queue_flush(struct vc_queue *q, int result)
{
	struct vc_req *req;
	unsigned long flags;

	spin_lock_irqsave(&q->lock, flags);
	while ((req = virtqueue_detach_unused_buf(q->vq)) != NULL) {
		q->inflight--;
		spin_unlock_irqrestore(&q->lock, flags);
		vc_req_finish(req, result, 0, false);
		spin_lock_irqsave(&q->lock, flags);
	}
	q->space_seq++;
	spin_unlock_irqrestore(&q->lock, flags);
	wake_up_all(&q->space);
}

static void vc_queue_fence(struct vc_queue *q)
{
	unsigned long flags;

	spin_lock_irqsave(&q->lock, flags);
	spin_unlock_irqrestore(&q->lock, flags);
}

static void vc_remove(struct virtio_device *vdev)
{
	struct vc_dev *dev = vdev->priv;
	unsigned int i;

	mutex_lock(&vc_devices_lock);
	list_del(&dev->node);
	mutex_unlock(&vc_devices_lock);
	/* Config changes are disabled before remove: no new work comes. */
	cancel_work_sync(&dev->config_work);

	/* A vc_dev_halt() under way finishes first; none starts after. */
	mutex_lock(&dev->halt_lock);
	WRITE_ONCE(dev->dead, true);
	wake_up_all(&vc_inflight_wq);
	for (i = 0; i < dev->ndataq; i++)
		vc_queue_fence(&dev->dataq[i]);
	vc_queue_fence(&dev->ctrlq);

	/* After the reset the device touches no buffer of ours. */
	virtio_reset_device(vdev);
	for (i = 0; i < dev->ndataq; i++)
		vc_queue_flush(&dev->dataq[i], -ENODEV);
	vc_queue_flush(&dev->ctrlq, -ENODEV);
	mutex_unlock(&dev->halt_lock);
	vdev->config->del_vqs(vdev);

	dev_info(&vdev->dev, "removed\n");
	vc_dev_put(dev);	/* probe's reference; open files keep theirs */
}

static const struct virtio_device_id vc_id_table[] = {
	{ VIRTIO_ID_CRYPTO, VIRTIO_DEV_ANY_ID },
	{ 0 },
};
MODULE_DEVICE_TABLE(virtio, vc_id_table);

/*
 * No VIRTIO_CRYPTO_F_* feature is offered: without REVISION_1 the control
 * and data headers are the 72-byte legacy layouts.
 */
static struct virtio_driver vc_virtio_driver = {
	.driver.name = VC_NAME,
	.driver.owner = THIS_MODULE,
	.id_table = vc_id_table,
	.probe = vc_probe,
	.remove = vc_remove,
	.config_changed = vc_config_changed,
	.driver.dev_groups = vc_dev_groups,
};

int vc_virtio_init(void)
{
	int err;

	vc_wq = alloc_workqueue(VC_NAME, WQ_UNBOUND, 0);
	if (!vc_wq)
		return -ENOMEM;
	err = register_virtio_driver(&vc_virtio_driver);
	if (err)
		destroy_workqueue(vc_wq);
	return err;
}

/*
 * After every remove: deferred destroys left see a dead device and end at
 * once, and the requests they wait for were failed by remove.
 */
void vc_virtio_exit(void)
{
	unregister_virtio_driver(&vc_virtio_driver);
	destroy_workqueue(vc_wq);
}

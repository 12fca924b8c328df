// SPDX-License-Identifier: GPL-2.0
/*
 * The asynchronous interface of cryptodev-linux on one open file:
 * CIOCASYNCCRYPT queues an operation and returns at once (EBUSY when the
 * file's queue is full), CIOCASYNCFETCH hands back the oldest completed
 * one (EBUSY when none), poll() says EPOLLOUT while there is room and
 * EPOLLIN while a completion waits.
 *
 * Lifetime: a queued device request reads and writes only kernel pages of
 * its job (bounce pages, kept in a small per-file pool between jobs), never
 * the caller's memory. The results reach user memory only inside
 * CIOCASYNCFETCH, from those pages, so nothing is written into user memory
 * after the program stopped owning it: not after close, not after exit,
 * not after a reset. A closed file's jobs still at the device stay its own
 * until the device returns them (or is reset); a worker then frees them.
 * Every job at the device is timed: after timeout_ms the device is broken
 * and reset, as a synchronous waiter's timeout does.
 */
#include <linux/highmem.h>
#include <linux/jiffies.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vlab_cryptodev.h"

unsigned int vc_async_depth = 64;
module_param_named(async_depth, vc_async_depth, uint, 0644);
MODULE_PARM_DESC(async_depth,
		 "Operations one open file may have queued with CIOCASYNCCRYPT and not yet fetched (1..1024; default 64)");

#define VC_ASYNC_MAX_DEPTH	1024
/*
 * Bounce pages a job keeps for the next one, per direction: a 16 KiB
 * operation reuses its pages; bigger ones are freed once fetched, so an
 * idle file holds at most depth * 2 * 16 KiB.
 */
#define VC_ASYNC_KEEP_PAGES	4

/* Kernel pages of one direction of a job, reused between jobs. */
struct vc_apages {
	unsigned int cap;		/* pages allocated */
	struct page **pages;
	struct scatterlist *sg;		/* cap entries */
};

struct vc_async_job {
	struct list_head node;		/* free, busy or done list of ctx */
	struct vc_async *ctx;
	struct vc_session *s;		/* a reference while queued */
	struct crypt_op cop;		/* as queued; written back by FETCH */
	bool on_dev;			/* a device request, else already run */
	bool timed_out;			/* the timeout work reset the device */
	int result;
	u8 status;			/* the device's status byte */
	unsigned int used_len;
	unsigned int len, dlen;
	unsigned long queued;		/* jiffies */
	u8 iv[VC_MAX_IV];
	u8 last_ct[VC_AES_BLOCK];	/* CBC decrypt: the next IV */
	struct vc_apages src, dst;
	struct work_struct free_work;	/* a closed file's job, returned */
};

struct vc_async {
	struct kref ref;		/* the file's, and one per busy or done job */
	struct vc_dev *dev;		/* a reference */
	/* Protects the lists, the counts and closed; taken from the callback. */
	spinlock_t lock;
	struct list_head free;		/* jobs kept for their pages */
	struct list_head busy;		/* at the device, oldest first */
	struct list_head done;		/* completed, in completion order */
	unsigned int nqueued;		/* busy + done + being queued */
	bool closed;
	wait_queue_head_t wq;		/* poll() */
	struct delayed_work timeout;
};

static void vc_apages_free(struct vc_apages *a)
{
	unsigned int i;

	for (i = 0; i < a->cap; i++)
		__free_page(a->pages[i]);
	kfree(a->pages);
	kfree(a->sg);
	a->pages = NULL;
	a->sg = NULL;
	a->cap = 0;
}

/* At least n zeroed pages; the old ones are kept. */
static int vc_apages_grow(struct vc_apages *a, unsigned int n)
{
	struct scatterlist *sg;
	struct page **pages;
	unsigned int i;

	if (n <= a->cap)
		return 0;
	pages = kcalloc(n, sizeof(*pages), GFP_KERNEL_ACCOUNT);
	sg = kmalloc_array(n, sizeof(*sg), GFP_KERNEL_ACCOUNT);
	if (!pages || !sg)
		goto fail;
	for (i = a->cap; i < n; i++) {
		pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!pages[i])
			goto fail;
	}
	if (a->cap)
		memcpy(pages, a->pages, a->cap * sizeof(*pages));
	kfree(a->pages);
	kfree(a->sg);
	a->pages = pages;
	a->sg = sg;
	a->cap = n;
	return 0;
fail:
	if (pages)
		for (i = a->cap; i < n && pages[i]; i++)
			__free_page(pages[i]);
	kfree(pages);
	kfree(sg);
	return -ENOMEM;
}

/* Describes the first len bytes of the pages in a->sg. */
static struct scatterlist *vc_apages_sg(struct vc_apages *a, unsigned int len)
{
	unsigned int i, n = DIV_ROUND_UP(len, PAGE_SIZE), left = len;

	sg_init_table(a->sg, n);
	for (i = 0; i < n; i++) {
		unsigned int chunk = min_t(unsigned int, left, PAGE_SIZE);

		sg_set_page(&a->sg[i], a->pages[i], chunk, 0);
		left -= chunk;
	}
	return a->sg;
}

/* len bytes from the user, then zeros up to dlen (CTR's padding block). */
static int vc_apages_from_user(struct vc_apages *a, const u8 __user *src,
			       unsigned int len, unsigned int dlen)
{
	unsigned int i, off = 0;

	for (i = 0; off < dlen; i++) {
		unsigned int chunk = min_t(unsigned int, dlen - off, PAGE_SIZE);
		unsigned int user = off < len ? min(chunk, len - off) : 0;
		u8 *page = page_address(a->pages[i]);

		if (user && copy_from_user(page, src + off, user))
			return -EFAULT;
		if (chunk > user)
			memset(page + user, 0, chunk - user);
		off += chunk;
	}
	return 0;
}

static int vc_apages_to_user(u8 __user *dst, const struct vc_apages *a,
			     unsigned int len)
{
	unsigned int i, off = 0;

	for (i = 0; off < len; i++) {
		unsigned int chunk = min_t(unsigned int, len - off, PAGE_SIZE);

		if (copy_to_user(dst + off, page_address(a->pages[i]), chunk))
			return -EFAULT;
		off += chunk;
	}
	return 0;
}

static void vc_async_free(struct kref *ref)
{
	struct vc_async *ctx = container_of(ref, struct vc_async, ref);

	cancel_delayed_work_sync(&ctx->timeout);
	vc_dev_put(ctx->dev);
	kfree(ctx);
}

/* Process context: the last put cancels the timeout work. */
static void vc_async_put(struct vc_async *ctx)
{
	kref_put(&ctx->ref, vc_async_free);
}

/* Process context (the session's last put talks to the device). */
static void vc_job_free(struct vc_async_job *job)
{
	if (job->s)
		vc_session_put(job->s);
	vc_apages_free(&job->src);
	vc_apages_free(&job->dst);
	kfree_sensitive(job);
}

/* A fetched (or failed to queue) job: kept for its pages, or freed. */
static void vc_job_recycle(struct vc_async *ctx, struct vc_async_job *job)
{
	unsigned long flags;

	if (job->s) {
		vc_session_put(job->s);
		job->s = NULL;
	}
	memzero_explicit(job->iv, sizeof(job->iv));
	if (job->src.cap > VC_ASYNC_KEEP_PAGES)
		vc_apages_free(&job->src);
	if (job->dst.cap > VC_ASYNC_KEEP_PAGES)
		vc_apages_free(&job->dst);
	spin_lock_irqsave(&ctx->lock, flags);
	list_add(&job->node, &ctx->free);
	ctx->nqueued--;
	spin_unlock_irqrestore(&ctx->lock, flags);
	wake_up_interruptible_poll(&ctx->wq, EPOLLOUT | EPOLLWRNORM);
}

static void vc_job_free_work(struct work_struct *work)
{
	struct vc_async_job *job = container_of(work, struct vc_async_job,
						free_work);
	struct vc_async *ctx = job->ctx;

	vc_job_free(job);
	vc_async_put(ctx);
}

/*
 * The device returned the request, or it was failed (reset, remove): any
 * context. The job leaves the busy list; an open file's goes to done and
 * wakes poll(), a closed file's is freed by a worker.
 */
static void vc_async_done(struct vc_req *req)
{
	struct vc_async_job *job = req->owner;
	struct vc_async *ctx = job->ctx;
	unsigned long flags;
	bool closed;

	job->result = req->result;
	job->status = req->status;
	job->used_len = req->used_len;
	vc_req_put(req);	/* the job's: no pins, safe anywhere */

	/*
	 * The job keeps its reference on ctx (dropped by the fetch, the
	 * release or the worker, all in process context). The wake-up is
	 * under the lock: a release racing with this waits for it, so ctx
	 * is not freed under it.
	 */
	spin_lock_irqsave(&ctx->lock, flags);
	closed = ctx->closed;
	if (closed) {
		list_del(&job->node);
	} else {
		list_move_tail(&job->node, &ctx->done);
		wake_up_interruptible_poll(&ctx->wq, EPOLLIN | EPOLLRDNORM);
	}
	spin_unlock_irqrestore(&ctx->lock, flags);
	if (closed) {
		INIT_WORK(&job->free_work, vc_job_free_work);
		vc_defer_work(&job->free_work);
	}
}

/*
 * The oldest job at the device waited timeout_ms: break and reset the
 * device as a synchronous waiter's timeout does; the reset fails every
 * request it held, so their jobs complete (EIO; ETIMEDOUT for those that
 * waited the whole timeout).
 */
static void vc_async_timeout(struct work_struct *work)
{
	struct vc_async *ctx = container_of(to_delayed_work(work),
					    struct vc_async, timeout);
	unsigned int ms = READ_ONCE(vc_timeout_ms);
	unsigned long tmo = msecs_to_jiffies(ms), now = jiffies, wait = 0;
	struct vc_async_job *job;
	bool expired = false;

	spin_lock_irq(&ctx->lock);
	list_for_each_entry(job, &ctx->busy, node) {
		if (ms && time_after_eq(now, job->queued + tmo)) {
			job->timed_out = true;
			expired = true;
		} else if (!wait) {
			wait = ms ? job->queued + tmo - now : 0;
			break;
		}
	}
	spin_unlock_irq(&ctx->lock);
	if (expired)
		vc_dev_halt(ctx->dev, "asynchronous request timed out");
	else if (wait)
		vc_defer_delayed(&ctx->timeout, wait);
}

struct vc_async *vc_async_open(struct vc_dev *dev)
{
	struct vc_async *ctx = kzalloc(sizeof(*ctx), GFP_KERNEL_ACCOUNT);

	if (!ctx)
		return NULL;
	kref_init(&ctx->ref);
	kref_get(&dev->ref);
	ctx->dev = dev;
	spin_lock_init(&ctx->lock);
	INIT_LIST_HEAD(&ctx->free);
	INIT_LIST_HEAD(&ctx->busy);
	INIT_LIST_HEAD(&ctx->done);
	init_waitqueue_head(&ctx->wq);
	INIT_DELAYED_WORK(&ctx->timeout, vc_async_timeout);
	return ctx;
}

/*
 * The file's last close: what was done or idle is freed now; what is at
 * the device stays the device's until it returns it or is reset.
 */
void vc_async_release(struct vc_async *ctx)
{
	struct vc_async_job *job, *tmp;
	unsigned int ndone = 0;
	LIST_HEAD(drop);

	spin_lock_irq(&ctx->lock);
	ctx->closed = true;
	list_for_each_entry(job, &ctx->done, node)
		ndone++;
	list_splice_init(&ctx->done, &drop);
	list_splice_init(&ctx->free, &drop);
	spin_unlock_irq(&ctx->lock);
	list_for_each_entry_safe(job, tmp, &drop, node) {
		list_del(&job->node);
		vc_job_free(job);
	}
	/* The done jobs' references, then the file's. */
	while (ndone--)
		vc_async_put(ctx);
	vc_async_put(ctx);
}

/* Takes a queue slot and a job (from the pool, or a new one). */
static struct vc_async_job *vc_job_get(struct vc_async *ctx)
{
	unsigned int depth = clamp(READ_ONCE(vc_async_depth), 1U,
				   (unsigned int)VC_ASYNC_MAX_DEPTH);
	struct vc_async_job *job = NULL;

	spin_lock_irq(&ctx->lock);
	if (ctx->nqueued >= depth) {
		spin_unlock_irq(&ctx->lock);
		return ERR_PTR(-EBUSY);
	}
	ctx->nqueued++;
	job = list_first_entry_or_null(&ctx->free, struct vc_async_job, node);
	if (job)
		list_del(&job->node);
	spin_unlock_irq(&ctx->lock);
	if (!job) {
		job = kzalloc(sizeof(*job), GFP_KERNEL_ACCOUNT);
		if (!job) {
			spin_lock_irq(&ctx->lock);
			ctx->nqueued--;
			spin_unlock_irq(&ctx->lock);
			return ERR_PTR(-ENOMEM);
		}
		job->ctx = ctx;
	}
	return job;
}

/*
 * What the device serves here: a cipher-only device session with the IV
 * in the operation. Hash/MAC sessions (their state, their digest) and
 * operations on the session's chaining IV (the next IV depends on the
 * previous result) run to completion inside CIOCASYNCCRYPT instead, as a
 * CIOCCRYPT would, and only their result waits for the fetch.
 */
static bool vc_async_on_dev(const struct vc_session *s,
			    const struct crypt_op *cop)
{
	return s->on_dev && s->calg && !s->malg && cop->len &&
	       (cop->iv || !s->calg->ivsize);
}

static int vc_async_queue(struct vc_async *ctx, struct vc_async_job *job,
			  struct vc_session *s, const struct crypt_op *cop)
{
	struct vc_dev *dev = s->dev;
	unsigned int ivsize = s->calg->ivsize, len = cop->len, dlen = len;
	struct scatterlist hdr_sg, iv_sg, status_sg, *sgs[5];
	unsigned int nout = 0, nin = 0, npages;
	unsigned long bytes, flags;
	struct vc_req *req;
	bool others;
	int err;

	if (len % s->calg->blocksize || len > dev->max_data_len)
		return -EINVAL;
	if (ivsize && copy_from_user(job->iv, cop->iv, ivsize))
		return -EFAULT;
	if (s->calg->cryptodev == CRYPTO_AES_CTR)
		dlen = round_up(len, VC_AES_BLOCK);
	npages = DIV_ROUND_UP(dlen, PAGE_SIZE);

	req = vc_req_alloc(GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	/*
	 * The in-flight budget, before any page is allocated. Over it, a file
	 * with other operations queued gets EBUSY (fetch, then queue again:
	 * the answer cryptodev-linux gives for a full queue); one with none
	 * waits as CIOCCRYPT does, or it could never make progress.
	 */
	bytes = PAGE_ALIGN(dlen) * 2;
	spin_lock_irq(&ctx->lock);
	others = ctx->nqueued > 1;
	spin_unlock_irq(&ctx->lock);
	if (!vc_inflight_try_charge(req, bytes)) {
		err = others ? -EBUSY : vc_inflight_charge(dev, req, bytes);
		if (err)
			goto out_put;
	}
	err = vc_apages_grow(&job->src, npages);
	if (!err)
		err = vc_apages_grow(&job->dst, npages);
	if (!err)
		err = vc_apages_from_user(&job->src, cop->src, len, dlen);
	if (err)
		goto out_put;
	if (s->calg->cryptodev == CRYPTO_AES_CBC && cop->op == COP_DECRYPT)
		memcpy_from_page(job->last_ct,
				 job->src.pages[(len - VC_AES_BLOCK) / PAGE_SIZE],
				 offset_in_page(len - VC_AES_BLOCK),
				 VC_AES_BLOCK);

	memcpy(req->iv, job->iv, ivsize);
	req->status = VIRTIO_CRYPTO_ERR;
	vc_fill_data_hdr(s, req, cop->op, dlen, len);
	sg_init_one(&hdr_sg, &req->hdr.data, sizeof(req->hdr.data));
	sgs[nout++] = &hdr_sg;
	if (ivsize) {
		sg_init_one(&iv_sg, req->iv, ivsize);
		sgs[nout++] = &iv_sg;
	}
	sgs[nout++] = vc_apages_sg(&job->src, dlen);
	sgs[nout + nin++] = vc_apages_sg(&job->dst, dlen);
	sg_init_one(&status_sg, &req->status, sizeof(req->status));
	sgs[nout + nin++] = &status_sg;

	kref_get(&s->ref);
	job->s = s;
	job->cop = *cop;
	job->on_dev = true;
	job->timed_out = false;
	job->len = len;
	job->dlen = dlen;
	job->queued = jiffies;
	req->on_done = vc_async_done;
	req->owner = job;
	/* On the busy list first: the device may return it at once. */
	kref_get(&ctx->ref);
	spin_lock_irqsave(&ctx->lock, flags);
	list_add_tail(&job->node, &ctx->busy);
	spin_unlock_irqrestore(&ctx->lock, flags);
	err = vc_queue_req(dev, vc_next_dataq(dev), req, sgs, nout, nin);
	if (err) {
		spin_lock_irqsave(&ctx->lock, flags);
		list_del(&job->node);
		spin_unlock_irqrestore(&ctx->lock, flags);
		kref_put(&ctx->ref, vc_async_free);	/* the file's stays */
		goto out_put;
	}
	if (READ_ONCE(vc_timeout_ms))
		vc_defer_delayed(&ctx->timeout,
				 msecs_to_jiffies(READ_ONCE(vc_timeout_ms)));
	return 0;

out_put:
	vc_req_put(req);
	return err;
}

/* CIOCASYNCCRYPT on a looked-up session (the caller holds a reference). */
int vc_async_crypt(struct vc_async *ctx, struct vc_session *s,
		   struct crypt_op *cop)
{
	struct vc_async_job *job = vc_job_get(ctx);
	unsigned long flags;
	int err;

	if (IS_ERR(job))
		return PTR_ERR(job);
	if (vc_async_on_dev(s, cop)) {
		err = vc_async_queue(ctx, job, s, cop);
		if (err)
			vc_job_recycle(ctx, job);
		return err;
	}
	/* Run now, as CIOCCRYPT; the caller fetches the result. */
	err = vc_session_crypt(s, cop, NULL);
	if (err) {
		vc_job_recycle(ctx, job);
		return err;
	}
	job->cop = *cop;
	job->on_dev = false;
	job->timed_out = false;
	job->result = 0;
	kref_get(&ctx->ref);
	spin_lock_irqsave(&ctx->lock, flags);
	list_add_tail(&job->node, &ctx->done);
	wake_up_interruptible_poll(&ctx->wq, EPOLLIN | EPOLLRDNORM);
	spin_unlock_irqrestore(&ctx->lock, flags);
	return 0;
}

/* A device job's result: the checks of CIOCCRYPT, then dst and the IV. */
static int vc_async_finish(struct vc_async_job *job)
{
	struct vc_session *s = job->s;
	const struct crypt_op *cop = &job->cop;
	unsigned int ivsize = s->calg->ivsize, len = job->len;
	int err = job->result;

	if (job->timed_out)
		return -ETIMEDOUT;
	if (!err)
		err = vc_status_to_errno(s->dev, job->status);
	/* Said OK but wrote less than asked: nothing of it is trusted. */
	if (!err && job->used_len < job->dlen + 1) {
		dev_warn_ratelimited(&s->dev->vdev->dev,
				     "device wrote %u of %u bytes\n",
				     job->used_len, job->dlen + 1);
		err = -EIO;
	}
	if (err)
		return err;
	switch (s->calg->cryptodev) {
	case CRYPTO_AES_CBC:
		if (cop->op == COP_ENCRYPT)
			memcpy_from_page(job->iv,
					 job->dst.pages[(len - VC_AES_BLOCK) / PAGE_SIZE],
					 offset_in_page(len - VC_AES_BLOCK),
					 VC_AES_BLOCK);
		else
			memcpy(job->iv, job->last_ct, VC_AES_BLOCK);
		break;
	case CRYPTO_AES_CTR:
		vc_ctr_add(job->iv, DIV_ROUND_UP(len, VC_AES_BLOCK));
		break;
	}
	if (vc_apages_to_user(cop->dst, &job->dst, len))
		return -EFAULT;
	if (ivsize) {
		spin_lock(&s->iv_lock);
		memcpy(s->iv, job->iv, ivsize);
		spin_unlock(&s->iv_lock);
		if ((cop->flags & COP_FLAG_WRITE_IV) &&
		    copy_to_user(cop->iv, job->iv, ivsize))
			return -EFAULT;
	}
	return 0;
}

/*
 * CIOCASYNCFETCH: the oldest completed operation, written back to argp
 * (which tells the caller which one it is), its output written to its dst
 * now; returns that operation's errno. EBUSY when none has completed.
 */
long vc_async_fetch(struct vc_async *ctx, void __user *argp)
{
	struct vc_async_job *job;
	int err;

	spin_lock_irq(&ctx->lock);
	job = list_first_entry_or_null(&ctx->done, struct vc_async_job, node);
	if (job)
		list_del(&job->node);
	spin_unlock_irq(&ctx->lock);
	if (!job)
		return -EBUSY;
	err = job->on_dev ? vc_async_finish(job) : job->result;
	if (copy_to_user(argp, &job->cop, sizeof(job->cop)) && !err)
		err = -EFAULT;
	vc_job_recycle(ctx, job);
	vc_async_put(ctx);	/* the job's; the file's stays */
	return err;
}

__poll_t vc_async_poll(struct vc_async *ctx, struct file *filp,
		       struct poll_table_struct *wait)
{
	unsigned int depth = clamp(READ_ONCE(vc_async_depth), 1U,
				   (unsigned int)VC_ASYNC_MAX_DEPTH);
	__poll_t mask = 0;

	poll_wait(filp, &ctx->wq, wait);
	spin_lock_irq(&ctx->lock);
	if (!list_empty(&ctx->done))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (ctx->nqueued < depth)
		mask |= EPOLLOUT | EPOLLWRNORM;
	spin_unlock_irq(&ctx->lock);
	return mask;
}

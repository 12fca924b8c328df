// SPDX-License-Identifier: GPL-2.0
/*
 * Device lifecycle and the request transport: probe/remove, the virtqueues,
 * submitting a request and completing it from the virtqueue callback.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/virtio_config.h>
#include <uapi/linux/virtio_ids.h>

#include "vlab_cryptodev.h"

/* Every probed, not yet removed device; protected by vc_devices_lock. */
static LIST_HEAD(vc_devices);
static DEFINE_MUTEX(vc_devices_lock);

static void vc_dev_release(struct kref *ref)
{
	struct vc_dev *dev = container_of(ref, struct vc_dev, ref);

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
		if (!READ_ONCE(dev->dead) && !READ_ONCE(dev->broken)) {
			kref_get(&dev->ref);
			found = dev;
			break;
		}
	}
	mutex_unlock(&vc_devices_lock);
	return found;
}

static void vc_buf_free(struct vc_buf *buf)
{
	unsigned int i;

	if (buf->pages) {
		for (i = 0; i < buf->npages; i++)
			if (buf->pages[i])
				__free_page(buf->pages[i]);
	}
	kfree(buf->pages);
	kfree(buf->sg);
	buf->pages = NULL;
	buf->sg = NULL;
	buf->npages = 0;
}

/* Page-backed so freeing works in interrupt context (the callback). */
int vc_buf_alloc(struct vc_buf *buf, unsigned int len)
{
	unsigned int i, left = len;

	buf->len = len;
	buf->npages = DIV_ROUND_UP(len, PAGE_SIZE);
	buf->pages = kcalloc(buf->npages, sizeof(*buf->pages), GFP_KERNEL);
	buf->sg = kmalloc_array(buf->npages, sizeof(*buf->sg), GFP_KERNEL);
	if (!buf->pages || !buf->sg)
		return -ENOMEM;
	sg_init_table(buf->sg, buf->npages);
	for (i = 0; i < buf->npages; i++) {
		unsigned int chunk = min_t(unsigned int, left, PAGE_SIZE);

		buf->pages[i] = alloc_page(GFP_KERNEL);
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
	return req;
}

/* Callable from any context: nothing here sleeps. */
void vc_req_put(struct vc_req *req)
{
	if (!refcount_dec_and_test(&req->ref))
		return;
	vc_buf_free(&req->src);
	vc_buf_free(&req->dst);
	kfree_sensitive(req->key);
	kfree_sensitive(req);	/* holds the IV and the digest */
}

static void vc_req_finish(struct vc_req *req, int result)
{
	req->result = result;
	complete(&req->done);
	vc_req_put(req);	/* the device's reference */
}

/*
 * Add a request to a ring and wait for the device to return it. The
 * device's reference is taken here and dropped by whoever finishes the
 * request (the callback, or remove when the device goes away). Only the
 * submitter's wait is killable for data requests; control requests are
 * waited for until the device answers, so a session the device created is
 * never orphaned.
 */
int vc_submit(struct vc_dev *dev, struct vc_queue *q, struct vc_req *req,
	      struct scatterlist *sgs[], unsigned int nout, unsigned int nin,
	      bool killable)
{
	unsigned long flags, seq;
	int err;

	refcount_inc(&req->ref);
	for (;;) {
		spin_lock_irqsave(&q->lock, flags);
		if (dev->dead || dev->broken) {
			err = -ENODEV;
		} else {
			err = virtqueue_add_sgs(q->vq, sgs, nout, nin, req,
						GFP_ATOMIC);
			/*
			 * Notify under the lock: remove() deletes the vq only
			 * after taking this lock, so the vq is alive here.
			 */
			if (!err)
				virtqueue_kick(q->vq);
		}
		seq = q->space_seq;
		spin_unlock_irqrestore(&q->lock, flags);
		if (err != -ENOSPC)
			break;
		/* Ring full: sleep until the callback reclaims something. */
		if (killable) {
			if (wait_event_killable(q->space,
						READ_ONCE(q->space_seq) != seq ||
						READ_ONCE(dev->dead))) {
				err = -EINTR;
				break;
			}
		} else {
			wait_event(q->space, READ_ONCE(q->space_seq) != seq ||
				   READ_ONCE(dev->dead));
		}
	}
	if (err) {
		refcount_dec(&req->ref);	/* never reached the device */
		return err;
	}

	if (killable) {
		if (wait_for_completion_killable(&req->done))
			return -EINTR;	/* the device still owns its ref */
	} else {
		wait_for_completion(&req->done);
	}
	return req->result;
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
 * again. The queue lock is dropped around each completion.
 */
static void vc_vq_done(struct virtqueue *vq)
{
	struct vc_dev *dev = vq->vdev->priv;
	struct vc_queue *q = vc_queue_of(dev, vq);
	struct vc_req *req;
	unsigned long flags;
	unsigned int len;

	spin_lock_irqsave(&q->lock, flags);
	do {
		virtqueue_disable_cb(vq);
		while ((req = virtqueue_get_buf(vq, &len)) != NULL) {
			q->space_seq++;
			spin_unlock_irqrestore(&q->lock, flags);
			vc_req_finish(req, 0);
			spin_lock_irqsave(&q->lock, flags);
		}
	} while (!virtqueue_enable_cb(vq));
	spin_unlock_irqrestore(&q->lock, flags);
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
		if (!xchg(&dev->broken, true))
			dev_err(&dev->vdev->dev,
				"unknown status %u: device marked broken\n",
				status);
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

	err = virtio_find_vqs(dev->vdev, nvqs, vqs, callbacks, names, NULL);
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

static int vc_probe(struct virtio_device *vdev)
{
	struct vc_dev *dev;
	u32 status, ndataq;
	u64 max_size;
	int err;

	vc_cread(vdev, status, &status);
	vc_cread(vdev, max_dataqueues, &ndataq);
	if (!(status & VIRTIO_CRYPTO_S_HW_READY)) {
		dev_err(&vdev->dev, "device not ready (status %#x)\n", status);
		return -EAGAIN;
	}
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
	dev->vdev = vdev;
	dev->ndataq = ndataq;
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
	virtio_device_ready(vdev);

	mutex_lock(&vc_devices_lock);
	list_add_tail(&dev->node, &vc_devices);
	mutex_unlock(&vc_devices_lock);

	dev_info(&vdev->dev,
		 "%u data queue(s), ciphers %#x, macs %#x, keys <= %u/%u, requests <= %u bytes\n",
		 ndataq, dev->cipher_algo_l, dev->mac_algo_l,
		 dev->max_cipher_key_len, dev->max_auth_key_len,
		 dev->max_data_len);
	return 0;

err_put:
	vdev->priv = NULL;
	vc_dev_put(dev);
	return err;
}

/* Fail every request the (already reset) device still holds. */
static void vc_queue_flush(struct vc_queue *q)
{
	struct vc_req *req;
	unsigned long flags;

	spin_lock_irqsave(&q->lock, flags);
	while ((req = virtqueue_detach_unused_buf(q->vq)) != NULL) {
		spin_unlock_irqrestore(&q->lock, flags);
		vc_req_finish(req, -ENODEV);
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

	WRITE_ONCE(dev->dead, true);
	for (i = 0; i < dev->ndataq; i++)
		vc_queue_fence(&dev->dataq[i]);
	vc_queue_fence(&dev->ctrlq);

	/* After the reset the device touches no buffer of ours. */
	virtio_reset_device(vdev);
	for (i = 0; i < dev->ndataq; i++)
		vc_queue_flush(&dev->dataq[i]);
	vc_queue_flush(&dev->ctrlq);
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
};

int vc_virtio_init(void)
{
	return register_virtio_driver(&vc_virtio_driver);
}

void vc_virtio_exit(void)
{
	unregister_virtio_driver(&vc_virtio_driver);
}

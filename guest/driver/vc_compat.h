/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel API differences between the kernels the lab tests (Linux 6.1 and 6.12), detected by
 * Kbuild from the headers themselves (feature tests, not version numbers).
 */
#ifndef VC_COMPAT_H
#define VC_COMPAT_H

#include <linux/slab.h>
#include <linux/virtio_config.h>

/* Linux 6.12 moved the unaligned-access helpers from <asm/unaligned.h> to <linux/unaligned.h>. */
#if __has_include("linux/unaligned.h")
#include <linux/unaligned.h>
#else
#include <asm/unaligned.h>
#endif

/* Linux 6.11 replaced find_vqs' parallel callbacks[]/names[] arrays with struct virtqueue_info[]. */
static inline int vc_virtio_find_vqs(struct virtio_device *vdev,
				     unsigned int nvqs, struct virtqueue **vqs,
				     vq_callback_t **callbacks,
				     const char **names)
{
#ifdef VC_HAVE_VQ_INFO
	struct virtqueue_info *info;
	unsigned int i;
	int err;

	info = kcalloc(nvqs, sizeof(*info), GFP_KERNEL);
	if (!info)
		return -ENOMEM;
	for (i = 0; i < nvqs; i++) {
		info[i].name = names[i];
		info[i].callback = callbacks[i];
	}
	err = virtio_find_vqs(vdev, nvqs, vqs, info, NULL);
	kfree(info);
	return err;
#else
	return virtio_find_vqs(vdev, nvqs, vqs, callbacks, names, NULL);
#endif
}

#endif /* VC_COMPAT_H */

// SPDX-License-Identifier: GPL-2.0
/*
 * vlab_cryptodev: /dev/crypto (the cryptodev-linux API) served by a
 * virtio-crypto device.
 */
#include <linux/module.h>

#include "vlab_cryptodev.h"

static int __init vc_init(void)
{
	int err;

	err = vc_virtio_init();
	if (err)
		return err;
	err = vc_chardev_init();
	if (err)
		vc_virtio_exit();
	return err;
}

/* Open files pin the module (fops owner), so none is open here. */
static void __exit vc_exit(void)
{
	vc_chardev_exit();
	vc_virtio_exit();
}

module_init(vc_init);
module_exit(vc_exit);

MODULE_DESCRIPTION("cryptodev-linux /dev/crypto API over virtio-crypto");
MODULE_LICENSE("GPL");

// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/crypto: per-open state (the sessions of that file) and the
 * cryptodev-linux ioctls, with their errnos.
 */
#include <linux/compat.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>

#include "vlab_cryptodev.h"

#define CIOCASYMFEAT	_IOR('c', 106, __u32)

struct vc_file {
	struct vc_dev *dev;		/* a reference, dropped in release */
	/* Protects sessions and nsessions. */
	struct mutex lock;
	struct xarray sessions;		/* cryptodev id -> vc_session */
	unsigned int nsessions;
};

static int vc_open(struct inode *inode, struct file *filp)
{
	struct vc_file *f;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	f->dev = vc_dev_get_any();
	if (!f->dev) {
		kfree(f);
		return -ENODEV;
	}
	mutex_init(&f->lock);
	xa_init(&f->sessions);
	filp->private_data = f;
	return nonseekable_open(inode, filp);
}

static int vc_release(struct inode *inode, struct file *filp)
{
	struct vc_file *f = filp->private_data;
	struct vc_session *s;
	unsigned long id;

	/* No ioctl runs any more: the file's last reference is gone. */
	xa_for_each(&f->sessions, id, s) {
		xa_erase(&f->sessions, id);
		vc_session_put(s);
	}
	xa_destroy(&f->sessions);
	mutex_destroy(&f->lock);
	vc_dev_put(f->dev);
	kfree(f);
	return 0;
}

static struct vc_session *vc_lookup(struct vc_file *f, u32 id)
{
	struct vc_session *s;

	mutex_lock(&f->lock);
	s = xa_load(&f->sessions, id);
	if (s)
		kref_get(&s->ref);
	mutex_unlock(&f->lock);
	return s;
}

static int vc_insert(struct vc_file *f, struct vc_session *s)
{
	int err;

	mutex_lock(&f->lock);
	if (f->nsessions >= VC_MAX_SESSIONS) {
		mutex_unlock(&f->lock);
		return -ENOMEM;
	}
	/* Random ids as cryptodev-linux hands out; retry on a clash. */
	do {
		s->id = get_random_u32();
		err = xa_insert(&f->sessions, s->id, s, GFP_KERNEL);
	} while (err == -EBUSY);
	if (!err)
		f->nsessions++;
	mutex_unlock(&f->lock);
	return err;
}

static int vc_finish_session(struct vc_file *f, u32 id)
{
	struct vc_session *s;

	mutex_lock(&f->lock);
	s = xa_erase(&f->sessions, id);
	if (s)
		f->nsessions--;
	mutex_unlock(&f->lock);
	if (!s)
		return -ENOENT;
	vc_session_put(s);	/* in-flight operations hold their own */
	return 0;
}

/* Checks in cryptodev-linux's order, so each bad input gets its errno. */
static int vc_create_session(struct vc_file *f, struct session_op *sop)
{
	u8 *key = NULL, *mackey = NULL;
	struct vc_session *s;
	bool kern = READ_ONCE(vc_fallback);
	int err;

	if (!sop->cipher && !sop->mac)
		return -EINVAL;
	if (sop->cipher && !vc_find_cipher(sop->cipher) &&
	    !(kern && vc_kern_known_cipher(sop->cipher)))
		return -EINVAL;
	if (sop->mac && !vc_find_mac(sop->mac) &&
	    !(kern && vc_kern_known_mac(sop->mac)))
		return -EINVAL;

	if (sop->cipher) {
		if (sop->keylen > CRYPTO_CIPHER_MAX_KEY_LEN)
			return -EINVAL;
		key = memdup_user(sop->key, sop->keylen);
		if (IS_ERR(key))
			return PTR_ERR(key);
	}
	if (sop->mac) {
		err = -EINVAL;
		if (sop->mackeylen > CRYPTO_HMAC_MAX_KEY_LEN)
			goto out_free;
		/* cryptodev-linux takes a NULL mackey as an all-zero key. */
		if (sop->mackey) {
			mackey = memdup_user(sop->mackey, sop->mackeylen);
			if (IS_ERR(mackey)) {
				err = PTR_ERR(mackey);
				mackey = NULL;
				goto out_free;
			}
		} else {
			mackey = kzalloc(max(sop->mackeylen, 1U), GFP_KERNEL);
			err = -ENOMEM;
			if (!mackey)
				goto out_free;
		}
	}

	err = vc_session_create(f->dev, sop, key, mackey, &s);
	if (err)
		goto out_free;
	err = vc_insert(f, s);
	if (err) {
		vc_session_put(s);
		goto out_free;
	}
	sop->ses = s->id;
out_free:
	kfree_sensitive(key);
	kfree_sensitive(mackey);
	return err;
}

static int vc_crypt(struct vc_file *f, struct crypt_op *cop,
		    struct vc_lat *lat)
{
	struct vc_session *s;
	int err;

	if (cop->op != COP_ENCRYPT && cop->op != COP_DECRYPT)
		return -EINVAL;
	s = vc_lookup(f, cop->ses);
	if (!s)
		return -EINVAL;
	err = vc_session_crypt(s, cop, lat);
	vc_session_put(s);
	return err;
}

static int vc_authcrypt(struct vc_file *f, struct crypt_auth_op *caop)
{
	struct vc_session *s;
	int err;

	s = vc_lookup(f, caop->ses);
	if (!s)
		return -EINVAL;
	if (caop->op != COP_ENCRYPT && caop->op != COP_DECRYPT)
		err = -EINVAL;
	else
		err = vc_session_authcrypt(s, caop);
	vc_session_put(s);
	return err;
}

/* CIOCCPHASH, with cryptodev-linux's errnos (ENOENT, EDEADLK, EINVAL). */
static int vc_copy_hash(struct vc_file *f, const struct cphash_op *op)
{
	struct vc_session *dst, *src;
	int err;

	if (op->dst_ses == op->src_ses)
		return -EDEADLK;
	src = vc_lookup(f, op->src_ses);
	dst = vc_lookup(f, op->dst_ses);
	err = src && dst ? vc_kern_copy_hash(dst, src) : -ENOENT;
	if (dst)
		vc_session_put(dst);
	if (src)
		vc_session_put(src);
	return err;
}

static int vc_session_info(struct vc_file *f, struct session_info_op *siop)
{
	struct vc_session *s;

	s = vc_lookup(f, siop->ses);
	if (!s)
		return -EINVAL;
	memset(&siop->cipher_info, 0, sizeof(siop->cipher_info));
	memset(&siop->hash_info, 0, sizeof(siop->hash_info));
	siop->alignmask = 0;
	if (!s->on_dev) {
		/* The kernel's transforms, copied through kernel pages. */
		vc_kern_info(s, siop);
		vc_session_put(s);
		return 0;
	}
	if (s->calg) {
		strscpy(siop->cipher_info.cra_name, s->calg->cra_name,
			sizeof(siop->cipher_info.cra_name));
		strscpy(siop->cipher_info.cra_driver_name,
			s->calg->driver_name,
			sizeof(siop->cipher_info.cra_driver_name));
	}
	if (s->malg) {
		strscpy(siop->hash_info.cra_name, s->malg->cra_name,
			sizeof(siop->hash_info.cra_name));
		strscpy(siop->hash_info.cra_driver_name, s->malg->driver_name,
			sizeof(siop->hash_info.cra_driver_name));
	}
	/* Served by a device, so OpenSSL's devcrypto engine accepts it. */
	siop->flags = SIOP_FLAG_KERNEL_DRIVER_ONLY;
	vc_session_put(s);
	return 0;
}

/* A second descriptor for the same open file, as cryptodev-linux does. */
static int vc_clone_fd(struct file *filp, u32 __user *p)
{
	int fd = get_unused_fd_flags(0);

	if (fd < 0)
		return fd;
	if (put_user(fd, p)) {
		put_unused_fd(fd);
		return -EFAULT;
	}
	get_file(filp);
	fd_install(fd, filp);
	return 0;
}

/* CIOCCRYPT; with stats=1, timed into the device's latency statistics. */
static long vc_ioctl_crypt(struct vc_file *f, void __user *argp)
{
	struct vc_lat lat, *lp = NULL;
	struct crypt_op cop;
	int err;

	if (READ_ONCE(vc_stats)) {
		lp = &lat;
		lat.valid = false;
		lat.polled = false;
		lat.t[VC_T_ENTRY] = vc_clock();
	}
	if (copy_from_user(&cop, argp, sizeof(cop)))
		return -EFAULT;
	err = vc_crypt(f, &cop, lp);
	if (err)
		return err;
	/* cryptodev-linux writes the operation back, and fails on it. */
	if (copy_to_user(argp, &cop, sizeof(cop)))
		return -EFAULT;
	if (lp && lat.valid) {
		lat.t[VC_T_RET] = vc_clock();
		vc_stats_account(f->dev, &lat);
	}
	return 0;
}

static long vc_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct vc_file *f = filp->private_data;
	void __user *argp = (void __user *)arg;
	struct session_info_op siop;
	struct crypt_auth_op caop;
	struct cphash_op cph;
	struct session_op sop;
	u32 ses;
	int err;

	switch (cmd) {
	case CRIOGET:
		return vc_clone_fd(filp, argp);
	case CIOCASYMFEAT:
		return put_user(0, (u32 __user *)argp);
	case CIOCGSESSION:
		if (copy_from_user(&sop, argp, sizeof(sop)))
			return -EFAULT;
		err = vc_create_session(f, &sop);
		if (err)
			return err;
		if (copy_to_user(argp, &sop, sizeof(sop))) {
			vc_finish_session(f, sop.ses);
			return -EFAULT;
		}
		return 0;
	case CIOCFSESSION:
		if (get_user(ses, (u32 __user *)argp))
			return -EFAULT;
		return vc_finish_session(f, ses);
	case CIOCCRYPT:
		return vc_ioctl_crypt(f, argp);
	case CIOCAUTHCRYPT:
		if (copy_from_user(&caop, argp, sizeof(caop)))
			return -EFAULT;
		err = vc_authcrypt(f, &caop);
		if (err)
			return err;
		if (copy_to_user(argp, &caop, sizeof(caop)))
			return -EFAULT;
		return 0;
	case CIOCCPHASH:
		if (copy_from_user(&cph, argp, sizeof(cph)))
			return -EFAULT;
		return vc_copy_hash(f, &cph);
	case CIOCGSESSINFO:
		if (copy_from_user(&siop, argp, sizeof(siop)))
			return -EFAULT;
		err = vc_session_info(f, &siop);
		if (err)
			return err;
		if (copy_to_user(argp, &siop, sizeof(siop)))
			return -EFAULT;
		return 0;
	default:
		return -EINVAL;
	}
}

#ifdef CONFIG_COMPAT
/* 32-bit processes: same semantics, structures with 4-byte pointers. */
static long vc_compat_ioctl(struct file *filp, unsigned int cmd,
			    unsigned long arg)
{
	struct vc_file *f = filp->private_data;
	void __user *argp = compat_ptr(arg);
	struct compat_session_op_abi csop;
	struct compat_crypt_op_abi ccop;
	struct session_op sop;
	struct crypt_op cop;
	int err;

	switch (cmd) {
	case CRIOGET:
	case CIOCASYMFEAT:
	case CIOCFSESSION:
	case CIOCGSESSINFO:
	case CIOCCPHASH:
		return vc_ioctl(filp, cmd, (unsigned long)argp);
	case COMPAT_CIOCGSESSION:
		if (copy_from_user(&csop, argp, sizeof(csop)))
			return -EFAULT;
		memset(&sop, 0, sizeof(sop));
		sop.cipher = csop.cipher;
		sop.mac = csop.mac;
		sop.keylen = csop.keylen;
		sop.key = compat_ptr(csop.key);
		sop.mackeylen = csop.mackeylen;
		sop.mackey = compat_ptr(csop.mackey);
		err = vc_create_session(f, &sop);
		if (err)
			return err;
		csop.ses = sop.ses;
		if (copy_to_user(argp, &csop, sizeof(csop))) {
			vc_finish_session(f, sop.ses);
			return -EFAULT;
		}
		return 0;
	case COMPAT_CIOCCRYPT:
		if (copy_from_user(&ccop, argp, sizeof(ccop)))
			return -EFAULT;
		memset(&cop, 0, sizeof(cop));
		cop.ses = ccop.ses;
		cop.op = ccop.op;
		cop.flags = ccop.flags;
		cop.len = ccop.len;
		cop.src = compat_ptr(ccop.src);
		cop.dst = compat_ptr(ccop.dst);
		cop.mac = compat_ptr(ccop.mac);
		cop.iv = compat_ptr(ccop.iv);
		err = vc_crypt(f, &cop, NULL);
		if (err)
			return err;
		if (copy_to_user(argp, &ccop, sizeof(ccop)))
			return -EFAULT;
		return 0;
	default:
		return -EINVAL;
	}
}
#endif

static const struct file_operations vc_fops = {
	.owner = THIS_MODULE,
	.open = vc_open,
	.release = vc_release,
	.unlocked_ioctl = vc_ioctl,
#ifdef CONFIG_COMPAT
	.compat_ioctl = vc_compat_ioctl,
#endif
	/* No .llseek: lseek() fails with ESPIPE (what no_llseek did; 6.12 removed it). */
};

static struct miscdevice vc_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "crypto",
	.fops = &vc_fops,
	.mode = 0666,
};

int vc_chardev_init(void)
{
	return misc_register(&vc_misc);
}

void vc_chardev_exit(void)
{
	misc_deregister(&vc_misc);
}
